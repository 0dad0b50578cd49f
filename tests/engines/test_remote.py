"""RemoteEngine against real instances of this app: streaming, and upstream errors mapped onto the
project's own (a remote 429 is Overloaded, an unreachable host is Unreachable, never a crash)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest

from engines.contract import GenerationRequest, collect
from engines.errors import ContextOverflow, InvalidRequest, Overloaded, Unavailable, Unreachable
from engines.remote import RemoteEngine, Timeouts
from tests.support.servers import CHAT_MODEL, free_port

HELLO = [{"role": "user", "content": "Say hello."}]


def run(coro):
    return asyncio.run(coro)


async def collect_with(engine: RemoteEngine, request: GenerationRequest):
    try:
        return await collect(engine.stream(request))
    finally:
        await engine.aclose()


def test_streams_chat_and_completions_with_exact_usage(server):
    done = run(collect_with(RemoteEngine(CHAT_MODEL, server.v1),
                            GenerationRequest(messages=HELLO, max_tokens=7, ignore_eos=True, seed=1)))
    assert done.finish_reason == "length" and done.usage.completion_tokens == 7 and done.usage.prompt_tokens > 0
    assert done.text and done.timings.ttft_ms > 0 and done.timings.generation_ms >= done.timings.ttft_ms
    plain = run(collect_with(RemoteEngine(CHAT_MODEL, server.v1), GenerationRequest(prompt="1, 2, 3,", max_tokens=4)))
    assert plain.usage.completion_tokens <= 4 and plain.text


def test_an_instance_of_this_app_streams_token_ids_and_takes_an_answer_begun_elsewhere(server):
    request = GenerationRequest(messages=HELLO, max_tokens=9, ignore_eos=True, temperature=0)

    async def chunks(engine: RemoteEngine, request_: GenerationRequest):
        try:
            return [chunk async for chunk in engine.stream(request_)]
        finally:
            await engine.aclose()

    ours = run(chunks(RemoteEngine(CHAT_MODEL, server.v1, continues=True), request))
    assert sum(len(c.tokens) for c in ours) == ours[-1].usage.completion_tokens == 9
    assert all(c.tokens for c in ours if c.text)
    other = run(chunks(RemoteEngine(CHAT_MODEL, server.v1), request))  # not asked for: plain OpenAI chunks
    assert not any(c.tokens for c in other)
    prefix, ids = "".join(c.text for c in ours[:3]), tuple(t for c in ours[:3] for t in c.tokens)
    payload = RemoteEngine(CHAT_MODEL, server.v1, continues=True).payload(
        replace(request, prefix=prefix, prefix_tokens=ids))
    assert payload["answer_prefix"] == prefix and payload["answer_prefix_tokens"] == list(ids)
    rest = run(chunks(RemoteEngine(CHAT_MODEL, server.v1, continues=True),
                      replace(request, prefix=prefix, prefix_tokens=ids)))
    assert rest[-1].usage.completion_tokens == 9 and sum(len(c.tokens) for c in rest) == 9 - len(ids)


def test_json_schema_travels_upstream(server):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    done = run(collect_with(RemoteEngine(CHAT_MODEL, server.v1),
                            GenerationRequest(messages=HELLO, max_tokens=20, json_schema=schema, seed=3)))
    assert done.text.replace(" ", "").startswith('{"ok":')


@pytest.mark.parametrize("request_, error", [
    (GenerationRequest(messages=[{"role": "user", "content": "word " * 3000}]), ContextOverflow),
    (GenerationRequest(messages=HELLO, temperature=-1), InvalidRequest),
])
def test_bad_requests_keep_their_meaning(server, request_, error):
    with pytest.raises(error):
        run(collect_with(RemoteEngine(CHAT_MODEL, server.v1), request_))


def test_a_model_the_upstream_lacks_is_unavailable_not_unknown(server):
    with pytest.raises(Unavailable, match="404"):
        run(collect_with(RemoteEngine("qwen3-4b", server.v1), GenerationRequest(messages=HELLO)))


def test_unreachable_upstream(tmp_path):
    engine = RemoteEngine(CHAT_MODEL, f"http://127.0.0.1:{free_port()}/v1", timeouts=Timeouts(connect=1))
    with pytest.raises(Unreachable, match="cannot be reached"):
        run(collect_with(engine, GenerationRequest(messages=HELLO)))
    assert run(RemoteEngine(CHAT_MODEL, engine.base_url).probe()).ok is False


def test_a_full_upstream_is_overloaded_with_its_retry_after(tight_server):
    """tight_server: one slot and one queue place, so the third request at once is a 429 upstream."""
    long = GenerationRequest(messages=HELLO, max_tokens=300, ignore_eos=True)

    async def scenario():
        engines = [RemoteEngine(CHAT_MODEL, tight_server.v1) for _ in range(3)]
        busy = [engines[0].stream(long), engines[1].stream(long)]
        first = await anext(busy[0])  # holds the slot
        waiting = asyncio.ensure_future(anext(busy[1]))  # holds the queue place
        await asyncio.sleep(0.3)
        try:
            with pytest.raises(Overloaded) as caught:
                await collect(engines[2].stream(long))
            return first, caught.value
        finally:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            for stream in busy:
                await stream.aclose()
            for engine in engines:
                await engine.aclose()

    first, error = run(scenario())
    assert first.text and error.retry_after >= 1 and "429" in error.message


def test_probe_reads_load_from_health_details(server):
    result = run(RemoteEngine(CHAT_MODEL, server.v1).probe())
    assert result.ok and result.load is not None and result.load.max_concurrent == 2
    assert result.n_ctx == httpx.get(server.url + "/health/details").json()["models"][CHAT_MODEL]["n_ctx"] > 0
    other = run(RemoteEngine("not-here", server.v1).probe())  # an app that does not list the model
    assert other.ok  # it answers; requests for the model will say what is wrong
    assert httpx.get(server.url + "/health").status_code == 200
