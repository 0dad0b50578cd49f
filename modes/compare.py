"""compare: every member answers the same question in parallel; the fastest is marked."""

from __future__ import annotations

from collections.abc import AsyncIterator

from modes.events import Event, ModeOptions
from modes.turns import Answer, EngineLookup, Turn, TurnRunner, ask


async def run(question: str, options: ModeOptions, lookup: EngineLookup) -> AsyncIterator[Event]:
    runner = TurnRunner("compare", lookup, options)
    answers: list[Answer] = []
    async for event in runner.stage("answers", [Turn(m, "member", "answers", ask(question))
                                                for m in options.members], answers):
        yield event
    ok = [a for a in answers if a.ok]
    yield runner.event("stage_done", stage="answers", data={"answered": len(ok), "failed": len(answers) - len(ok)})
    if not ok:
        yield runner.all_failed(answers)
        return
    fastest_first_token = min(ok, key=lambda a: a.stats.get("ttft_ms", float("inf"))).turn.member
    fastest_total = min(ok, key=lambda a: a.duration_ms).turn.member
    results = [{"member": a.turn.member, "ok": a.ok, "duration_ms": a.duration_ms, "error": a.error, **a.stats}
               for a in answers]
    text = "\n\n".join(f"**{a.turn.member}**{' ⚡' if a.turn.member == fastest_total else ''}\n\n{a.text.strip()}"
                       for a in ok)
    yield runner.event("final", text=text, data={
        "fastest_first_token": fastest_first_token, "fastest_total": fastest_total, "results": results})
