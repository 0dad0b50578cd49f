"""Pool routing with scripted instances: the faults (busy, unreachable, dying mid-answer) are what a
real instance cannot produce on demand. Real instances behind a real hub: tests/fleet/test_hub.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from engines.catalog import find
from engines.contract import Chunk, GenerationRequest, Load, ProbeResult, collect
from engines.errors import InvalidRequest, Overloaded, Unavailable, Unreachable
from engines.pool import FAILURES_TO_COOL, MAX_RESUMES, Instance, Pool
from tests.support.scripted import ScriptedEngine, answer

SPEC = find("smollm2-135m-instruct")
REQUEST = GenerationRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=4)


def Scripted(text="ok", fault: Exception | None = None, after_first=False) -> ScriptedEngine:
    """Answers `text`, or raises `fault` before the first chunk (or after it, with `after_first`)."""
    if fault is None:
        return ScriptedEngine(answer(text), model_id=SPEC.id)
    return ScriptedEngine([Chunk(text=text)] if after_first else [], model_id=SPEC.id, fault=fault)


def pool_of(**engines) -> Pool:
    pool = Pool(SPEC)
    for name, engine in engines.items():
        pool.add(Instance(name, engine, kind="remote", source="test"))
    return pool


def run(coro):
    return asyncio.run(coro)


def test_least_busy_wins_and_equals_take_turns():
    pool = pool_of(a=Scripted(), b=Scripted(), c=Scripted())
    pool.instances["a"].in_flight = 2
    pool.instances["b"].reported = Load(active=1, queued=0, max_concurrent=4)  # 1/4 busy
    assert pool.pick().name == "c"
    pool.instances["c"].in_flight = 1  # 1/2 busy
    assert pool.pick().name == "b"
    idle = pool_of(a=Scripted(), b=Scripted())
    assert {idle.pick().name for _ in range(4)} == {"a", "b"}


@pytest.mark.parametrize("fault", [Unreachable("refused"), Overloaded("busy"), Unavailable("503")])
def test_errors_before_the_first_token_move_to_another_instance(fault):
    broken, good = Scripted(fault=fault), Scripted(text="from b")
    pool = pool_of(a=broken, b=good)
    pool.instances["b"].in_flight = 1  # so the broken one is picked first
    done = run(collect(pool.stream(REQUEST)))
    assert done.text == "from b" and broken.calls == 1 and good.calls == 1
    assert pool.instances["a"].state == ("cooling" if isinstance(fault, Unreachable) else "healthy")
    assert pool.instances["b"].in_flight == 1 and pool.instances["a"].in_flight == 0


def test_a_bad_request_is_not_retried_and_all_down_names_the_states():
    bad = pool_of(a=Scripted(fault=InvalidRequest("bad schema")), b=Scripted())
    bad.instances["b"].in_flight = 1
    with pytest.raises(InvalidRequest):
        run(collect(bad.stream(REQUEST)))
    assert bad.instances["b"].engine.calls == 0 and bad.instances["a"].state == "healthy"
    down = pool_of(a=Scripted(fault=Unreachable("refused")), b=Scripted(fault=Unreachable("refused")))
    with pytest.raises(Unreachable):
        run(collect(down.stream(REQUEST)))
    why = r"No healthy instance of '.*' right now \(a cooling: refused; b cooling: refused\)"
    with pytest.raises(Unavailable, match=why):
        run(collect(down.stream(REQUEST)))


async def read(pool: Pool, request: GenerationRequest = REQUEST) -> tuple[list[Chunk], Exception | None]:
    got = []
    try:
        async for chunk in pool.stream(request):
            got.append(chunk)
    except Unavailable as exc:
        return got, exc
    return got, None


def test_a_failure_after_the_first_token_resumes_on_another_instance():
    dying = ScriptedEngine([Chunk(text="Hel", tokens=(7, 8))], model_id=SPEC.id, fault=Unavailable("connection lost"))
    other = Scripted("lo!")
    pool = pool_of(a=dying, b=other)
    pool.instances["b"].in_flight = 1  # so the dying one is picked first
    chunks, error = run(read(pool))
    assert error is None and [c.text for c in chunks] == ["Hel", "lo!", ""] and chunks[-1].finish_reason == "stop"
    assert other.requests[0].prefix == "Hel" and other.requests[0].messages == REQUEST.messages
    assert other.requests[0].prefix_tokens == (7, 8)  # the ids it was generated as travel with it
    assert pool.instances["a"].errors == 1 and pool.instances["b"].in_flight == 1


def test_no_resume_when_opted_out_after_reasoning_beyond_the_limit_or_without_a_continuing_instance():
    def dying(text="Hel", reasoning=""):
        return ScriptedEngine([Chunk(text=text, reasoning=reasoning)], model_id=SPEC.id,
                              fault=Unavailable("connection lost"))

    cases = {
        "opted out": (pool_of(a=dying(), b=Scripted()), replace(REQUEST, resume=False)),
        "reasoning streamed": (pool_of(a=dying("", reasoning="hmm"), b=Scripted()), REQUEST),
        "other cannot continue": (pool_of(a=dying(), b=ScriptedEngine(answer(), model_id=SPEC.id, continues=False)),
                                  REQUEST),
    }
    for why, (pool, request) in cases.items():
        pool.instances["b"].in_flight = 1
        chunks, error = run(read(pool, request))
        assert error is not None and "connection lost" in error.message, why
        assert pool.instances["b"].engine.calls == 0, why
    chain = pool_of(**{name: dying(name) for name in "abcd"})  # every instance dies after one chunk
    chunks, error = run(read(chain))
    assert error is not None and len(chunks) == 1 + MAX_RESUMES
    assert sum(i.engine.calls for i in chain.instances.values()) == 1 + MAX_RESUMES


def test_repeated_failures_cool_down_and_a_passing_probe_brings_it_back():
    flaky = Scripted(fault=Unavailable("503"))
    pool = pool_of(a=flaky)
    for _ in range(FAILURES_TO_COOL):
        with pytest.raises(Unavailable):
            run(collect(pool.stream(REQUEST)))
    assert pool.instances["a"].state == "cooling" and pool.state == "unavailable"

    flaky.probe_result = ProbeResult(True, "ok", Load(active=0, queued=0, max_concurrent=2))
    pool.instances["a"].cooling_since -= 60  # the minimum cooldown has passed
    run(pool.check())
    assert pool.instances["a"].state == "healthy" and pool.state == "ready"


def test_the_context_length_is_what_every_instance_can_take():
    remote_only = pool_of(a=Scripted(), b=Scripted())
    assert remote_only.context_length == SPEC.n_ctx  # nothing reported yet: the catalog's
    remote_only.instances["a"].engine.probe_result = ProbeResult(True, "ok", n_ctx=1024)
    remote_only.instances["b"].engine.probe_result = ProbeResult(True, "ok", n_ctx=4096)
    run(remote_only.check())
    assert remote_only.context_length == 1024 and remote_only.details()["n_ctx"] == 1024
    remote_only.instances["a"].state = "gone"
    assert remote_only.context_length == 4096
