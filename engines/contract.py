"""The engine contract: one streaming method plus `aclose()`.

Everything that produces tokens (a llama.cpp model in this process, later a remote OpenAI-compatible
server or a pool of instances) implements `Engine`. Callers that want one answer use `collect()`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. Exactly one of `messages` (chat) or `prompt` (plain completion) is set."""

    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    max_tokens: int | None = None  # None: until the context is full
    temperature: float = 0.8
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: dict[str, Any] | None = None  # constrain output to this JSON schema
    json_object: bool = False  # constrain output to any JSON object
    ignore_eos: bool = False  # keep generating past end-of-text (benchmarks, load tests)

    def __post_init__(self):
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("set exactly one of messages or prompt")


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose KV cache was reused from an earlier request

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        }


@dataclass
class Timings:
    """Where the time went, in milliseconds, measured by the engine."""

    queue_ms: float = 0.0
    ttft_ms: float = 0.0  # from slot acquired to first token out
    generation_ms: float = 0.0  # from slot acquired to last token out
    completion_tokens: int = 0

    @property
    def tokens_per_second(self) -> float:
        decode_ms = self.generation_ms - self.ttft_ms
        if self.completion_tokens < 2 or decode_ms <= 0:
            return 0.0
        return (self.completion_tokens - 1) / (decode_ms / 1000)

    def as_dict(self) -> dict[str, float]:
        return {
            "queue_ms": round(self.queue_ms, 2),
            "ttft_ms": round(self.ttft_ms, 2),
            "generation_ms": round(self.generation_ms, 2),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


@dataclass
class Chunk:
    """A piece of a stream. The last chunk has finish_reason, usage and timings set."""

    text: str = ""
    reasoning: str = ""  # a thinking model's reasoning, kept apart from the answer
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    timings: Timings | None = None


@dataclass
class Completion:
    """A whole stream collected."""

    text: str
    reasoning: str
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    created: float = field(default_factory=time.time)


class Engine(Protocol):
    """A model that can generate. `stream` raises errors from `engines.errors`, never returns None."""

    model_id: str

    def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]: ...

    def details(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


async def collect(stream: AsyncIterator[Chunk]) -> Completion:
    """Drain a stream into one Completion (the non-streaming path of every caller)."""
    text, reasoning, last = [], [], Chunk()
    async for chunk in stream:
        text.append(chunk.text)
        reasoning.append(chunk.reasoning)
        last = chunk
    if last.finish_reason is None or last.usage is None or last.timings is None:
        raise RuntimeError("engine stream ended without a final chunk")
    return Completion("".join(text), "".join(reasoning), last.finish_reason, last.usage, last.timings)
