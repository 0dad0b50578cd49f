"""One benchmark run of one model: the options, checked before any work, and the `Run` they make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engines.contract import Engine
from evals import quality, results, speed

Suite = Literal["speed", "quality"]
SUITES: tuple[Suite, ...] = ("speed", "quality")


class Options(BaseModel):
    """What a run measures. The defaults keep a run on a small model under half a minute on 2 cores."""

    model_config = ConfigDict(extra="forbid")

    suites: list[Suite] = Field(default_factory=lambda: list(SUITES), min_length=1,
                                description="speed (TTFT, tokens/s) and/or quality (multiple-choice accuracy)")
    prompts: int = Field(2, ge=1, le=len(speed.PROMPTS), description="Speed: fixed prompts, one after another")
    max_tokens: int = Field(32, ge=8, le=256, description="Speed: tokens generated per prompt")
    questions: int = Field(4, ge=1, description="Quality: the first N multiple-choice questions")

    @field_validator("prompts", "max_tokens", "questions", mode="before")
    @classmethod
    def _not_a_bool(cls, value):
        if isinstance(value, bool):  # pydantic would take True as 1
            raise ValueError("must be a whole number")
        return value

    @field_validator("suites", mode="after")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _questions_exist(self):
        if "quality" in self.suites:
            have = quality.available()
            if not have:
                raise ValueError("the quality suite needs evals/data/multiple_choice.jsonl, which is not here; "
                                 "run the speed suite only")
            if self.questions > have:
                raise ValueError(f"questions: there are {have} questions; ask for {have} or fewer")
        return self


def check(**values: Any) -> Options:
    """Options from untrusted values; ValueError naming the field and the fix."""
    try:
        return Options(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][:1])
        message = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"{where}: {message}" if where else message) from None


async def run_model(engine: Engine, model: str, *, chat: bool, options: Options, source: str,
                    step: Callable[[str], None] = lambda _: None) -> results.Run:
    """Measures one model (its suites one after another); the Run is not written yet."""
    created = results.now()
    figures: dict[str, float] = {}
    samples: list[dict[str, Any]] = []
    if "speed" in options.suites:
        found, sampled = await speed.run(engine, chat=chat, prompts=options.prompts, max_tokens=options.max_tokens,
                                         step=step)
        figures |= found
        samples += [{"suite": "speed", **s} for s in sampled]
    if "quality" in options.suites:
        found, sampled = await quality.run(engine, quality.load_items()[:options.questions], chat=chat, step=step)
        figures |= found
        samples += [{"suite": "quality", **s} for s in sampled]
    return results.Run(model=model, created=created, source=source, settings=options.model_dump(),
                       figures=figures, machine=results.machine_facts(), samples=samples)
