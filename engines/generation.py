"""One generation on one llama.cpp context, run on a worker thread.

The loop owns everything the API promises per token: exact token counts, stop strings across token
boundaries, UTF-8 characters split across tokens, reasoning split from the answer, `length` vs
`stop`, and a cancel flag checked between tokens.
"""

from __future__ import annotations

import codecs
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import llama_cpp

from engines.contract import Chunk, GenerationRequest, Timings, Usage
from engines.text_stream import ReasoningSplitter, StopMatcher


@dataclass(frozen=True)
class Plan:
    """A request turned into what the loop needs, prepared before a slot is taken."""

    request: GenerationRequest
    prompt_tokens: list[int]
    max_new_tokens: int
    grammar: llama_cpp.LlamaGrammar | None
    banned_tokens: tuple[int, ...]  # end-of-generation tokens when ignore_eos is set
    thinking: bool
    starts_in_reasoning: bool


def run(
    llm: llama_cpp.Llama,
    plan: Plan,
    emit: Callable[[Chunk], None],
    cancelled: threading.Event,
    acquired_at: float,
    queue_ms: float,
) -> None:
    request = plan.request
    llm.set_seed(request.seed if request.seed is not None else random.getrandbits(32))
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    stops = StopMatcher(request.stop)
    splitter = ReasoningSplitter(plan.starts_in_reasoning) if plan.thinking else None
    vocab = llm._model.vocab  # noqa: SLF001 - llama-cpp-python's own loop uses it the same way

    def send(text: str, **final) -> None:
        answer, reasoning = (text, "") if splitter is None else splitter.feed(text)
        if final and splitter is not None:
            rest_answer, rest_reasoning = splitter.flush()
            answer, reasoning = answer + rest_answer, reasoning + rest_reasoning
        if answer or reasoning or final:
            emit(Chunk(text=answer, reasoning=reasoning, **final))

    generated = 0
    first_token_at = None
    finish_reason = "length"
    if plan.max_new_tokens > 0:
        tokens = llm.generate(
            plan.prompt_tokens,
            temp=request.temperature,
            top_p=request.top_p,
            grammar=plan.grammar,
            logits_processor=_ban(plan.banned_tokens) if plan.banned_tokens else None,
        )
        for token in tokens:
            if cancelled.is_set():
                tokens.close()
                return
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish_reason = "stop"
                break
            generated += 1
            first_token_at = first_token_at or time.perf_counter()
            send(stops.feed(decoder.decode(llm.detokenize([token]))))
            if stops.stopped:
                finish_reason = "stop"
                break
            if generated >= plan.max_new_tokens:
                break
        tokens.close()

    done_at = time.perf_counter()
    tail = stops.feed(decoder.decode(b"", final=True)) + stops.flush()
    timings = Timings(
        queue_ms=queue_ms,
        ttft_ms=((first_token_at or done_at) - acquired_at) * 1000,
        generation_ms=(done_at - acquired_at) * 1000,
        completion_tokens=generated,
    )
    usage = Usage(prompt_tokens=len(plan.prompt_tokens), completion_tokens=generated)
    send(tail, finish_reason=finish_reason, usage=usage, timings=timings)


def _ban(token_ids: tuple[int, ...]) -> llama_cpp.LogitsProcessorList:
    banned = list(token_ids)

    def processor(_, scores):
        scores[banned] = -float("inf")
        return scores

    return llama_cpp.LogitsProcessorList([processor])
