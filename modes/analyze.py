"""analyze: independent answers in parallel, then consensus points and each member's unique
contributions, written by the synthesizer (the lead, by default the first member). When no model
can synthesize (the synthesizer fails), a lexical fallback lists shared vocabulary and each answer's
least-shared sentences, labelled as such."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from modes.events import Event, ModeOptions
from modes.turns import Answer, EngineLookup, Turn, TurnRunner, ask

SYNTHESIS_PROMPT = """Question: {question}

Independent answers:
{answers}

Write two short sections:
Consensus: the points most answers agree on, as bullets.
Unique contributions: for each assistant by name, what only it said, as bullets."""


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 20]


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if len(w) > 4}


def lexical_analysis(answers: dict[str, str]) -> tuple[str, dict]:
    """serverless-llm's overlap heuristic, honestly named: word co-occurrence, not agreement."""
    vocab = {member: words(text) for member, text in answers.items()}
    counts: dict[str, int] = {}
    for bag in vocab.values():
        for word in bag:
            counts[word] = counts.get(word, 0) + 1
    shared = sorted((w for w, c in counts.items() if c >= max(2, (len(answers) + 1) // 2)), key=lambda w: -counts[w])
    distinct: dict[str, list[str]] = {}
    for member, text in answers.items():
        others = set().union(*(v for m, v in vocab.items() if m != member)) if len(vocab) > 1 else set()
        scored = sorted(sentences(text), key=lambda s: len(words(s) & others) / max(1, len(words(s))))
        distinct[member] = scored[:2]
    lines = ["Shared vocabulary (lexical overlap, not semantic agreement): " + (", ".join(shared[:12]) or "none")]
    for member, points in distinct.items():
        lines.append(f"\nMost distinct sentences of {member}:")
        lines.extend(f"- {p}" for p in points or ["(none)"])
    return "\n".join(lines), {"method": "lexical", "shared_words": shared[:12], "distinct": distinct}


async def run(question: str, options: ModeOptions, lookup: EngineLookup) -> AsyncIterator[Event]:
    runner = TurnRunner("analyze", lookup, options)
    answers: list[Answer] = []
    async for event in runner.stage("answers", [Turn(m, "member", "answers", ask(question))
                                                for m in options.members], answers):
        yield event
    ok = {a.turn.member: a.text.strip() for a in answers if a.ok}
    yield runner.event("stage_done", stage="answers", data={"answered": len(ok)})
    if not ok:
        yield runner.all_failed(answers)
        return
    synthesizer = options.lead_member
    synthesis: list[Answer] = []
    prompt = SYNTHESIS_PROMPT.format(question=question, answers="\n\n".join(f"[{m}] {t}" for m, t in ok.items()))
    async for event in runner.stage("final", [Turn(synthesizer, "synthesizer", "final", ask(prompt))], synthesis):
        yield event
    if synthesis[0].ok:
        yield runner.event("final", member=synthesizer, role="synthesizer", text=synthesis[0].text.strip(),
                           data={"method": "synthesizer"})
    else:
        text, data = lexical_analysis(ok)
        yield runner.event("final", text=text, data={**data, "synthesizer_error": synthesis[0].error})
