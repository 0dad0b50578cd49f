"""Multi-model collaboration. Each mode is one module with `run(question, options, lookup)`, an
async generator of typed events (modes/events.py); REST, the OpenAI alias and the Arena tab are
thin adapters over `run_mode`. Imports engines only through the contract, never FastAPI/Gradio."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from modes import agent, analyze, compare, council, debate, mixture, roundtable
from modes.events import Event, ModeOptions
from modes.turns import EngineLookup

MODES = {"compare": compare.run, "council": council.run, "roundtable": roundtable.run, "debate": debate.run,
         "analyze": analyze.run, "mixture": mixture.run, "agent": agent.run}
MAX_TURNS = 40  # model turns one mode run may take (each up to max_tokens): a bound on its work


def turns_of(mode: str, options: ModeOptions) -> int:
    """The most turns `mode` runs with these options."""
    members, rounds = len(options.members), options.rounds
    return {"compare": members, "council": members + (members if members > 1 else 0) + 1,
            "roundtable": rounds * members + rounds, "debate": members * (rounds + 1) + 1,
            "analyze": members + 1, "mixture": members * rounds + 1,
            # each step: the lead, and perhaps every other member consulted
            "agent": options.max_steps * members + 1}[mode]


LEAD_ROLE = {"council": "chairman", "roundtable": "moderator", "debate": "judge", "analyze": "synthesizer",
             "mixture": "aggregator", "agent": "agent"}


async def run_mode(mode: str, question: str, options: ModeOptions, lookup: EngineLookup) -> AsyncIterator[Event]:
    """mode_start, the mode's own events, mode_done. Unknown mode names raise KeyError."""
    body = MODES[mode]
    started = time.perf_counter()
    yield Event("mode_start", mode, data={"question": question, **options.model_dump(exclude={"history"}),
                                          "history_messages": len(options.history)})
    stream = body(question, options, lookup)
    try:
        async for event in stream:
            yield event
    finally:
        await stream.aclose()
    yield Event("mode_done", mode, duration_ms=round((time.perf_counter() - started) * 1000, 1))
