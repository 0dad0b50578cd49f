"""Quality: accuracy on multiple-choice questions, the answer constrained to one of the choices.

The answer's JSON schema is an enum of the choices, which llama.cpp grammars enforce even on a 135M
model, so every answer is scorable and no text parsing guesses. Greedy, so a run is repeatable. The
questions are the repository's own file (the one benchmarks/lm_eval_harness.py scores too); the suite
is offered only where that file is present.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.contract import Engine, collect
from evals.speed import request_for

QUESTIONS = Path(__file__).resolve().parent / "data" / "multiple_choice.jsonl"


@dataclass(frozen=True)
class Item:
    question: str
    choices: tuple[str, ...]
    answer: int  # index into choices

    @property
    def correct(self) -> str:
        return self.choices[self.answer]


def load_items(path: str | Path = QUESTIONS) -> list[Item]:
    """Items from a JSON-lines file ({"question", "choices", "answer": index}); ValueError naming the
    line when one is not an item."""
    path = Path(path)
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            question, choices, answer = data["question"], data["choices"], data["answer"]
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise ValueError(f"{path.name} line {number}: not a question with choices and answer ({exc})") from None
        if not (isinstance(question, str) and question.strip() and isinstance(choices, list) and len(choices) >= 2
                and all(isinstance(c, str) and c.strip() for c in choices) and len(set(choices)) == len(choices)):
            raise ValueError(f"{path.name} line {number}: needs a question and two or more distinct text choices")
        if not (isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices)):
            raise ValueError(f"{path.name} line {number}: answer must be the index of a choice (0-{len(choices) - 1})")
        items.append(Item(question, tuple(choices), answer))
    return items


def available(path: str | Path = QUESTIONS) -> int:
    """How many questions the suite has here (0: no quality suite on this checkout)."""
    try:
        return len(load_items(path))
    except (OSError, ValueError):
        return 0


async def ask(engine: Engine, item: Item, *, chat: bool) -> str:
    """The choice the model picks (its text, where a model ignores the schema)."""
    text = f"{item.question}\nChoices: {', '.join(item.choices)}\nAnswer with one of the choices."
    if not chat:  # a base model continues text: give it a shape to continue
        text = f"Question: {text}\nAnswer: "
    done = await collect(engine.stream(request_for(text, chat=chat, json_schema={"enum": list(item.choices)},
                                                   temperature=0.0, max_tokens=32)))
    try:
        return json.loads(done.text)
    except json.JSONDecodeError:  # a remote model that ignores schemas: its text, scored as it is
        return done.text.strip()


async def run(engine: Engine, items: list[Item], *, chat: bool,
              step: Callable[[str], None] = lambda _: None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    samples = []
    for index, item in enumerate(items):
        step(f"quality {index + 1}/{len(items)}")
        chosen = await ask(engine, item, chat=chat)
        samples.append({"question": item.question, "chosen": chosen, "expected": item.correct,
                        "correct": chosen == item.correct})
    right = sum(s["correct"] for s in samples)
    return {"accuracy": round(right / len(samples), 4), "correct": right, "questions": len(samples)}, samples
