"""The engine contract: one streaming method, plus what a pool needs to route and watch it.

Everything that produces tokens implements `Engine`: a llama.cpp model in this process
(`LocalEngine`), any OpenAI-compatible server (`RemoteEngine`), and all instances of one model
together (`Pool`). `stream` is the whole generation contract; callers that want one answer use
`collect()`. `load()` and `probe()` tell a pool how busy and how healthy an engine is, without
spending tokens; `details()` is free-form, for dashboards.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length", "tool_calls"]
MAX_STOPS, MAX_STOP_CHARS = 16, 256  # stop strings are matched at every token: their cost is bounded


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, its arguments' JSON schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call as it streams: the first piece of a call has its id and name, later
    ones add to its arguments (JSON text)."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. Exactly one of `messages` (chat) or `prompt` (plain completion: text, or
    token ids) is set."""

    messages: list[dict[str, Any]] | None = None
    prompt: str | tuple[int, ...] | None = None
    max_tokens: int | None = None  # None: until the context is full
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40  # 0: no top-k cut
    min_p: float = 0.05
    presence_penalty: float = 0.0  # OpenAI's: subtracted once from every token already generated
    frequency_penalty: float = 0.0  # OpenAI's: subtracted per time a token was generated
    repeat_penalty: float = 1.0  # llama.cpp's: divides the logits of recent tokens (1: off)
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, added to its logit)
    logprobs: int | None = None  # None: none; n: each token's log-probability and its n likeliest alternatives
    echo: bool = False  # plain completion: the prompt's tokens and their log-probabilities come first
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"  # auto | required | none; a named tool is `required` with only that tool
    parallel_tool_calls: bool = True
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: dict[str, Any] | None = None  # constrain output to this JSON schema
    json_object: bool = False  # constrain output to any JSON object
    ignore_eos: bool = False  # keep generating past end-of-text (benchmarks, load tests)
    # The start of the answer, already generated elsewhere (an instance that failed mid-stream): the
    # engine continues after it as if it had produced it — counted in completion tokens and max_tokens,
    # with seeded sampling and the response format carried on where they were.
    prefix: str = ""
    prefix_tokens: tuple[int, ...] = ()  # the prefix's token ids where known (same model): continued token for token
    resume: bool = True  # whether a pool may continue this answer on another instance after a failure

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
    draft_tokens: int = 0  # speculative decoding: tokens drafted, and how many the model kept
    draft_accepted: int = 0

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
            "draft_tokens": self.draft_tokens,
            "draft_accepted": self.draft_accepted,
        }


@dataclass(frozen=True)
class TokenLogprob:
    """One token as the model saw it: its bytes, its log-probability (None for a prompt's first token,
    which nothing predicts) and, when asked for, the likeliest alternatives at that position."""

    token: int
    piece: bytes
    logprob: float | None
    top: tuple[TokenLogprob, ...] = ()


@dataclass
class Chunk:
    """A piece of a stream. The last chunk has finish_reason, usage and timings set."""

    text: str = ""
    reasoning: str = ""  # a thinking model's reasoning, kept apart from the answer
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    tokens: tuple[int, ...] = ()  # ids generated since the previous chunk, where the engine knows them
    logprobs: tuple[TokenLogprob, ...] = ()  # of those tokens, when the request asked for logprobs
    echo: tuple[TokenLogprob, ...] = ()  # on the first chunk of an echo request: the prompt's tokens
    tool_calls: tuple[ToolCallDelta, ...] = ()


@dataclass
class Completion:
    """A whole stream collected."""

    text: str
    reasoning: str
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    created: float = field(default_factory=time.time)
    logprobs: list[TokenLogprob] = field(default_factory=list)  # when asked for
    tool_calls: list[ToolCallDelta] = field(default_factory=list)  # whole calls (id, name, arguments)
    echo: list[TokenLogprob] = field(default_factory=list)  # the prompt's tokens, for an echo request


@dataclass(frozen=True)
class Load:
    """How busy an engine is: requests generating, requests waiting, and how many it runs at once.
    The one shape of load everywhere: `details()`, heartbeats to a hub, and probes of an instance."""

    active: int = 0
    queued: int = 0
    max_concurrent: int = 1

    def as_dict(self) -> dict[str, int]:
        return {"active": self.active, "queued": self.queued, "max_concurrent": self.max_concurrent}

    @classmethod
    def read(cls, data: Any) -> Load | None:
        """A load from untrusted JSON (a heartbeat, another server's /health/details); None if unusable."""
        if not isinstance(data, dict):
            return None
        values = {key: data[key] for key in ("active", "queued", "max_concurrent")
                  if isinstance(data.get(key), int) and not isinstance(data.get(key), bool) and data[key] >= 0}
        if "max_concurrent" in values and values["max_concurrent"] < 1:
            del values["max_concurrent"]
        return cls(**values) if values else None


@dataclass(frozen=True)
class ProbeResult:
    """The answer to "can you serve?", found without generating."""

    ok: bool
    detail: str = ""
    load: Load | None = None  # where the engine reports it
    n_ctx: int | None = None  # its context length per request, where it reports it


class Engine(Protocol):
    """A model that can generate. Errors are the typed ones of `engines.errors`; nothing returns None."""

    model_id: str
    continues: bool  # honours GenerationRequest.prefix (this app's engines); else an answer cannot resume here

    def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """The answer, chunk by chunk; the last chunk has finish_reason, usage and timings. Closing
        the iterator early cancels the generation."""
        ...

    def load(self) -> Load | None:
        """Live load where the engine knows it (a local model's slots); None where only a probe can tell."""
        ...

    async def probe(self) -> ProbeResult:
        """Whether it can serve now, without spending tokens."""
        ...

    def details(self) -> dict[str, Any]:
        """Free-form facts for /health/details and the Models tab."""
        ...

    async def aclose(self) -> None: ...


async def collect(stream: AsyncIterator[Chunk]) -> Completion:
    """Drain a stream into one Completion (the non-streaming path of every caller)."""
    text, reasoning, logprobs, echo, calls, last = [], [], [], [], {}, Chunk()
    async for chunk in stream:
        text.append(chunk.text)
        reasoning.append(chunk.reasoning)
        logprobs += chunk.logprobs
        echo += chunk.echo
        for delta in chunk.tool_calls:
            call = calls.get(delta.index) or ToolCallDelta(delta.index)
            calls[delta.index] = ToolCallDelta(delta.index, call.id or delta.id, call.name or delta.name,
                                               call.arguments + delta.arguments)
        last = chunk
    if last.finish_reason is None or last.usage is None or last.timings is None:
        raise RuntimeError("engine stream ended without a final chunk")
    return Completion("".join(text), "".join(reasoning), last.finish_reason, last.usage, last.timings,
                      logprobs=logprobs, echo=echo, tool_calls=[calls[i] for i in sorted(calls)])
