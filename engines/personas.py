"""Personas: a name, a model, a system prompt and sampling settings, usable wherever a model id is.

A persona answers through its model's engine (`PersonaEngine`): its system prompt comes first (a
caller's own system message follows it), and its sampling settings replace the request's. A default
panel ships, so one small model can hold a real multi-member council; the fleet file (`personas:`)
and the Arena add more.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engines.contract import Chunk, Engine, GenerationRequest, Load, ProbeResult

ID_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"


class Persona(BaseModel):
    """One persona: `id` is what clients send as `model` (and how modes name the member)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN, description="Lower-case id, e.g. skeptic")
    name: str = Field(min_length=1, max_length=60, description="Shown in the Arena")
    model: str | None = Field(None, max_length=200, description="The model it speaks through; default: the "
                              "first hosted chat model")
    system: str = Field(min_length=1, max_length=4000, description="Its system prompt")
    temperature: float | None = Field(None, ge=0, le=2, description="Replaces the request's temperature")
    top_p: float | None = Field(None, gt=0, le=1, description="Replaces the request's top_p")

    @field_validator("name", "system")
    @classmethod
    def _stripped(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    def on(self, model: str) -> Persona:
        return self if self.model else self.model_copy(update={"model": model})


DEFAULT_PANEL: tuple[Persona, ...] = (
    Persona(id="skeptic", name="The Skeptic", temperature=0.5,
            system="You are a careful skeptic. Question assumptions, point out what could go wrong and what "
                   "evidence is missing, then give your own best answer. Be concise."),
    Persona(id="optimist", name="The Optimist", temperature=0.9,
            system="You are an energetic optimist. Look for opportunities and the best realistic outcome, and "
                   "suggest bold but practical steps. Be concise."),
    Persona(id="engineer", name="The Engineer", temperature=0.3,
            system="You are a pragmatic engineer. Break the problem into parts, prefer simple working solutions, "
                   "and give concrete numbers and steps. Be concise."),
    Persona(id="teacher", name="The Teacher", temperature=0.6,
            system="You are a patient teacher. Explain the answer plainly, step by step, with one small example. "
                   "Be concise."),
)


def slug(name: str) -> str:
    """An id for a persona named in the UI: "Devil's Advocate" -> "devils-advocate"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("'", "")).strip("-")[:40] or "persona"


class PersonaEngine:
    """A persona as an engine: its model's engine (looked up on every request, so a model that loads
    or fails later is seen as it is now) with the persona's prompt and settings."""

    continues = False  # its model's own pool resumes a broken answer; there is nothing to resume here

    def __init__(self, persona: Persona, lookup: Callable[[str], Engine]):
        self.persona = persona
        self.model_id = persona.id
        self._lookup = lookup

    def dressed(self, request: GenerationRequest) -> GenerationRequest:
        persona = self.persona
        changes: dict = {}
        if persona.temperature is not None:
            changes["temperature"] = persona.temperature
        if persona.top_p is not None:
            changes["top_p"] = persona.top_p
        if request.messages is not None:
            messages = list(request.messages)
            system = persona.system
            if messages and messages[0]["role"] == "system" and isinstance(messages[0].get("content"), str):
                system += "\n\n" + messages.pop(0)["content"]
            changes["messages"] = [{"role": "system", "content": system}, *messages]
        return replace(request, **changes)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        stream = self._lookup(self.persona.model).stream(self.dressed(request))
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    def load(self) -> Load | None:
        return self._lookup(self.persona.model).load()

    async def probe(self) -> ProbeResult:
        return await self._lookup(self.persona.model).probe()

    def details(self) -> dict:
        return {"persona": self.persona.model_dump()}

    async def aclose(self) -> None:
        pass  # the model's engine belongs to its pool
