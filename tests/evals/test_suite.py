"""The benchmark runner on the real embedded model, in-process, and its options checked before any work."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from engines.catalog import find
from engines.local import LocalEngine
from engines.model_files import resolve_path
from evals import quality, results, speed
from evals.suite import check, run_model
from tests.support import ROOT
from tests.support.servers import CHAT_MODEL

QUESTIONS = ROOT / "tests" / "data" / "evals" / "easy_questions.jsonl"


@pytest.fixture(scope="module")
def engine():
    spec = dataclasses.replace(find(CHAT_MODEL), max_concurrent=1, n_threads=2)
    return LocalEngine(spec, resolve_path(spec), max_queue=2, queue_timeout=60)


def test_a_speed_run_measures_every_prompt_to_the_token(engine, tmp_path):
    steps = []
    run = asyncio.run(run_model(engine, CHAT_MODEL, chat=True, options=check(suites=["speed"], prompts=2, max_tokens=8),
                                source="test", step=steps.append))
    assert steps == ["speed 1/2", "speed 2/2"]
    assert [s["prompt"] for s in run.samples] == list(speed.PROMPTS[:2])
    assert all(s["tokens"] == 8 and s["ttft_ms"] > 0 and s["tokens_per_second"] > 0 for s in run.samples)
    # Each prompt is new to the KV cache (a fresh tag leads it): a cached prompt would flatter the TTFT.
    assert all(s["cached_tokens"] < s["prompt_tokens"] - 5 for s in run.samples)
    assert run.figures["tokens"] == 16 and run.figures["tokens_per_second"] > 0
    assert min(s["ttft_ms"] for s in run.samples) <= run.figures["ttft_ms"] <= max(s["ttft_ms"] for s in run.samples)
    assert run.settings == {"suites": ["speed"], "prompts": 2, "max_tokens": 8, "questions": 4}
    saved = results.write(run, tmp_path)
    assert results.list_runs(tmp_path) == [saved]


def test_quality_answers_are_always_one_of_the_choices(engine):
    items = quality.load_items(QUESTIONS)
    for chat in (True, False):  # a base model gets the question as text to continue
        figures, samples = asyncio.run(quality.run(engine, items, chat=chat))
        assert [s["chosen"] in item.choices for s, item in zip(samples, items, strict=True)] == [True, True]
        assert figures["questions"] == 2 and figures["correct"] == sum(s["correct"] for s in samples)
        assert figures["accuracy"] == figures["correct"] / 2


def test_the_repository_questions_load():
    items = quality.load_items()
    assert quality.available() == len(items) >= 10
    assert all(0 <= item.answer < len(item.choices) for item in items)


@pytest.mark.parametrize(("values", "message"), [
    ({"suites": []}, "suites: List should have at least 1 item"),
    ({"suites": ["speed", "vibes"]}, "suites: Input should be 'speed' or 'quality'"),
    ({"prompts": 0}, "prompts: Input should be greater than or equal to 1"),
    ({"prompts": 99}, f"prompts: Input should be less than or equal to {len(speed.PROMPTS)}"),
    ({"max_tokens": 2.5}, "max_tokens: Input should be a valid integer"),
    ({"max_tokens": 10_000}, "max_tokens: Input should be less than or equal to 256"),
    ({"questions": True}, "questions: must be a whole number"),
    ({"questions": 1000}, "questions: there are"),
    ({"temperature": 1}, "temperature: Extra inputs are not permitted"),
])
def test_bad_options_name_the_field(values, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        check(**values)


def test_options_keep_each_suite_once_and_take_whole_floats():
    options = check(suites=["quality", "speed", "quality"], prompts=3.0)
    assert options.suites == ["quality", "speed"] and options.prompts == 3
