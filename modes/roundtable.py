"""roundtable: members take turns over R rounds, each seeing the transcript so far and asked to
build on it, challenge it or fill its gaps; after each round the moderator judges whether the
discussion has converged (a schema-constrained yes/no) and, at the end, writes the synthesis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from modes.events import Event, ModeOptions
from modes.turns import Answer, EngineLookup, Turn, TurnRunner, ask

TURN_PROMPT = """Question: {question}

Discussion so far:
{transcript}

You are {member}. Add one short contribution: build on a good point, challenge a weak or wrong one,
or fill a gap nobody covered. Do not repeat what was said."""

CONVERGED_PROMPT = """Question: {question}

Discussion so far:
{transcript}

Has the discussion converged on an answer, so that another round would add little?"""
CONVERGED_SCHEMA = {"type": "object", "properties": {"converged": {"type": "boolean"}}, "required": ["converged"]}

SYNTHESIS_PROMPT = """Question: {question}

Discussion:
{transcript}

As the moderator, write the final answer that the discussion supports. Reply with the answer only."""


def transcript(turns: list[Answer]) -> str:
    return "\n\n".join(f"[{t.turn.member}] {t.text.strip()}" for t in turns if t.ok) or "(nothing yet)"


async def run(question: str, options: ModeOptions, lookup: EngineLookup) -> AsyncIterator[Event]:
    runner = TurnRunner("roundtable", lookup, options)
    moderator = options.lead_member
    said: list[Answer] = []
    for round_number in range(1, options.rounds + 1):
        stage = f"round {round_number}"
        yield runner.event("stage_start", stage=stage)
        for member in options.members:  # in turn: each sees everything said before it
            prompt = TURN_PROMPT.format(question=question, transcript=transcript(said), member=member)
            async for event in runner.run([Turn(member, "member", stage, ask(prompt))], said):
                yield event
        converged = False
        if round_number < options.rounds and any(a.ok for a in said):
            verdict: list[Answer] = []
            prompt = CONVERGED_PROMPT.format(question=question, transcript=transcript(said))
            async for event in runner.run([Turn(moderator, "moderator", stage, ask(prompt), CONVERGED_SCHEMA)],
                                          verdict):
                yield event
            converged = _converged(verdict[0])
        yield runner.event("stage_done", stage=stage, data={"converged": converged})
        if converged:
            break
    if not any(a.ok for a in said):
        yield runner.all_failed(said, "No member managed a turn")
        return
    final: list[Answer] = []
    prompt = SYNTHESIS_PROMPT.format(question=question, transcript=transcript(said))
    async for event in runner.stage("final", [Turn(moderator, "moderator", "final", ask(prompt))], final):
        yield event
    turns = sum(1 for a in said if a.ok)
    if final[0].ok:
        yield runner.event("final", member=moderator, role="moderator", text=final[0].text.strip(),
                           data={"turns": turns})
    else:  # no synthesis: the last contribution stands
        last = [a for a in said if a.ok][-1]
        yield runner.event("final", member=last.turn.member, role="member", text=last.text.strip(),
                           data={"turns": turns, "moderator_error": final[0].error})


def _converged(answer: Answer) -> bool:
    """Remote models may ignore the schema: anything unreadable counts as "not converged"."""
    try:
        return answer.ok and json.loads(answer.text).get("converged") is True
    except (ValueError, AttributeError):
        return False
