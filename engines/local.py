"""A GGUF model hosted in this process with llama-cpp-python's low-level API.

One llama.cpp context serves every slot through continuous batching (engines/batch.py): the weights
and compute buffers exist once, each slot adds only its KV cache. `SlotPool` admits requests (bounded
queue, 429/503); the batch's decode thread generates, so the event loop (and /health) stays responsive.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from engines import generation, speculation, tool_formats, tools
from engines.batch import Batch
from engines.catalog import ModelSpec
from engines.contract import Chunk, GenerationRequest, Load, ProbeResult
from engines.errors import ContextOverflow, InvalidRequest, Unavailable
from engines.llama import load_model
from engines.schema_budget import SCHEMA_PARAM, check_grammar, check_schema
from engines.slots import SlotPool

_DONE = object()
PREPARE_SECONDS = 10.0  # templating, tokenizing and grammar building of one request, off the event loop
logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # llama.cpp's load chatter goes to this logger

# Used when a GGUF carries no chat template.
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


CACHE_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0, "q4_0": llama_cpp.GGML_TYPE_Q4_0}
_CACHE_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}  # per element: ggml's block sizes


class LocalEngine:
    def __init__(self, spec: ModelSpec, path: Path, *, max_queue: int, queue_timeout: float,
                 flash_attn: bool = True, chat_template: str | None = None, tool_format: str = "auto",
                 speculative: str = "ngram", draft: tuple[str, Path] | None = None,
                 draft_max: int = speculation.MAX_DRAFT, cache_type: str = "f16",
                 progress: Callable[[str, float], None] | None = None):
        """`speculative` is "ngram" or "off"; `draft` (label, path) is a draft model, used instead of n-grams;
        `progress(stage, fraction)` hears the load's stages: "weights" (0..1), "context", "warm-up"."""
        progress = progress or (lambda stage, fraction: None)
        self.spec = spec
        self.model_id = spec.id
        self.continues = True  # takes GenerationRequest.prefix
        self.path = path
        started = time.perf_counter()
        before = _resident_bytes()
        self._model = load_model(path, lambda fraction: progress("weights", fraction))
        loaded = _resident_bytes()
        template = chat_template or self._model.metadata().get("tokenizer.chat_template") or _CHATML
        self.tool_format = tool_formats.choose(tool_format, template)  # None: the JSON envelope
        self._pieces = generation.Pieces(self._model.vocab, shown=frozenset(self._marker_tokens()))
        self.cache_type = cache_type
        self._draft_model = None
        progress("context", 0.0)
        try:
            drafter = self._drafter(speculative, draft, flash_attn)
            self.batch = Batch(
                self._model.model, n_seq=spec.max_concurrent, n_ctx=spec.n_ctx, n_batch=spec.n_batch,
                n_threads=spec.n_threads, flash_attn=flash_attn, eog_tokens=frozenset(self.eog_tokens),
                pieces=self._pieces, name=spec.id, cache_type=CACHE_TYPES[cache_type], drafter=drafter,
                max_draft=draft_max if drafter else 0,
            )
        except Exception:
            self._close_models()
            raise
        progress("warm-up", 0.0)
        self.batch.warm_up(self._model.token_bos() if self._model.token_bos() >= 0 else 0)
        self.memory_mb = {"weights": round((loaded - before) / 1e6, 1),
                          "context": round((_resident_bytes() - loaded) / 1e6, 1)}
        self.load_seconds = time.perf_counter() - started
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(self._model.token_eos()),
            bos_token=self._token_text(self._model.token_bos()),
        )
        self.thinking = spec.thinking or "<think>" in template
        self.slots = SlotPool(range(spec.max_concurrent), max_queue=max_queue, queue_timeout=queue_timeout,
                              name=spec.id)
        self._closed = False

    def _drafter(self, speculative: str, draft: tuple[str, Path] | None, flash_attn: bool):
        """The drafter for speculative decoding, or None (and why, in `self.speculation`)."""
        spec = self.spec
        if not speculation.can_roll_back(self._model.model):
            self.speculation = "off (recurrent or sliding-window attention: rejected drafts cannot be dropped)"
            return None
        if draft is not None:
            label, draft_path = draft
            self._draft_model = load_model(draft_path)
            speculation.check_vocabulary(self._model, self._draft_model, spec.id, label)
            self.speculation = f"draft-model {label}"
            return speculation.ModelDrafter(self._draft_model, n_seq=spec.max_concurrent, n_ctx=spec.n_ctx,
                                            n_batch=spec.n_batch, n_threads=spec.n_threads, flash_attn=flash_attn,
                                            label=label)
        self.speculation = speculative
        return speculation.NgramDrafter() if speculative == "ngram" else None

    def _close_models(self) -> None:
        if self._draft_model is not None:
            self._draft_model.close()
            self._draft_model = None
        self._model.close()

    @property
    def kv_cache_mb_per_slot(self) -> float:
        """The KV cache one slot holds when its context is full, for this cache type."""
        model = self._model.model
        head_dim = llama_cpp.llama_model_n_embd(model) // max(llama_cpp.llama_model_n_head(model), 1)
        elements = 2 * llama_cpp.llama_model_n_layer(model) * llama_cpp.llama_model_n_head_kv(model) * head_dim
        return round(elements * _CACHE_BYTES[self.cache_type] * self.spec.n_ctx / 1e6, 1)

    def _marker_tokens(self) -> tuple[int, ...]:
        """The special tokens of this model's tool calls (Mistral's [TOOL_CALLS], FunctionGemma's
        <escape>...): rendered as their text, so the answer's reader sees the calls' structure."""
        if self.tool_format is None:
            return ()
        shown = []
        for marker in (self.tool_format.opener, *self.tool_format.markers):
            tokens = self._model.tokenize(marker.encode(), add_bos=False, special=True)
            if len(tokens) == 1 and llama_cpp.llama_vocab_get_attr(self._model.vocab, tokens[0]) & \
                    llama_cpp.LLAMA_TOKEN_ATTR_CONTROL:
                shown.append(tokens[0])
        return tuple(shown)

    def _token_text(self, token: int) -> str:
        return self._model.token_get_text(token) if token != -1 else ""

    @functools.cached_property
    def eog_tokens(self) -> tuple[int, ...]:
        """End-of-generation token ids (banned when a request sets ignore_eos)."""
        vocab = self._model.vocab
        return tuple(t for t in range(self._model.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t))

    @property
    def n_ctx(self) -> int:
        return self.spec.n_ctx

    # -- request preparation (before a slot is taken, so bad requests never wait in the queue) --

    def render_prompt(self, request: GenerationRequest) -> tuple[str, bool]:
        """The text fed to the model, and whether the template already added the BOS token."""
        if isinstance(request.prompt, tuple):
            return self.detokenize(self.known_ids(request.prompt, "prompt")), True
        if request.prompt is not None:
            return request.prompt, False
        try:
            if self.tool_format is None:
                return self._formatter(messages=request.messages).prompt, True
            return self._formatter(messages=tool_formats.template_messages(request.messages),
                                   tools=tool_formats.template_tools(request)).prompt, True
        except Exception as exc:  # templates raise on e.g. unsupported role orders
            raise InvalidRequest(f"The chat template of '{self.model_id}' rejected the messages: {exc}",
                                 param="messages") from None

    def count_tokens(self, text: str, *, add_bos: bool = False) -> list[int]:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, which JSON and Python strings allow
            raise InvalidRequest("The text is not valid Unicode (it holds a lone surrogate such as \\ud800).",
                                 param="messages") from None
        return self._model.tokenize(data, add_bos=add_bos, special=True)

    def detokenize(self, tokens: tuple[int, ...] | list[int]) -> str:
        """The text of token ids (control tokens render as nothing, as in answers)."""
        return b"".join(self._pieces[t] for t in self.known_ids(tokens, "tokens")).decode("utf-8", "replace")

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        """As the model reads `text` (with its BOS token when `add_special` and the model uses one)."""
        return self.count_tokens(text, add_bos=add_special)

    def tokenizer_info(self) -> dict[str, Any]:
        """What a client needs to tokenize as this model does (vLLM's /tokenizer_info shape)."""
        bos, eos = self._model.token_bos(), self._model.token_eos()
        return {"bos_token": self._token_text(bos) or None, "eos_token": self._token_text(eos) or None,
                "pad_token": None, "chat_template": self._formatter.template, "vocab_size": self._model.n_vocab(),
                "max_model_len": self.n_ctx}

    def known_ids(self, tokens, param: str) -> list[int]:
        n_vocab = self._model.n_vocab()
        for token in tokens:
            if not 0 <= token < n_vocab:
                raise InvalidRequest(f"Token id {token} is not in the vocabulary of '{self.model_id}' "
                                     f"(0 to {n_vocab - 1}).", param=param)
        return list(tokens)

    def plan(self, request: GenerationRequest) -> generation.Plan:
        prompt, has_bos = self.render_prompt(request)
        if isinstance(request.prompt, tuple):  # token ids are read as given
            tokens = self.known_ids(request.prompt, "prompt")
        else:
            tokens = self.count_tokens(prompt, add_bos=not has_bos)
        self.known_ids([token for token, _ in request.logit_bias], "logit_bias")
        if not tokens:
            raise InvalidRequest("The prompt is empty: give at least one token of text.", param="prompt")
        answer = self._answer_tokens(prompt, tokens, request, add_bos=not has_bos)
        tokens += answer
        if len(tokens) >= self.n_ctx:
            raise ContextOverflow(
                f"This model's maximum context length is {self.n_ctx} tokens, but the prompt has "
                f"{len(tokens)} tokens. Shorten the messages or start the model with a larger --ctx.",
                param="messages" if request.messages is not None else "prompt",
            )
        room = self.n_ctx - len(tokens)
        max_new = room if request.max_tokens is None else min(request.max_tokens - len(answer), room)
        thinking = self.thinking and request.messages is not None
        in_reasoning = prompt.rstrip().endswith("<think>")
        grammar = self._native_tool_grammar(request, thinking=thinking, in_reasoning=in_reasoning) or {
            "grammar": _grammar_for(request)}
        return generation.Plan(
            request=request,
            prompt_tokens=tokens,
            max_new_tokens=max_new,
            banned_tokens=self.eog_tokens if request.ignore_eos else (),
            thinking=thinking,
            starts_in_reasoning=not answer and in_reasoning,
            answer_tokens=len(answer),
            **grammar,
        )

    def _native_tool_grammar(self, request: GenerationRequest, *, thinking: bool, in_reasoning: bool) -> dict:
        """The Plan fields of a tool-calling request in the model's own format (tool_formats.py)."""
        if self.tool_format is None or not tools.calls_tools(request):
            return {}
        grammar = self.tool_format.grammar(request.tools, parallel=request.parallel_tool_calls, thinking=thinking,
                                           in_reasoning=in_reasoning)
        check_grammar(grammar, "tools")
        forced = request.tool_choice == "required"
        return {"grammar": grammar, "grammar_root": tool_formats.FORCED_RULE if forced else tool_formats.AUTO_RULE}

    def _answer_tokens(self, prompt: str, prompt_tokens: list[int], request: GenerationRequest, *,
                       add_bos: bool) -> list[int]:
        """The tokens of an answer begun elsewhere: the ids it was generated with, as far as they spell
        its text (an instance of the same model sent them); the rest read from the text, as it follows
        the prompt (tokenized together, so nothing is read differently at the seam)."""
        if not request.prefix:
            return []
        known, rest = self._known_tokens(request.prefix_tokens, request.prefix.encode())
        if not rest:
            return known
        if known:
            return known + self.count_tokens(rest)
        together = self.count_tokens(prompt + rest, add_bos=add_bos)
        if together[:len(prompt_tokens)] == prompt_tokens:
            return together[len(prompt_tokens):]
        return self.count_tokens(rest)

    def _known_tokens(self, ids: tuple[int, ...], prefix: bytes) -> tuple[list[int], str]:
        """The longest run of `ids` that spells the start of `prefix` (ending between two characters),
        and the text it leaves. Ids of another vocabulary, or that render as nothing (control tokens),
        end the run."""
        n_vocab, ends = self._model.n_vocab(), [0]  # ends[k]: bytes spelled by the first k ids
        for token in ids:
            piece = self._pieces[token] if 0 <= token < n_vocab else b""
            if not piece or not prefix.startswith(piece, ends[-1]):
                break
            ends.append(ends[-1] + len(piece))
        count = len(ends) - 1
        while True:  # with no ids the rest is the whole prefix, which is valid text
            try:
                return list(ids[:count]), prefix[ends[count]:].decode()
            except UnicodeDecodeError:  # the run stops inside a character: one token fewer
                count -= 1

    # -- the engine contract --

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        # The request's text and schema are untrusted: their CPU work runs on a worker thread, bounded
        # in time, so /health and every other stream go on meanwhile.
        # A template that knows no tools (or a format not spoken here) gets the JSON envelope.
        served = request if self.tool_format else tools.as_envelope(request)
        try:
            plan, sampler = await asyncio.wait_for(asyncio.to_thread(self._prepare, served), PREPARE_SECONDS)
        except TimeoutError:
            raise InvalidRequest(f"Preparing this request took over {PREPARE_SECONDS:g} s (template, tokens "
                                 "and grammar); simplify the messages or the schema.") from None
        chunks = self.generate(plan, sampler)
        if tools.calls_tools(request):
            reader = tool_formats.NativeReader(self.tool_format) if self.tool_format else tools.EnvelopeReader()
            chunks = tools.read_calls(chunks, reader, begun=request.prefix)
        async for chunk in chunks:
            yield chunk

    def _prepare(self, request: GenerationRequest) -> tuple[generation.Plan, generation.Sampler]:
        plan = self.plan(request)
        if plan.answer_tokens and plan.grammar is not None:
            generation.check_answer_prefix(self._model.vocab, plan)
        return plan, generation.Sampler(self._model.vocab, self._model.n_vocab(), plan)  # bad grammars fail here

    async def generate(self, plan: generation.Plan, sampler: generation.Sampler | None = None) -> AsyncIterator[Chunk]:
        """Streams a prepared plan (tests use it to steer the model with grammars the API does not offer)."""
        if sampler is None:
            sampler = generation.Sampler(self._model.vocab, self._model.n_vocab(), plan)
        if self._closed:
            sampler.close()
            raise Unavailable(f"Model '{self.model_id}' is shutting down.")
        queued_at = time.perf_counter()
        try:
            ticket = await self.slots.acquire()
        except BaseException:
            sampler.close()
            raise
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[Any] = asyncio.Queue()

        def emit(item: Any) -> None:  # called on the decode thread
            try:
                loop.call_soon_threadsafe(out.put_nowait, item)
            except RuntimeError:  # the consumer's event loop is gone
                sequence.cancelled = True

        def release() -> None:
            self.slots.release(ticket)
            emit(_DONE)

        sequence = generation.Sequence(plan, sampler, emit, queued_at=queued_at)
        try:
            self.batch.submit(sequence, release)
        except Unavailable:
            sampler.close()
            self.slots.release(ticket)
            raise Unavailable(f"Model '{self.model_id}' is shutting down.") from None
        try:
            while (item := await out.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise Unavailable(f"Generation failed on '{self.model_id}': {item}") from item
                yield item
        finally:
            sequence.cancelled = True  # a disconnected client or Stop leaves the batch before the next step

    def load(self) -> Load:
        return Load(active=self.slots.active, queued=self.slots.queued, max_concurrent=self.slots.size)

    async def probe(self) -> ProbeResult:
        if self._closed:
            return ProbeResult(False, "shutting down")
        return ProbeResult(True, "local", self.load())

    def details(self) -> dict[str, Any]:
        return {
            "loaded": True,
            "path": str(self.path),
            "n_ctx": self.spec.n_ctx,
            "n_threads": self.spec.n_threads,
            "n_batch": self.spec.n_batch,
            **self.load().as_dict(),
            "max_queue": self.slots.max_queue,
            "thinking": self.thinking,
            "tool_format": self.tool_format.name if self.tool_format else "envelope",
            "load_seconds": round(self.load_seconds, 2),
            "memory_mb": self.memory_mb,
            "speculation": self.speculation,
            "cache_type": self.cache_type,
            "kv_cache_mb_per_slot": self.kv_cache_mb_per_slot,
        }

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self.batch.close)  # running generations finish first
        self._close_models()


def _grammar_for(request: GenerationRequest) -> str | None:
    if request.json_object:
        return JSON_GBNF
    if request.json_schema is None:
        return None
    check_schema(request.json_schema, SCHEMA_PARAM)
    try:
        grammar = json_schema_to_gbnf(json.dumps(request.json_schema))
    except Exception as exc:
        raise InvalidRequest(f"Unsupported JSON schema: {exc}", param="response_format") from None
    check_grammar(grammar, SCHEMA_PARAM)
    return grammar


def _resident_bytes() -> int:
    """This process's resident memory (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0
