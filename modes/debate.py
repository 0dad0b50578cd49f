"""debate (Du et al. 2023, multi-agent debate): everyone answers; in each round everyone sees the
others' latest answers and revises; then a judge gives the final answer — or, when the answers are
short (numbers, single words), a majority vote decides without another model call."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator

from modes.events import Event, ModeOptions
from modes.turns import Answer, EngineLookup, Turn, TurnRunner, ask

REVISE_PROMPT = """Question: {question}

Your previous answer:
{own}

Other agents answered:
{others}

Using their reasoning as additional advice, give your updated answer to the question."""

JUDGE_PROMPT = """Question: {question}

After a debate, the agents' final answers are:
{answers}

As the judge, give the single correct final answer. Reply with the answer only."""

SHORT_WORDS = 4  # answers this short are votes, e.g. "42" or "Paris"


def normalize(text: str) -> str:
    return re.sub(r"[^\w\s.-]", "", text.lower()).strip(" .")


async def run(question: str, options: ModeOptions, lookup: EngineLookup) -> AsyncIterator[Event]:
    runner = TurnRunner("debate", lookup, options)
    judge = options.lead_member
    latest: dict[str, Answer] = {}
    for round_number in range(0, options.rounds + 1):
        stage = "answers" if round_number == 0 else f"round {round_number}"
        turns = []
        for member in options.members:
            if round_number == 0:
                turns.append(Turn(member, "member", stage, ask(question)))
            elif member in latest:
                others = "\n\n".join(f"- {a.text.strip()}" for m, a in latest.items() if m != member)
                prompt = REVISE_PROMPT.format(question=question, own=latest[member].text.strip(),
                                              others=others or "(none)")
                turns.append(Turn(member, "member", stage, ask(prompt)))
        answers: list[Answer] = []
        async for event in runner.stage(stage, turns, answers):
            yield event
        latest.update({a.turn.member: a for a in answers if a.ok})  # a failed revision keeps the last answer
        yield runner.event("stage_done", stage=stage, data={"answered": sum(a.ok for a in answers)})
        if not latest:
            yield runner.all_failed(answers)
            return
    finals = {m: a.text.strip() for m, a in latest.items()}
    if all(len(text.split()) <= SHORT_WORDS for text in finals.values()):
        votes = Counter(normalize(text) for text in finals.values())
        winner, count = votes.most_common(1)[0]
        text = next(t for t in finals.values() if normalize(t) == winner)
        yield runner.event("final", text=text, data={"method": "majority", "votes": dict(votes),
                                                      "answers": finals, "agreement": count / len(finals)})
        return
    verdict: list[Answer] = []
    prompt = JUDGE_PROMPT.format(question=question, answers="\n\n".join(f"- {t}" for t in finals.values()))
    async for event in runner.stage("final", [Turn(judge, "judge", "final", ask(prompt))], verdict):
        yield event
    if verdict[0].ok:
        yield runner.event("final", member=judge, role="judge", text=verdict[0].text.strip(),
                           data={"method": "judge", "answers": finals})
    else:
        member, text = next(iter(finals.items()))
        yield runner.event("final", member=member, text=text,
                           data={"method": "first answer (judge failed)", "judge_error": verdict[0].error,
                                 "answers": finals})
