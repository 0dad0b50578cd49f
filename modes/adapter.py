"""What every adapter of a mode shares — the REST route, the OpenAI alias and the Arena tab:
`resolve_options` checks a request before anything runs, and `ModeRun` folds the event stream into
what they show (turns as they unfold, the stages' decisions, the final answer, usage)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engines.errors import InvalidRequest, UnknownModel
from engines.registry import ModelRegistry
from modes import MAX_TURNS, MODES, turns_of
from modes.events import Event, ModeOptions, Role, Status


class UnknownMode(UnknownModel):
    code = "mode_not_found"


class InvalidOption(InvalidRequest):
    code = "invalid_value"


def resolve_options(mode: str, fields: dict[str, Any], registry: ModelRegistry) -> ModeOptions:
    """The options for `mode`, or a typed error before any model runs: UnknownMode, InvalidOption
    (naming the field) or UnknownModel (listing what is available). Members default to the hosted
    chat models, or the personas when one model is hosted (`registry.default_members`)."""
    if mode not in MODES:
        raise UnknownMode(f"Unknown mode '{mode}'. Modes: {', '.join(MODES)}.", param="mode")
    if fields.get("members") is None:
        fields = {**fields, "members": registry.default_members}
    try:
        options = ModeOptions(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"])
        raise InvalidOption(f"Invalid mode option '{param}': {first['msg']}", param=param) from None
    if turns_of(mode, options) > MAX_TURNS:
        raise InvalidOption(f"This {mode} would take {turns_of(mode, options)} model turns; the limit is "
                            f"{MAX_TURNS}. Use fewer members or rounds.", param="rounds")
    for model_id in [*options.members, *([options.lead] if options.lead else [])]:
        registry.require(model_id)  # raises UnknownModel listing the available models
    return options


@dataclass
class Step:
    """One turn of one member, as it unfolds."""

    stage: str
    member: str
    role: Role
    text: str = ""
    status: Status = "running"
    duration_ms: float | None = None
    error: str = ""
    # When the fold saw the turn start and its first and latest token (its clock's seconds), and how many
    # token events came: the figures while the turn runs. `reported` is what member_done says (measured
    # where the turn ran: the engine's token count and speed), which replaces them once the turn is over.
    started_at: float | None = None
    first_at: float | None = None
    last_at: float | None = None
    chunks: int = 0
    reported: dict[str, Any] = field(default_factory=dict)

    @property
    def ttft_ms(self) -> float | None:
        """Time to first token: the turn runner's figure once done, else the fold's own."""
        if "ttft_ms" in self.reported:
            return self.reported["ttft_ms"]
        if self.first_at is None or self.started_at is None:
            return None
        return round((self.first_at - self.started_at) * 1000, 1)

    @property
    def tokens(self) -> int:
        """Tokens written: the engine's usage once done, else one per token event (a chunk)."""
        return int(self.reported.get("completion_tokens") or self.chunks)

    @property
    def tokens_per_second(self) -> float | None:
        """Decode speed after the first token: the engine's figure once done, else the fold's."""
        if self.reported.get("tokens_per_second"):
            return self.reported["tokens_per_second"]
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at or self.tokens < 2:
            return None
        return round((self.tokens - 1) / (self.last_at - self.first_at), 1)

    @property
    def title(self) -> str:
        who = self.member if self.role == "member" else f"{self.role}: {self.member}"
        return f"{self.stage} · {who}" + (" (failed)" if self.status == "error" else "")


@dataclass
class ModeRun:
    """The fold of one mode's events."""

    mode: str
    stage: str = ""  # the stage running now
    steps: list[Step] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)  # member_done / member_error events
    stages: list[dict[str, Any]] = field(default_factory=list)  # stage_done events (what each decided)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # agent: each call with its result
    final: Event | None = None
    error: str = ""
    duration_ms: float | None = None
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False)  # times the steps' tokens
    _open: dict[tuple[str, str, str], Step] = field(default_factory=dict, repr=False)

    def apply(self, event: Event) -> None:
        key = (event.stage, event.member, event.role)
        if event.type == "stage_start":
            self.stage = event.stage
        elif event.type == "member_start":
            self._open[key] = Step(event.stage, event.member, event.role, started_at=self.clock())
            self.steps.append(self._open[key])
        elif event.type == "token" and key in self._open:
            step = self._open[key]
            step.text += event.text
            step.last_at, step.chunks = self.clock(), step.chunks + 1
            if step.first_at is None:
                step.first_at = step.last_at
        elif event.type in ("member_done", "member_error"):
            self.turns.append(event.as_dict())
            step = self._open.pop(key, None)
            if step is not None:
                step.status, step.duration_ms = ("done" if event.type == "member_done" else "error"), event.duration_ms
                step.error = event.text if event.type == "member_error" else ""
                step.reported = dict(event.data) if event.type == "member_done" else {}
        elif event.type == "tool_call":
            self._open[key] = Step(event.stage, event.member, event.role, text=event.text)
            self.steps.append(self._open[key])
        elif event.type == "tool_result" and key in self._open:
            step = self._open.pop(key)
            step.text += f"\n→ {event.text}"
            step.status = "error" if event.data.get("error") else "done"
            self.tool_calls.append({"stage": event.stage, "name": event.member, "call": step.text.split("\n→ ")[0],
                                    "result": event.text, "error": bool(event.data.get("error"))})
        elif event.type == "stage_done":
            self.stages.append(event.as_dict())
        elif event.type == "final":
            self.final = event
        elif event.type == "error":
            self.error = event.text
        elif event.type == "mode_done":
            self.duration_ms = event.duration_ms

    @classmethod
    async def collect(cls, mode: str, events: AsyncIterator[Event]) -> ModeRun:
        """Runs the stream to its end (closing it however that comes)."""
        run = cls(mode)
        try:
            async for event in events:
                run.apply(event)
        finally:
            await events.aclose()
        return run

    def summary(self) -> dict[str, Any]:
        return {"mode": self.mode, "final": self.final.as_dict() if self.final else None, "stages": self.stages,
                "turns": self.turns, **({"tool_calls": self.tool_calls} if self.tool_calls else {}),
                "duration_ms": self.duration_ms}

    def usage(self) -> dict[str, int]:
        """Tokens of every turn, OpenAI-style."""
        prompt = sum(t.get("data", {}).get("prompt_tokens", 0) for t in self.turns)
        completion = sum(t.get("data", {}).get("completion_tokens", 0) for t in self.turns)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
