"""One scripted engine for the faults a real model cannot produce on demand: a crash before or after
the first token, a hang, output that ignores a schema, a thinking model. Never the only proof that
something works: each behaviour it stands in for is also tested on the real models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from engines.contract import Chunk, GenerationRequest, Load, ProbeResult, Timings, ToolCallDelta, Usage


def answer(text: str = "ok", *, reasoning: str = "") -> list[Chunk]:
    """The chunks of a short, finished answer."""
    return [*([Chunk(reasoning=reasoning)] if reasoning else []), Chunk(text=text),
            Chunk(finish_reason="stop", usage=Usage(1, 1), timings=Timings(completion_tokens=1))]


def calls(*calls: tuple[str, str]) -> list[Chunk]:
    """The chunks of an answer that calls tools: (name, arguments JSON) each."""
    deltas = tuple(ToolCallDelta(i, id=f"call_{i}", name=name, arguments=arguments)
                   for i, (name, arguments) in enumerate(calls))
    return [Chunk(tool_calls=deltas), Chunk(finish_reason="tool_calls", usage=Usage(1, 1),
                                            timings=Timings(completion_tokens=1))]


class ScriptedEngine:
    """Plays `chunks` (or, with `turns`, the n-th script for the n-th request, the last one from then
    on), then raises `fault` or hangs (if asked); records every request it gets."""

    def __init__(self, chunks: Iterable[Chunk] = (), *, model_id: str = "scripted",
                 fault: Exception | None = None, hang: bool = False, probe: ProbeResult | None = None,
                 continues: bool = True, turns: list[list[Chunk]] | None = None):
        self.model_id, self.chunks, self.fault, self.hang = model_id, list(chunks), fault, hang
        self.turns = turns or []
        self.continues = continues  # whether a pool may resume an answer here
        self.probe_result = probe or ProbeResult(True, "scripted")
        self.requests: list[GenerationRequest] = []

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def stream(self, request: GenerationRequest):
        self.requests.append(request)
        script = self.turns[min(len(self.requests), len(self.turns)) - 1] if self.turns else self.chunks
        for chunk in script:
            yield chunk
        if self.fault is not None:
            raise self.fault
        if self.hang:
            await asyncio.sleep(3600)

    def load(self) -> Load | None:
        return None

    async def probe(self) -> ProbeResult:
        return self.probe_result

    def details(self) -> dict:
        return {}

    async def aclose(self) -> None:
        pass
