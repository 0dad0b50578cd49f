"""mixture (Mixture-of-Agents, Wang et al. 2024): `rounds` layers of proposers, each layer seeing the
previous layer's answers; then an aggregator (the lead) writes the final answer from the last layer."""

from __future__ import annotations

from collections.abc import AsyncIterator

from modes.events import Event, ModeOptions
from modes.turns import Answer, EngineLookup, Turn, TurnRunner, ask

REFINE_PROMPT = """Question: {question}

Responses from other assistants (they may contain mistakes):
{responses}

Critically use them to write your own best answer to the question."""

AGGREGATE_PROMPT = """Question: {question}

Candidate answers:
{responses}

Synthesize these into a single, accurate, well-written answer. Reply with the answer only."""


def numbered(answers: list[Answer]) -> str:
    return "\n\n".join(f"{i}. {a.text.strip()}" for i, a in enumerate(answers, 1))


async def run(question: str, options: ModeOptions, lookup: EngineLookup) -> AsyncIterator[Event]:
    runner = TurnRunner("mixture", lookup, options)
    aggregator = options.lead_member
    previous: list[Answer] = []
    for layer in range(1, options.rounds + 1):
        stage = f"layer {layer}"
        prompt = question if not previous else REFINE_PROMPT.format(question=question, responses=numbered(previous))
        answers: list[Answer] = []
        async for event in runner.stage(stage, [Turn(m, "member", stage, ask(prompt)) for m in options.members],
                                        answers):
            yield event
        ok = [a for a in answers if a.ok]
        yield runner.event("stage_done", stage=stage, data={"answered": len(ok)})
        if ok:
            previous = ok  # a layer where everyone failed keeps the last good one
        elif not previous:
            yield runner.all_failed(answers)
            return
    final: list[Answer] = []
    prompt = AGGREGATE_PROMPT.format(question=question, responses=numbered(previous))
    async for event in runner.stage("final", [Turn(aggregator, "aggregator", "final", ask(prompt))], final):
        yield event
    if final[0].ok:
        yield runner.event("final", member=aggregator, role="aggregator", text=final[0].text.strip(),
                           data={"layers": options.rounds})
    else:
        yield runner.event("final", member=previous[0].turn.member, text=previous[0].text.strip(),
                           data={"layers": options.rounds, "aggregator_error": final[0].error})
