"""council (after karpathy/llm-council): answer, rank each other anonymously, then a chairman writes
the final answer from the answers and the aggregate ranking."""

from __future__ import annotations

import string
from collections.abc import AsyncIterator

from modes.events import Event, ModeOptions
from modes.ranking import aggregate, ranking_schema, read_ranking
from modes.turns import Answer, EngineLookup, Turn, TurnRunner, ask

RANK_PROMPT = """You are judging answers to this question:

{question}

{responses}

Evaluate each response briefly: what it gets right and wrong. Then give your final ranking from
best to worst. If you answer in JSON, use {{"evaluation": "...", "final_ranking": ["Response B", ...]}};
otherwise end with a line "FINAL RANKING:" and a numbered list, one "Response X" per line:
FINAL RANKING:
1. Response B
2. Response A"""

CHAIR_PROMPT = """Several assistants answered a question and ranked each other's answers.

Question: {question}

{responses}

Aggregate ranking (best first): {ranking}

Write the single best final answer to the question, using the strongest points above. Reply with the
answer only."""


async def run(question: str, options: ModeOptions, lookup: EngineLookup) -> AsyncIterator[Event]:
    runner = TurnRunner("council", lookup, options)
    chairman = options.lead_member

    answers: list[Answer] = []
    async for event in runner.stage("answers", [Turn(m, "member", "answers", ask(question))
                                                for m in options.members], answers):
        yield event
    ok = [a for a in answers if a.ok]
    yield runner.event("stage_done", stage="answers", data={"answered": len(ok)})
    if not ok:
        yield runner.all_failed(answers)
        return

    label_of = {a.turn.member: letter for a, letter in zip(ok, string.ascii_uppercase, strict=False)}
    anonymous = "\n\n".join(f"Response {label_of[a.turn.member]}:\n{a.text.strip()}" for a in ok)
    rankings: dict[str, list[str]] = {}
    if len(ok) > 1:
        reviews: list[Answer] = []
        prompt = RANK_PROMPT.format(question=question, responses=anonymous)
        labels = list(label_of.values())
        schema = ranking_schema(labels)
        turns = [Turn(a.turn.member, "member", "rankings", ask(prompt), schema) for a in ok]
        async for event in runner.stage("rankings", turns, reviews):
            yield event
        rankings = {r.turn.member: read_ranking(r.text, labels) for r in reviews if r.ok}
    table = aggregate(rankings, label_of, options.exclude_self_votes)
    yield runner.event("stage_done", stage="rankings", data={
        "labels": label_of, "rankings": rankings, "aggregate": table})

    ranking_text = ", ".join(f"{row['member']} (Response {row['label']})" for row in table)
    named = "\n\n".join(f"{a.turn.member} (Response {label_of[a.turn.member]}):\n{a.text.strip()}" for a in ok)
    final: list[Answer] = []
    prompt = CHAIR_PROMPT.format(question=question, responses=named, ranking=ranking_text)
    async for event in runner.stage("final", [Turn(chairman, "chairman", "final", ask(prompt))], final):
        yield event
    if final[0].ok:
        yield runner.event("final", member=chairman, role="chairman", text=final[0].text.strip(),
                           data={"aggregate": table})
    else:  # the chairman failed: the best-ranked answer stands
        best = next(a for a in ok if a.turn.member == table[0]["member"])
        yield runner.event("final", member=best.turn.member, role="member", text=best.text.strip(),
                           data={"aggregate": table, "chairman_error": final[0].error})
