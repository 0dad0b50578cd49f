"""One request inside the batch: its sampler chain and the text it streams.

The batch (engines/batch.py) decodes; a `Sequence` turns each token sampled for it into text for its
client and owns everything the API promises per token: exact token counts, stop strings across token
boundaries, UTF-8 characters split across tokens, reasoning split from the answer, `length` vs `stop`,
and a cancel flag the batch reads between steps. Sampling runs in C (a llama.cpp sampler chain): the
logits never reach Python.
"""

from __future__ import annotations

import codecs
import ctypes
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import llama_cpp
import numpy as np

from engines.contract import Chunk, GenerationRequest, Timings, TokenLogprob, Usage
from engines.errors import InvalidRequest
from engines.text_stream import ReasoningSplitter, StopMatcher


@dataclass(frozen=True)
class Plan:
    """A request turned into what the batch needs, prepared before a slot is taken."""

    request: GenerationRequest
    prompt_tokens: list[int]
    max_new_tokens: int
    grammar: str | None  # GBNF text
    banned_tokens: tuple[int, ...]  # end-of-generation tokens when ignore_eos is set
    thinking: bool
    starts_in_reasoning: bool
    answer_tokens: int = 0  # the last N prompt tokens are an answer begun elsewhere (request.prefix)
    grammar_root: str = "root"

    @property
    def answer_starts(self) -> int:
        """Index in prompt_tokens of the first token of the answer begun elsewhere."""
        return len(self.prompt_tokens) - self.answer_tokens


_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


def token_logprob(ctx: llama_cpp.llama_context_p, index: int, token: int, top: int, n_vocab: int,
                  pieces: Pieces) -> TokenLogprob:
    """`token`'s log-probability under the model at batch entry `index` (the raw distribution, before
    any sampling setting), with the `top` likeliest tokens there."""
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index), shape=(n_vocab,)).astype(np.float64)
    peak = logits.max()
    logprobs = logits - (peak + np.log(np.exp(logits - peak).sum()))
    best = np.argpartition(-logprobs, top)[:top] if 0 < top < n_vocab else np.arange(n_vocab if top else 0)
    best = best[np.argsort(-logprobs[best])]
    return TokenLogprob(token, pieces[token], float(logprobs[token]),
                        tuple(TokenLogprob(int(t), pieces[int(t)], float(logprobs[t])) for t in best))


class Sampler:
    """A llama.cpp sampler chain — logit biases (and the ignore_eos ban) -> penalties -> greedy, or
    top-k -> top-p -> min-p -> temperature -> seeded draw — and a grammar beside it. The defaults
    (top-k 40, min-p 0.05) are llama-cpp-python's, so a seed gives the same text as there.

    With a grammar, a token is first chosen without it and kept if the grammar allows it (one candidate
    to check); only otherwise is it chosen again among the tokens the grammar allows (every candidate
    checked). That is the distribution of choosing among allowed tokens only, as llama-server samples,
    at a fraction of the cost: checking all of SmolLM2's 49k tokens at each step cost about 14 ms per
    token (benchmarks/grammar_speed.py)."""

    def __init__(self, vocab: llama_cpp.llama_vocab_p, n_vocab: int, plan: Plan):
        request = plan.request
        self.n_vocab = n_vocab
        self.grammar = None
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        biases = [*request.logit_bias, *((token, float("-inf")) for token in plan.banned_tokens)]
        if biases:
            entries = (llama_cpp.llama_logit_bias * len(biases))()
            for entry, (token, bias) in zip(entries, biases, strict=True):
                entry.token, entry.bias = token, bias
            self._add(llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(entries), entries))
        if request.presence_penalty or request.frequency_penalty or request.repeat_penalty != 1.0:
            window = plan.max_new_tokens + plan.answer_tokens  # the whole answer, as OpenAI's penalties see it
            self._add(llama_cpp.llama_sampler_init_penalties(n_vocab, max(window, 1), request.repeat_penalty,
                                                             request.frequency_penalty, request.presence_penalty))
        if request.temperature <= 0:
            self._add(llama_cpp.llama_sampler_init_greedy())
        else:
            if request.top_k > 0:
                self._add(llama_cpp.llama_sampler_init_top_k(request.top_k))
            self._add(llama_cpp.llama_sampler_init_top_p(request.top_p, 1))
            self._add(llama_cpp.llama_sampler_init_min_p(request.min_p, 1))
            self._add(llama_cpp.llama_sampler_init_temp(request.temperature))
            seed = request.seed if request.seed is not None else random.getrandbits(32)
            self._add(llama_cpp.llama_sampler_init_dist(seed))
        if plan.grammar is not None:
            self.grammar = grammar_sampler(vocab, plan)
            if not self.grammar:  # llama.cpp returns NULL when it cannot parse the grammar
                self.close()
                param = "tools" if plan.request.tools else "response_format"
                raise InvalidRequest(f"The grammar derived from {param} could not be parsed.", param=param)
        self._one = (llama_cpp.llama_token_data * 1)()
        self._ids = np.arange(n_vocab, dtype=np.int32)

    def _add(self, sampler) -> None:
        llama_cpp.llama_sampler_chain_add(self.chain, sampler)  # the chain owns it from here

    def sample(self, ctx: llama_cpp.llama_context_p, index: int) -> int:
        """Samples from the logits of batch entry `index` (and advances the grammar, if any)."""
        if self.grammar is None:
            return llama_cpp.llama_sampler_sample(self.chain, ctx, index)
        token = self._choose(ctx, index, constrained=False)
        if not self._allows(token):
            token = self._choose(ctx, index, constrained=True)
        self._accept(token)
        return token

    def replay(self, ctx: llama_cpp.llama_context_p, index: int, token: int) -> None:
        """What `sample` would have done at batch entry `index` had it picked `token`: the same draws
        from the random generator, the grammar advanced by `token`."""
        if self.grammar is not None and not self._allows(self._choose(ctx, index, constrained=False)):
            self._choose(ctx, index, constrained=True)
        elif self.grammar is None:
            self._choose(ctx, index, constrained=False)
        self._accept(token)

    def _choose(self, ctx: llama_cpp.llama_context_p, index: int, *, constrained: bool) -> int:
        """The chain's choice from the logits at batch entry `index` (among the tokens the grammar
        allows, if `constrained`), nothing accepted yet."""
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index), shape=(self.n_vocab,))
        data = np.empty(self.n_vocab, dtype=_TOKEN_DATA)  # as llama_sampler_sample builds it: every id, in order
        data["id"], data["logit"], data["p"] = self._ids, logits, 0.0
        candidates = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)), size=self.n_vocab,
            selected=-1, sorted=False)
        if constrained:
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(candidates))
        llama_cpp.llama_sampler_apply(self.chain, ctypes.byref(candidates))
        return int(data["id"][candidates.selected])

    def _allows(self, token: int) -> bool:
        one = self._one
        one[0].id, one[0].logit, one[0].p = token, 0.0, 0.0
        candidates = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(candidates))
        return one[0].logit != float("-inf")

    def _accept(self, token: int) -> None:
        if self.grammar is not None:
            llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.chain, token)

    def close(self) -> None:
        if self.chain:
            llama_cpp.llama_sampler_free(self.chain)
            self.chain = None
        if self.grammar:
            llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None


def grammar_sampler(vocab: llama_cpp.llama_vocab_p, plan: Plan):
    """The plan's grammar as a llama.cpp sampler (NULL if it does not parse)."""
    return llama_cpp.llama_sampler_init_grammar(vocab, plan.grammar.encode(), plan.grammar_root.encode())


def check_answer_prefix(vocab: llama_cpp.llama_vocab_p, plan: Plan) -> None:
    """Refuses an answer prefix the response format (or tool format) does not allow (accepting a token
    the grammar forbids would abort llama.cpp)."""
    tokens = plan.prompt_tokens[plan.answer_starts:]
    sampler = grammar_sampler(vocab, plan)
    one = (llama_cpp.llama_token_data * 1)()
    try:
        for token in tokens:
            one[0].id, one[0].logit, one[0].p = token, 0.0, 0.0
            candidates = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
            if one[0].logit == float("-inf"):
                raise InvalidRequest("The answer prefix does not match the response format.", param="answer_prefix")
            llama_cpp.llama_sampler_accept(sampler, token)
    finally:
        llama_cpp.llama_sampler_free(sampler)


class Pieces:
    """Token id -> the bytes it stands for, cached (special tokens render as nothing, as in the API,
    except those `shown`: the markers of the model's tool calls, which the answer's reader looks for)."""

    def __init__(self, vocab: llama_cpp.llama_vocab_p, shown: frozenset[int] = frozenset()):
        self._vocab = vocab
        self._shown = shown
        self._cache: dict[int, bytes] = {}
        self._buffer = ctypes.create_string_buffer(64)

    def __getitem__(self, token: int) -> bytes:
        piece = self._cache.get(token)
        if piece is None:
            special = token in self._shown
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buffer, len(self._buffer), 0, special)
            if n < 0:  # longer than the buffer: llama.cpp says how long
                self._buffer = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buffer, -n, 0, special)
            piece = self._cache[token] = self._buffer.raw[:n]
        return piece


class Sequence:
    """One request's progress. `feed` and `finish` run on the decode thread; `emit` carries chunks out."""

    def __init__(self, plan: Plan, sampler: Sampler, emit: Callable[[object], None], *, queued_at: float):
        self.plan = plan
        self.sampler = sampler
        self.emit = emit
        self.cancelled = False  # set by the consumer; the batch drops the sequence before its next step
        self.cached_tokens = 0  # prompt tokens found in the KV cache
        self.generated = 0
        self.speculation = (0, 0)  # tokens drafted for this answer, and accepted (set by the batch)
        self._tokens: list[int] = []  # generated since the last chunk (its text may still be held back)
        self._logprobs: list[TokenLogprob] = []  # theirs, when the request asked for logprobs
        self.echo: list[TokenLogprob] = []  # the prompt's, for an echo request (filled by the batch)
        self._queued_at = queued_at
        self._started_at = self._first_token_at = 0.0
        request = plan.request
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = StopMatcher(request.stop)
        self._splitter = ReasoningSplitter(plan.starts_in_reasoning) if plan.thinking else None

    def start(self) -> None:
        self._started_at = time.perf_counter()

    def feed(self, token: int, piece: bytes, logprob: TokenLogprob | None = None) -> bool:
        """A generated (non end-of-generation) token and its bytes; returns True when the sequence is done."""
        self.generated += 1
        self._tokens.append(token)
        if logprob is not None:
            self._logprobs.append(logprob)
        if self.generated == 1:
            self._first_token_at = time.perf_counter()
        self._send(self._stops.feed(self._decoder.decode(piece)))
        if self._stops.stopped:
            self.finish("stop")
            return True
        if self.generated >= self.plan.max_new_tokens:
            self.finish("length")
            return True
        return False

    def finish(self, finish_reason: str) -> None:
        done_at = time.perf_counter()
        tail = self._stops.feed(self._decoder.decode(b"", final=True)) + self._stops.flush()
        timings = Timings(
            queue_ms=(self._started_at - self._queued_at) * 1000,
            ttft_ms=((self._first_token_at or done_at) - self._started_at) * 1000,
            generation_ms=(done_at - self._started_at) * 1000,
            completion_tokens=self.generated,
            draft_tokens=self.speculation[0],
            draft_accepted=self.speculation[1],
        )
        answer = self.plan.answer_tokens  # begun elsewhere: part of the completion, as if generated here
        usage = Usage(prompt_tokens=len(self.plan.prompt_tokens) - answer, completion_tokens=answer + self.generated,
                      cached_tokens=min(self.cached_tokens, self.plan.answer_starts))
        self._send(tail, finish_reason=finish_reason, usage=usage, timings=timings)

    def _send(self, text: str, **final) -> None:
        splitter = self._splitter
        answer, reasoning = (text, "") if splitter is None else splitter.feed(text)
        if final and splitter is not None:
            rest_answer, rest_reasoning = splitter.flush()
            answer, reasoning = answer + rest_answer, reasoning + rest_reasoning
        if answer or reasoning or final:
            self.emit(Chunk(text=answer, reasoning=reasoning, tokens=tuple(self._tokens),
                            logprobs=tuple(self._logprobs), echo=tuple(self.echo), **final))
            self._tokens.clear()
            self._logprobs.clear()
            self.echo = []
