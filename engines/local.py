"""A GGUF model hosted in this process with llama-cpp-python.

Each slot is its own llama.cpp context (`Llama` object), so no two requests ever touch one context;
with mmap the weights pages are shared between them. Generations run on worker threads, so the
event loop (and /health) stays responsive while tokens are made.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

from engines import generation
from engines.catalog import ModelSpec
from engines.contract import Chunk, GenerationRequest
from engines.errors import ContextOverflow, InvalidRequest, Unavailable
from engines.slots import SlotPool

_DONE = object()

# Used when a GGUF carries no chat template.
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class LocalEngine:
    def __init__(self, spec: ModelSpec, path: Path, *, max_queue: int, queue_timeout: float):
        self.spec = spec
        self.model_id = spec.id
        self.path = path
        started = time.perf_counter()
        contexts = [self._new_context() for _ in range(spec.max_concurrent)]
        self.load_seconds = time.perf_counter() - started
        self._tokenizer = contexts[0]  # tokenizing only reads the vocabulary: safe beside a generation
        template = contexts[0].metadata.get("tokenizer.chat_template") or _CHATML
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(contexts[0].token_eos()),
            bos_token=self._token_text(contexts[0].token_bos()),
        )
        self.thinking = spec.thinking or "<think>" in template
        self.slots = SlotPool(contexts, max_queue=max_queue, queue_timeout=queue_timeout, name=spec.id)
        self._workers = ThreadPoolExecutor(spec.max_concurrent, thread_name_prefix=f"gen-{spec.id}")
        self._closed = False

    def _new_context(self) -> llama_cpp.Llama:
        return llama_cpp.Llama(
            model_path=str(self.path),
            n_ctx=self.spec.n_ctx,
            n_threads=self.spec.n_threads,
            n_threads_batch=self.spec.n_threads,
            n_batch=self.spec.n_batch,
            use_mmap=True,
            verbose=False,
        )

    def _token_text(self, token: int) -> str:
        return self._tokenizer._model.token_get_text(token) if token != -1 else ""  # noqa: SLF001

    @functools.cached_property
    def eog_tokens(self) -> tuple[int, ...]:
        """End-of-generation token ids (banned when a request sets ignore_eos)."""
        vocab = self._tokenizer._model.vocab  # noqa: SLF001
        return tuple(t for t in range(self._tokenizer.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t))

    @property
    def n_ctx(self) -> int:
        return self.spec.n_ctx

    # -- request preparation (before a slot is taken, so bad requests never wait in the queue) --

    def render_prompt(self, request: GenerationRequest) -> tuple[str, bool]:
        """The text fed to the model, and whether the template already added the BOS token."""
        if request.prompt is not None:
            return request.prompt, False
        try:
            return self._formatter(messages=request.messages).prompt, True
        except Exception as exc:  # templates raise on e.g. unsupported role orders
            raise InvalidRequest(f"The chat template of '{self.model_id}' rejected the messages: {exc}",
                                 param="messages") from None

    def count_tokens(self, text: str, *, add_bos: bool = False) -> list[int]:
        return self._tokenizer.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def plan(self, request: GenerationRequest) -> generation.Plan:
        prompt, has_bos = self.render_prompt(request)
        tokens = self.count_tokens(prompt, add_bos=not has_bos)
        if len(tokens) >= self.n_ctx:
            raise ContextOverflow(
                f"This model's maximum context length is {self.n_ctx} tokens, but the prompt has "
                f"{len(tokens)} tokens. Shorten the messages or start the model with a larger --ctx.",
                param="messages" if request.messages is not None else "prompt",
            )
        room = self.n_ctx - len(tokens)
        max_new = room if request.max_tokens is None else min(request.max_tokens, room)
        return generation.Plan(
            request=request,
            prompt_tokens=tokens,
            max_new_tokens=max_new,
            grammar=_grammar_for(request),
            banned_tokens=self.eog_tokens if request.ignore_eos else (),
            thinking=self.thinking and request.messages is not None,
            starts_in_reasoning=prompt.rstrip().endswith("<think>"),
        )

    # -- the engine contract --

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        if self._closed:
            raise Unavailable(f"Model '{self.model_id}' is shutting down.")
        plan = self.plan(request)
        queued_at = time.perf_counter()
        llm = await self.slots.acquire()
        acquired_at = time.perf_counter()
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def work() -> None:
            try:
                generation.run(
                    llm, plan, lambda chunk: loop.call_soon_threadsafe(out.put_nowait, chunk),
                    cancelled, acquired_at, (acquired_at - queued_at) * 1000,
                )
            except BaseException as exc:  # surfaces in the consumer instead of dying in the thread
                loop.call_soon_threadsafe(out.put_nowait, exc)
            finally:
                self.slots.release(llm)  # only now: the context is no longer in use
                loop.call_soon_threadsafe(out.put_nowait, _DONE)

        try:
            self._workers.submit(work)
        except RuntimeError:  # executor shut down between the check above and here
            self.slots.release(llm)
            raise Unavailable(f"Model '{self.model_id}' is shutting down.") from None
        try:
            while (item := await out.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise Unavailable(f"Generation failed on '{self.model_id}': {item}") from item
                yield item
        finally:
            cancelled.set()  # a disconnected client or Stop ends the loop within a token

    def details(self) -> dict[str, Any]:
        return {
            "loaded": True,
            "path": str(self.path),
            "n_ctx": self.spec.n_ctx,
            "n_threads": self.spec.n_threads,
            "n_batch": self.spec.n_batch,
            "max_concurrent": self.slots.size,
            "active": self.slots.active,
            "queued": self.slots.queued,
            "max_queue": self.slots.max_queue,
            "thinking": self.thinking,
            "load_seconds": round(self.load_seconds, 2),
        }

    async def aclose(self) -> None:
        self._closed = True
        await asyncio.to_thread(self._workers.shutdown, wait=True)


def _grammar_for(request: GenerationRequest) -> LlamaGrammar | None:
    try:
        if request.json_schema is not None:
            return LlamaGrammar.from_json_schema(json.dumps(request.json_schema), verbose=False)
        if request.json_object:
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    except Exception as exc:
        raise InvalidRequest(f"Unsupported JSON schema: {exc}", param="response_format") from None
    return None
