"""Every mode with the two embedded models through the real engines: event sequences, failing
members, timeouts, all-failed, cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from engines.catalog import find
from engines.contract import Chunk
from engines.errors import Unavailable
from engines.pool import Instance, Pool
from modes import MODES, run_mode
from modes.events import ModeOptions
from modes.roundtable import _converged
from modes.turns import Answer, Turn
from tests.support.scripted import ScriptedEngine, answer
from tests.support.servers import BASE_MODEL as BASE
from tests.support.servers import CHAT_MODEL as CHAT

QUESTION = "What is the capital of France?"


def collect(mode, options, lookup, question=QUESTION):
    async def main():
        return [e async for e in run_mode(mode, question, options, lookup)]
    return asyncio.run(main())


def check_sequence(events):
    """The grammar every mode's stream follows."""
    assert events[0].type == "mode_start" and events[-1].type == "mode_done"
    assert events[-1].duration_ms > 0
    open_turns, stages = set(), []
    for event in events[1:-1]:
        if event.type == "stage_start":
            stages.append(event.stage)
        elif event.type == "member_start":
            assert event.stage == stages[-1], event
            open_turns.add((event.stage, event.member, event.role))
        elif event.type == "token":
            assert (event.stage, event.member, event.role) in open_turns and event.text
        elif event.type in ("member_done", "member_error"):
            open_turns.remove((event.stage, event.member, event.role))
            assert event.duration_ms is not None
    assert not open_turns
    assert [e.type for e in events].count("final") + [e.type for e in events].count("error") == 1
    return stages


@pytest.mark.parametrize(("mode", "stages"), [
    ("compare", ["answers"]),
    ("council", ["answers", "rankings", "final"]),
    ("roundtable", ["round 1", "final"]),
    ("debate", ["answers", "round 1", "final"]),
    ("analyze", ["answers", "final"]),
    ("mixture", ["layer 1", "final"]),
])
def test_each_mode_streams_its_stages_and_a_final_answer(lookup, mode, stages):
    options = ModeOptions(members=[CHAT, BASE], rounds=1, max_tokens=40, lead=CHAT)
    events = collect(mode, options, lookup)
    assert check_sequence(events) == stages
    final = next(e for e in events if e.type == "final")
    assert final.text.strip()
    members_done = {e.member for e in events if e.type == "member_done" and e.stage == stages[0]}
    assert members_done == {CHAT, BASE}
    tokens = [e for e in events if e.type == "token"]
    assert len(tokens) > 10  # streamed as it happened, not only at the end


def test_compare_marks_the_fastest_and_reports_speed(lookup):
    events = collect("compare", ModeOptions(members=[CHAT, BASE], max_tokens=24), lookup)
    final = next(e for e in events if e.type == "final").data
    assert final["fastest_total"] in (CHAT, BASE) and final["fastest_first_token"] in (CHAT, BASE)
    for row in final["results"]:
        assert row["ttft_ms"] > 0 and row["tokens_per_second"] > 0 and row["duration_ms"] >= row["ttft_ms"]


def test_council_ranks_anonymously_and_aggregates(lookup):
    events = collect("council", ModeOptions(members=[CHAT, BASE], max_tokens=60), lookup)
    rankings = next(e for e in events if e.type == "stage_done" and e.stage == "rankings").data
    assert rankings["labels"] == {CHAT: "A", BASE: "B"}
    assert {row["member"] for row in rankings["aggregate"]} == {CHAT, BASE}
    assert any(rankings["rankings"].values())  # the schema keeps even a 135M model's ranking readable


def test_debate_short_answers_are_decided_by_majority(lookup):
    options = ModeOptions(members=[CHAT, BASE], rounds=1, max_tokens=3, temperature=0.0)
    final = next(e for e in collect("debate", options, lookup, "2+2=? Reply with a number.")
                 if e.type == "final")
    assert final.data["method"] == "majority" and sum(final.data["votes"].values()) == 2
    assert final.text in final.data["answers"].values()


def test_analyze_synthesizes_with_the_first_member_and_falls_back_to_word_overlap(lookup):
    final = next(e for e in collect("analyze", ModeOptions(members=[CHAT, BASE], max_tokens=32), lookup)
                 if e.type == "final")
    assert (final.member, final.role, final.data["method"]) == (CHAT, "synthesizer", "synthesizer")
    options = ModeOptions(members=[CHAT, BASE], max_tokens=32, lead="broken")  # no model can synthesize
    final = next(e for e in collect("analyze", options, lookup) if e.type == "final")
    assert final.data["method"] == "lexical" and "model process died" in final.data["synthesizer_error"]
    assert final.text.startswith("Shared vocabulary (lexical overlap") and set(final.data["distinct"]) == {CHAT, BASE}


@pytest.mark.parametrize(("moderator", "verdicts"), [("converged", [True]), ("not-converged", [False, False, False])])
def test_roundtable_ends_early_only_when_the_moderator_says_it_converged(lookup, moderator, verdicts):
    options = ModeOptions(members=[CHAT, BASE], rounds=3, max_tokens=12, lead=moderator)
    events = collect("roundtable", options, lookup)
    rounds = [f"round {n}" for n in range(1, len(verdicts) + 1)]
    assert check_sequence(events) == [*rounds, "final"]
    assert [e.data["converged"] for e in events if e.type == "stage_done"] == verdicts
    asked = [e.stage for e in events if e.type == "member_start" and e.role == "moderator"]
    assert asked == rounds[: min(len(rounds), options.rounds - 1)] + ["final"]  # no verdict after the last round
    turns = [e for e in events if e.type == "member_done" and e.role == "member"]
    assert len(turns) == 2 * len(rounds)


@pytest.mark.parametrize("mode", sorted(set(MODES) - {"agent"}))  # the agent asks members only when it chooses
def test_a_failing_or_unreachable_member_leaves_the_mode_finishing(lookup, mode):
    options = ModeOptions(members=["broken", CHAT, "down"], rounds=1, max_tokens=24, lead=CHAT)
    events = collect(mode, options, lookup)
    check_sequence(events)
    errors = {e.member: e.text for e in events if e.type == "member_error"}
    assert "model process died" in errors["broken"] and "not reachable" in errors["down"]
    assert any(e.type == "final" for e in events)


def test_a_members_turn_resumes_when_its_instance_dies_mid_answer(lookup):
    """Modes reach models through pools (engines/pool.py): a member whose instance breaks after its
    first chunk goes on on another instance, and its turn ends as one answer, not an error."""
    pool = Pool(find(CHAT))
    pool.add(Instance("dies", ScriptedEngine([Chunk(text="Paris")], fault=Unavailable("connection broke")),
                      kind="remote", source="test"))
    pool.add(Instance("continues", ScriptedEngine(answer(" is the capital.")), kind="remote", source="test"))
    pool.instances["continues"].in_flight = 1  # so the one that dies is picked first
    events = collect("compare", ModeOptions(members=["resumable"], max_tokens=16),
                     lambda model: pool if model == "resumable" else lookup(model))
    check_sequence(events)
    done = next(e for e in events if e.type == "member_done")
    assert done.member == "resumable" and done.text == "Paris is the capital."
    assert pool.instances["continues"].engine.requests[0].prefix == "Paris"


def test_a_member_that_hangs_times_out_and_the_mode_goes_on(lookup):
    options = ModeOptions(members=["hangs", CHAT], max_tokens=16, turn_timeout=1.0)
    started = time.monotonic()
    events = collect("compare", options, lookup)
    assert time.monotonic() - started < 10
    timeout = next(e for e in events if e.type == "member_error")
    assert timeout.member == "hangs" and "within 1 s" in timeout.text
    assert next(e for e in events if e.type == "final").data["results"][1]["ok"]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_member_failing_is_one_clear_error(lookup, mode):
    events = collect(mode, ModeOptions(members=["broken", "down"], rounds=1), lookup)
    check_sequence(events)
    error = next(e for e in events if e.type == "error")
    assert "broken" in error.text and "down" in error.text


def test_cancelling_a_mode_stops_every_generation(engines, lookup):
    async def main():
        options = ModeOptions(members=[CHAT, BASE], max_tokens=1500)
        stream = run_mode("compare", "Write a very long essay about rivers.", options, lookup)
        tokens = 0
        async for event in stream:
            tokens += event.type == "token"
            if tokens >= 6 and all(engines[m].slots.active for m in (CHAT, BASE)):
                break
        await stream.aclose()
        closed = time.monotonic()
        while any(engine.slots.active for engine in engines.values()):
            await asyncio.sleep(0.01)
        return time.monotonic() - closed

    assert asyncio.run(main()) < 1.0


def test_roundtable_reads_the_moderators_verdict_defensively():
    turn = Turn("m", "moderator", "round 1", [])
    assert _converged(Answer(turn, text='{"converged": true}'))
    assert not _converged(Answer(turn, text='{"converged": false}'))
    assert not _converged(Answer(turn, text="Yes, it has converged."))  # a model that ignored the schema
    assert not _converged(Answer(turn, text='{"converged": true}', error="timed out"))
