"""The typed events every mode streams, and the options every mode takes.

Event types (the `type` field):
  mode_start     members, roles and options
  stage_start    a stage begins (`stage`: answers, rankings, round 2, final, ...)
  member_start   a member (or the chairman/moderator/judge/synthesizer) starts a turn
  token          a piece of that turn's text (`text`)
  member_done    the turn's whole text, duration, time to first token and tokens/s (`data`)
  member_error   the turn failed or timed out (`text` says why); the mode goes on without it
  stage_done     a stage ends; `data` carries what it decided (rankings, convergence, ...)
  tool_call      (agent) the lead calls a tool: `text` shows the call, `data` has id, name and arguments
  tool_result    (agent) what the tool returned (`text`; `data.error` when it failed)
  final          the mode's answer (`text`, written by `member`) and its summary (`data`)
  error          the mode cannot go on (e.g. every member failed)
  mode_done      the end, with the total duration
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EventType = Literal["mode_start", "stage_start", "member_start", "token", "member_done", "member_error",
                    "tool_call", "tool_result", "stage_done", "final", "error", "mode_done"]
Role = Literal["", "member", "chairman", "moderator", "judge", "synthesizer", "aggregator", "agent", "tool"]
Status = Literal["", "running", "done", "error"]


@dataclass(frozen=True)
class Event:
    type: EventType
    mode: str
    stage: str = ""
    member: str = ""
    role: Role = ""
    status: Status = ""
    text: str = ""
    duration_ms: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None, {})}


MAX_HISTORY = 64  # earlier messages a mode run takes


class Message(BaseModel):
    """One earlier message of the conversation a mode run continues."""

    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=32_000)


class ModeOptions(BaseModel):
    """What the caller chooses; shared by every mode (each uses the fields it needs)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    members: list[str] = Field(min_length=1, max_length=8, description="Model ids taking part")
    lead: str | None = Field(
        None, description="Chairman (council), moderator (roundtable), judge (debate), synthesizer "
        "(analyze) or aggregator (mixture); default: the first member")
    rounds: int = Field(2, ge=1, le=6, description="Rounds (roundtable, debate) or proposer layers (mixture)")
    max_tokens: int = Field(256, ge=1, le=4096, description="Per turn")
    temperature: float = Field(0.7, ge=0, le=2)
    turn_timeout: float = Field(120.0, gt=0, le=1800, description="Seconds before a turn counts as failed")
    exclude_self_votes: bool = Field(True, description="Council: a member's ranking of its own answer is ignored")
    max_steps: int = Field(5, ge=1, le=10, description="Agent: tool-calling steps before the lead must answer")
    history: list[Message] = Field(
        default_factory=list, max_length=MAX_HISTORY, description="The conversation so far (earlier questions and "
        "final answers): every turn sees it before its own prompt, so a follow-up question continues it")

    @field_validator("members")
    @classmethod
    def _each_member_once(cls, members: list[str] | None) -> list[str] | None:
        repeated = sorted({m for m in members or [] if members.count(m) > 1})
        if repeated:  # answers, rankings and revisions are told apart by member
            raise ValueError(f"each member takes part once; repeated: {', '.join(repeated)}")
        return members

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of one option: the UI reads its initial values here."""
        return cls.model_fields[name].default

    @property
    def lead_member(self) -> str:
        """Who leads (chairs, moderates, judges, aggregates): `lead`, else the first member."""
        return self.lead or self.members[0]
