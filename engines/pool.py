"""All instances of one model behind one engine: balancing, health, failover.

`Pool.stream` picks the least-busy healthy instance (active + queued against its max_concurrent,
counting both this process's own requests and what the instance last reported). An error before
the first token (refused connection, 429, 503, timeout) moves the request to another instance; the
client never sees it. A failure after the first token resumes the answer: another instance that can
continue one (`Engine.continues`) gets the same request with the text already sent as its prefix and
streams only what follows, so the client sees one uninterrupted answer (at most `MAX_RESUMES` times;
not when the request opted out with `resume=False`, nor after reasoning was streamed). Without such an
instance the stream ends with the error.

An instance that fails `FAILURES_TO_COOL` times within `FAILURE_WINDOW` seconds (or cannot be reached
at all) cools down: it gets no traffic until a health probe passes again, at the earliest after
`MIN_COOLDOWN` seconds. Health checks are driven from outside (the fleet monitor) through `check()`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from engines.catalog import ModelSpec
from engines.contract import Chunk, Engine, GenerationRequest, Load, ProbeResult, Usage
from engines.errors import EngineError, InvalidRequest, Overloaded, Unavailable, Unreachable
from engines.metering import TokenBudget

FAILURES_TO_COOL = 3
FAILURE_WINDOW = 30.0
MIN_COOLDOWN = 2.0
GONE_KEEP_SECONDS = 600.0  # a gone instance stays listed (for the dashboards) this long
TRUSTED_SLOTS = 2  # what a registered instance is believed to run at once before it has shown more
MAX_RESUMES = 2  # times one answer may move to another instance after its instance failed mid-stream

log = logging.getLogger(__name__)

State = Literal["loading", "healthy", "cooling", "draining", "gone", "failed"]


class Observer(Protocol):
    """Receives one call per attempt on an instance (metrics live outside the engines)."""

    def attempt(self, model: str, instance: str, status: str, *, ttft: float | None = None,
                latency: float | None = None, usage: Usage | None = None) -> None: ...


class _NoObserver:
    def attempt(self, *args, **kwargs) -> None:
        pass


@dataclass
class Instance:
    """One place that serves the model: a local engine or a remote server."""

    name: str
    engine: Engine | None
    kind: Literal["local", "remote"]
    source: str  # local | fleet | env | registered
    max_concurrent: int = 2
    state: State = "healthy"
    error: str = ""
    in_flight: int = 0  # this process's requests on it now
    reported: Load | None = None  # what the instance itself last said (heartbeat or probe)
    n_ctx: int = 0  # its context length, as it reported it (registration or probe); 0 unknown
    proven: int = 0  # the most requests it was seen answering at once
    failures: deque = field(default_factory=lambda: deque(maxlen=FAILURES_TO_COOL))
    cooling_since: float = 0.0
    last_seen: float = field(default_factory=time.time)
    requests: int = 0
    errors: int = 0
    latency_ms: float = 0.0  # moving averages of successful requests
    ttft_ms: float = 0.0
    tokens_per_second: float = 0.0

    @property
    def routable(self) -> bool:
        return self.state == "healthy" and self.engine is not None

    def _load(self) -> Load:
        """Live for a local engine, the last report for a remote one, else what the configuration says."""
        live = self.engine.load() if self.engine is not None else None
        return live or self.reported or Load(max_concurrent=self.max_concurrent)

    @property
    def active(self) -> int:
        return max(self.in_flight if self.kind == "remote" else 0, self._load().active)

    @property
    def queued(self) -> int:
        return self._load().queued

    @property
    def capacity(self) -> int:
        """Slots, as the instance reports them; a registered one (a stranger, on a public hub) is trusted
        with at most twice what it has been seen to handle, so a false report cannot draw all traffic."""
        reported = self._load().max_concurrent
        if self.source != "registered":
            return reported
        return min(reported, max(TRUSTED_SLOTS, 2 * self.proven))

    @property
    def busyness(self) -> float:
        return (self.active + self.queued) / max(self.capacity, 1)

    def fail(self, message: str, *, at_once: bool = False) -> None:
        now = time.monotonic()
        self.failures.append(now)
        self.error = message
        repeated = len(self.failures) == FAILURES_TO_COOL and now - self.failures[0] <= FAILURE_WINDOW
        if self.state == "healthy" and (at_once or repeated):
            self.state, self.cooling_since = "cooling", now

    def succeed(self, ttft_ms: float, latency_ms: float, tokens_per_second: float) -> None:
        def ewma(old: float, new: float) -> float:
            return new if old == 0 else 0.8 * old + 0.2 * new

        self.ttft_ms, self.latency_ms = ewma(self.ttft_ms, ttft_ms), ewma(self.latency_ms, latency_ms)
        if tokens_per_second:
            self.tokens_per_second = ewma(self.tokens_per_second, tokens_per_second)

    def describe(self) -> dict[str, Any]:
        out = {
            "name": self.name, "kind": self.kind, "source": self.source, "state": self.state,
            "active": self.active, "queued": self.queued,
            "max_concurrent": self.capacity,
            "requests": self.requests, "errors": self.errors,
            "latency_ms": round(self.latency_ms, 1), "ttft_ms": round(self.ttft_ms, 1),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "last_seen_seconds_ago": round(time.time() - self.last_seen, 1),
        }
        if self.error:
            out["error"] = self.error
        if self.engine is not None:
            out = {**self.engine.details(), **out}
        return out


class _Answer:
    """What one request has streamed so far, across the instances that served it."""

    def __init__(self, original: GenerationRequest):
        self.original = original
        self.sent: list[str] = []  # the answer's text as the client received it
        self.tokens: list[int] = list(original.prefix_tokens)  # its token ids, while every piece came with them
        self.tokens_known = bool(original.prefix_tokens) or not original.prefix
        self.chunks = 0  # text-bearing chunks delivered (each paid one token of the budget)
        self.reasoning = False  # reasoning was streamed: its markers are the model's own, so no resume
        self.resumes = 0

    def add(self, chunk: Chunk) -> None:
        self.chunks += 1
        self.sent.append(chunk.text)
        self.tokens += chunk.tokens
        self.tokens_known = self.tokens_known and bool(chunk.tokens)
        self.reasoning = self.reasoning or bool(chunk.reasoning)

    @property
    def continued(self) -> bool:
        """Whether the answer is begun already (here, or by the caller): only some engines continue one."""
        return bool(self.sent or self.original.prefix)

    def request(self) -> GenerationRequest:
        """The original request, or — after a failure mid-answer — the same with what was sent as prefix."""
        if not self.sent:
            return self.original
        return replace(self.original, prefix=self.original.prefix + "".join(self.sent),
                       prefix_tokens=tuple(self.tokens) if self.tokens_known else ())

    def resumable(self, error: EngineError) -> bool:
        return (self.original.resume and self.resumes < MAX_RESUMES and not self.reasoning
                and not self.original.tools and isinstance(error, Unavailable))  # an envelope is not text


class Pool:
    """The engine for one model id: every request goes through here, whichever instance serves it."""

    continues = True  # an answer begun elsewhere goes to an instance that continues it

    def __init__(self, spec: ModelSpec, observer: Observer | None = None):
        self.spec = spec
        self.model_id = spec.id
        self.instances: dict[str, Instance] = {}
        self.observer: Observer = observer or _NoObserver()
        self.budget: TokenBudget | None = None  # per-caller tokens per minute, when the server sets one
        self._turn = itertools.count()
        self.created = int(time.time())

    # -- membership --

    def add(self, instance: Instance) -> Instance:
        self.instances[instance.name] = instance
        return instance

    def remove(self, name: str) -> Instance | None:
        return self.instances.pop(name, None)

    @property
    def local(self) -> Instance | None:
        return next((i for i in self.instances.values() if i.kind == "local"), None)

    @property
    def state(self) -> str:
        """ready if any instance can serve; else loading, failed or unavailable."""
        states = {i.state for i in self.instances.values()}
        if any(i.routable for i in self.instances.values()):
            return "ready"
        if "loading" in states:
            return "loading"
        if states == {"failed"}:
            return "failed"
        return "unavailable"

    @property
    def active(self) -> int:
        return sum(i.active for i in self.instances.values() if i.state != "gone")

    @property
    def context_length(self) -> int:
        """The context every instance can take: the smallest of this process's own (when it hosts the
        model) and what remote instances reported; else the catalog's (0: unknown)."""
        known = [i.n_ctx for i in self.instances.values() if i.kind == "remote" and i.n_ctx and i.state != "gone"]
        if self.local is not None:
            known.append(self.spec.n_ctx)
        return min(known) if known else self.spec.n_ctx

    @property
    def error(self) -> str:
        return "; ".join(f"{i.name}: {i.error}" for i in self.instances.values() if i.error and not i.routable)

    # -- routing --

    def pick(self, exclude: set[str] = frozenset(), *, continuing: bool = False) -> Instance | None:
        """The least busy routable instance not in `exclude`; when `continuing` an answer begun
        elsewhere, only one whose engine can continue it."""
        candidates = [i for i in self.instances.values() if i.routable and i.name not in exclude
                      and (i.engine.continues or not continuing)]
        if not candidates:
            return None
        least = min(i.busyness for i in candidates)
        tied = [i for i in candidates if i.busyness == least]
        return tied[next(self._turn) % len(tied)]  # round-robin among equals spreads idle load

    def _no_instance(self, last_error: EngineError | None) -> EngineError:
        if last_error is not None:
            return last_error
        if self.state == "loading":
            return Unavailable(f"Model '{self.model_id}' is still loading; retry in a few seconds.")
        states = "; ".join(f"{i.name} {i.state}" + (f": {i.error}" if i.error else "")
                           for i in self.instances.values()) or "none registered"
        return Unavailable(f"No healthy instance of '{self.model_id}' right now ({states}); retry shortly.")

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        if self.budget is not None:
            self.budget.admit()  # the caller's token budget (engines/metering.py), before any work
        tried: set[str] = set()
        last_error: EngineError | None = None
        answer = _Answer(request)
        while (instance := self.pick(tried, continuing=answer.continued)) is not None:
            tried.add(instance.name)
            instance.in_flight += 1
            instance.requests += 1
            started = time.perf_counter()
            source = instance.engine.stream(answer.request())
            status, chunk, ttft = "cancelled", None, 0.0
            try:
                try:
                    chunk = await anext(source)
                except (Overloaded, Unavailable) as exc:  # nothing sent from here: another instance may serve it
                    status, last_error = exc.code, exc
                    instance.errors += 1
                    if not isinstance(exc, Overloaded):  # busy is not broken
                        instance.fail(exc.message, at_once=isinstance(exc, Unreachable))
                    continue
                ttft = time.perf_counter() - started
                while chunk.finish_reason is None:
                    if chunk.text or chunk.reasoning:  # spent live: a stream cut short has paid its part
                        answer.add(chunk)
                        self._spend(1)
                    yield chunk
                    chunk = await anext(source)
                status = "ok"  # before the last yield: the caller may close the stream right after it
                if chunk.usage is not None:  # settle: the prompt decoded, and tokens the chunks did not count
                    usage = chunk.usage
                    self._spend(usage.prompt_tokens - usage.cached_tokens + usage.completion_tokens - answer.chunks)
                yield chunk
            except (EngineError, StopAsyncIteration) as exc:  # a bad request, or a failure after the first token
                if isinstance(exc, StopAsyncIteration):
                    exc = Unavailable(f"Instance {instance.name} stopped without finishing the answer.")
                status = exc.code
                if isinstance(exc, InvalidRequest):
                    raise
                instance.errors += 1
                instance.fail(exc.message, at_once=isinstance(exc, Unreachable))
                if not answer.resumable(exc):
                    raise exc from None
                status, last_error = "resumed", exc
                answer.resumes += 1
                log.warning("%s failed after %d chunks (%s): resuming on another instance", instance.name,
                            answer.chunks, exc.message)
                continue
            finally:
                instance.in_flight -= 1
                await source.aclose()
                self._record(instance, status, started, ttft, chunk)
            return
        if not tried:  # nothing was attempted: count it, or it would be invisible in the metrics
            self.observer.attempt(self.model_id, "none", "no_instance")
        raise self._no_instance(last_error)

    def _spend(self, tokens: int) -> None:
        if self.budget is not None:
            self.budget.spend(tokens)

    def _record(self, instance: Instance, status: str, started: float, ttft: float, last: Chunk | None) -> None:
        if status != "ok" or last is None:
            self.observer.attempt(self.model_id, instance.name, status)
            return
        latency = time.perf_counter() - started
        instance.proven = max(instance.proven, instance.in_flight + 1)  # counting this one, which just left
        instance.succeed(ttft * 1000, latency * 1000, last.timings.tokens_per_second if last.timings else 0.0)
        self.observer.attempt(self.model_id, instance.name, status, ttft=ttft, latency=latency, usage=last.usage)

    # -- health --

    async def check(self) -> None:
        """Asks each instance whether it can serve (no tokens spent); updates states and load."""
        for instance in list(self.instances.values()):
            if instance.state == "gone" and time.time() - instance.last_seen > GONE_KEEP_SECONDS:
                self.remove(instance.name)
        await asyncio.gather(*(self._probe(i) for i in self.instances.values() if i.state in ("healthy", "cooling")))

    async def _probe(self, instance: Instance) -> None:
        cooled = time.monotonic() - instance.cooling_since >= MIN_COOLDOWN
        result = await instance.engine.probe()
        if result.load is not None:
            instance.reported = result.load
        if result.n_ctx:
            instance.n_ctx = result.n_ctx
        if not result.ok:
            instance.fail(f"health probe failed: {result.detail}", at_once=True)
        else:
            instance.last_seen = time.time()
            if instance.state == "cooling" and cooled:
                instance.state, instance.error = "healthy", ""
                instance.failures.clear()

    def load(self) -> Load:
        live = [i for i in self.instances.values() if i.state != "gone"]
        return Load(active=self.active, queued=sum(i.queued for i in live),
                    max_concurrent=max(1, sum(i.capacity for i in live if i.routable)))

    async def probe(self) -> ProbeResult:
        return ProbeResult(self.state == "ready", self.state, self.load())

    def details(self) -> dict[str, Any]:
        instances = list(self.instances.values())
        local = self.local
        out: dict[str, Any] = {
            **(local.engine.details() if local and local.engine else {}),  # an instance's own figures
            "state": self.state,
            "active": self.active,
            "queued": sum(i.queued for i in instances if i.state != "gone"),
            "max_concurrent": sum(i.capacity for i in instances if i.routable),
            "n_ctx": self.context_length,
            "healthy_instances": sum(i.routable for i in instances),
            "instances": [i.describe() for i in instances],
        }
        if self.error:
            out["error"] = self.error
        return out

    async def aclose(self) -> None:
        for instance in self.instances.values():
            if instance.engine is not None:
                await instance.engine.aclose()
