"""The adapter kit shared by REST, the OpenAI alias and the Arena: options checked before anything
runs, and one fold of the event stream."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from engines.catalog import find
from engines.errors import UnknownModel
from engines.registry import ModelRegistry
from modes import run_mode, turns_of
from modes.adapter import InvalidOption, ModeRun, UnknownMode, resolve_options
from modes.events import Event, ModeOptions
from tests.support.scripted import ScriptedEngine, answer
from tests.support.servers import BASE_MODEL, CHAT_MODEL


@pytest.fixture
def registry() -> ModelRegistry:
    """A chat model, a base model, and a second chat model that always says "yes"."""
    registry = ModelRegistry()
    registry.add(find(CHAT_MODEL), ScriptedEngine(answer("Paris."), model_id=CHAT_MODEL))
    registry.add(find(BASE_MODEL), ScriptedEngine(answer("the"), model_id=BASE_MODEL))
    other = dataclasses.replace(find(CHAT_MODEL), id="yes-man")
    registry.add(other, ScriptedEngine(answer("yes"), model_id="yes-man"))
    return registry


def test_members_default_to_the_chat_models_and_the_lead_to_the_first(registry):
    options = resolve_options("council", {}, registry)
    assert options.members == [CHAT_MODEL, "yes-man"] and options.lead_member == CHAT_MODEL
    assert resolve_options("council", {"lead": "yes-man"}, registry).lead_member == "yes-man"


@pytest.mark.parametrize(("mode", "fields", "error", "param"), [
    ("parliament", {}, UnknownMode, "mode"),
    ("council", {"rounds": 0}, InvalidOption, "rounds"),
    ("council", {"members": []}, InvalidOption, "members"),
    ("council", {"members": [CHAT_MODEL], "colour": "red"}, InvalidOption, "colour"),
    ("council", {"members": [CHAT_MODEL, "yes-man", CHAT_MODEL]}, InvalidOption, "members"),
    ("council", {"members": [CHAT_MODEL, "nope"]}, UnknownModel, None),
    ("council", {"lead": "nope"}, UnknownModel, None),
])
def test_bad_options_fail_before_anything_runs(registry, mode, fields, error, param):
    with pytest.raises(error) as caught:
        resolve_options(mode, fields, registry)
    assert caught.value.param == param
    if error is UnknownModel:
        assert "Available models" in caught.value.message


def test_the_fold_of_a_real_council_run(registry):
    options = resolve_options("council", {"members": [CHAT_MODEL, "yes-man"]}, registry)
    run = asyncio.run(ModeRun.collect("council", run_mode("council", "Capital of France?", options, registry.get)))
    assert [(s.stage, s.member, s.role, s.status) for s in run.steps] == [
        ("answers", CHAT_MODEL, "member", "done"), ("answers", "yes-man", "member", "done"),
        ("rankings", CHAT_MODEL, "member", "done"), ("rankings", "yes-man", "member", "done"),
        ("final", CHAT_MODEL, "chairman", "done")]
    assert run.steps[0].text == "Paris." and run.final.text == "Paris." and not run.error
    assert [s["stage"] for s in run.stages] == ["answers", "rankings"] and run.duration_ms > 0
    assert run.usage() == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
    summary = run.summary()
    assert summary["final"]["member"] == CHAT_MODEL and len(summary["turns"]) == 5


def test_a_failed_turn_and_a_failed_mode_are_folded_not_raised():
    run = ModeRun("compare")
    for event in [Event("member_start", "compare", stage="answers", member="a", role="member"),
                  Event("token", "compare", stage="answers", member="a", role="member", text="Hal"),
                  Event("member_error", "compare", stage="answers", member="a", role="member", text="died",
                        duration_ms=5),
                  Event("error", "compare", text="Every member failed to answer: a: died")]:
        run.apply(event)
    step = run.steps[0]
    assert (step.text, step.status, step.error, step.title) == ("Hal", "error", "died", "answers · a (failed)")
    assert run.error.startswith("Every member failed") and run.final is None and run.summary()["final"] is None


def test_a_mode_run_has_a_bounded_number_of_turns(registry, monkeypatch):
    members = {"members": [CHAT_MODEL, "yes-man"]}
    assert turns_of("council", resolve_options("council", members, registry)) == 5
    assert turns_of("debate", resolve_options("debate", {**members, "rounds": 3}, registry)) == 9
    monkeypatch.setattr("modes.adapter.MAX_TURNS", 8)
    with pytest.raises(InvalidOption, match="9 model turns; the limit is 8") as caught:
        resolve_options("debate", {**members, "rounds": 3}, registry)
    assert caught.value.param == "rounds"


def ticking(*times: float):
    """A clock that reads `times` in turn: when the fold sees each event."""
    readings = iter(times)
    return lambda: next(readings)


def test_the_fold_times_each_turn_while_it_runs_and_takes_the_engines_figures_when_done():
    def turn(kind: str, member: str, **fields) -> Event:
        return Event(kind, "compare", stage="answers", member=member, role="member", **fields)

    run = ModeRun("compare", clock=ticking(10.0, 10.1, 10.35, 10.45, 10.55, 10.6))
    run.apply(turn("member_start", "a"))  # 10.0
    run.apply(turn("member_start", "b"))  # 10.1
    step, other = run.steps
    assert (step.ttft_ms, step.tokens, step.tokens_per_second) == (None, 0, None)  # nothing written yet
    run.apply(turn("token", "a", text="One"))  # 10.35
    assert (step.ttft_ms, step.tokens, step.tokens_per_second) == (350.0, 1, None)  # one token has no rate
    run.apply(turn("token", "a", text=" two"))  # 10.45
    run.apply(turn("token", "a", text=" three"))  # 10.55
    assert (step.ttft_ms, step.tokens, step.tokens_per_second) == (350.0, 3, 10.0)  # 2 tokens after the first in 0.2 s
    # Done: what the turn runner measured and the engine counted replaces the fold's estimate.
    run.apply(turn("member_done", "a", text="One two three", duration_ms=600,
                   data={"ttft_ms": 340.5, "tokens_per_second": 12.5, "completion_tokens": 4, "prompt_tokens": 9}))
    assert (step.ttft_ms, step.tokens, step.tokens_per_second) == (340.5, 4, 12.5)
    # An engine that reports no usage or speed (a remote one that omits them): the fold's count and timing stay.
    run.apply(turn("token", "b", text="Hi"))  # 10.6
    run.apply(turn("member_done", "b", text="Hi", duration_ms=500))
    assert (other.ttft_ms, other.tokens, other.tokens_per_second) == (500.0, 1, None)


def test_a_failed_turn_keeps_the_figures_of_what_it_wrote():
    run = ModeRun("compare", clock=ticking(0.0, 0.2, 0.3, 0.5))
    for kind, text in [("member_start", ""), ("token", "Hal"), ("token", "f a"), ("token", " thou"),
                       ("member_error", "timed out")]:
        run.apply(Event(kind, "compare", stage="answers", member="a", role="member", text=text))
    step = run.steps[0]
    assert (step.status, step.ttft_ms, step.tokens, step.tokens_per_second) == ("error", 200.0, 3, 6.7)


def test_the_fold_of_a_real_compare_run_has_each_turns_figures(lookup):
    """The embedded models, in process: live figures count token events; the final ones are the engine's."""
    options = ModeOptions(members=[CHAT_MODEL, BASE_MODEL], max_tokens=24, temperature=0)

    async def watch() -> tuple[ModeRun, dict[str, tuple]]:
        run, live = ModeRun("compare"), {}
        events = run_mode("compare", "Name three colours.", options, lookup)
        async for event in events:
            run.apply(event)
            if event.type == "token":  # the figures of a turn still running, as the Arena draws them
                step = next(s for s in run.steps if s.member == event.member)
                live[event.member] = (step.status, step.ttft_ms, step.tokens, step.chunks)
        return run, live

    run, live = asyncio.run(watch())
    for member, (status, ttft_ms, tokens, chunks) in live.items():
        assert status == "running" and ttft_ms > 0 and tokens == chunks > 0, member
    done = {t["member"]: t["data"] for t in run.turns}
    for step in run.steps:
        assert step.status == "done"
        assert step.tokens == done[step.member]["completion_tokens"] and 0 < step.tokens <= 24
        assert step.chunks <= step.tokens  # a chunk carries one token or more (held back for UTF-8 or stops)
        assert step.ttft_ms == done[step.member]["ttft_ms"] > 0
        assert step.tokens_per_second == done[step.member]["tokens_per_second"] > 0
