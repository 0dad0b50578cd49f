"""Slots, the bounded queue, disconnects and /health during generation, on real servers."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from tests.support.servers import CHAT_MODEL, wait_for

LONG = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
        "max_tokens": 2000, "temperature": 1.0, "stream": True, "ignore_eos": True}


def details(server) -> dict:
    return httpx.get(server.url + "/health/details", timeout=5).json()["models"][CHAT_MODEL]


def test_more_clients_than_slots_all_complete(server):
    async def main():
        client = openai.AsyncOpenAI(base_url=server.v1, api_key="x", max_retries=0, timeout=120)
        asks = [client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": f"Say a word about the number {i}."}],
            max_tokens=24) for i in range(6)]  # 6 clients, 2 slots
        return await asyncio.gather(*asks)

    replies = asyncio.run(main())
    assert all(r.choices[0].message.content for r in replies)
    assert all(r.usage.completion_tokens > 0 for r in replies)


def test_full_queue_answers_429_with_retry_after(tight_server):
    with httpx.Client(timeout=60) as http, http.stream("POST", tight_server.v1 + "/chat/completions",
                                                       json=LONG) as busy:
        lines = busy.iter_lines()  # keep a reference: a collected iterator closes the connection
        next(lines)  # holds the only slot
        async def queue_one_and_overflow():
            async with httpx.AsyncClient(timeout=60) as client:
                waiting = asyncio.create_task(client.post(tight_server.v1 + "/chat/completions",
                                                          json={**LONG, "stream": False, "max_tokens": 5}))
                await asyncio.sleep(0.5)  # let it take the single queue place
                overflow = await client.post(tight_server.v1 + "/chat/completions",
                                             json={**LONG, "stream": False, "max_tokens": 5})
                waiting.cancel()
                return overflow
        overflow = asyncio.run(queue_one_and_overflow())
    assert overflow.status_code == 429, overflow.text
    assert int(overflow.headers["Retry-After"]) >= 1
    assert overflow.json()["error"]["type"] == "rate_limit_error"
    assert wait_for(lambda: details(tight_server)["active"] == 0 and details(tight_server)["queued"] == 0)


def test_waiting_longer_than_queue_timeout_answers_503(tight_server):
    with httpx.Client(timeout=60) as http, http.stream("POST", tight_server.v1 + "/chat/completions",
                                                       json=LONG) as busy:
        lines = busy.iter_lines()
        next(lines)
        started = time.monotonic()
        waited = http.post(tight_server.v1 + "/chat/completions", json={**LONG, "stream": False})
        elapsed = time.monotonic() - started
    assert waited.status_code == 503, waited.text
    assert "2 s" in waited.json()["error"]["message"]
    assert 1.5 < elapsed < 10
    assert wait_for(lambda: details(tight_server)["active"] == 0)


@pytest.mark.parametrize("stream", [True, False])
def test_client_disconnect_frees_the_slot_and_logs_no_error(tight_server, stream):
    assert wait_for(lambda: details(tight_server)["active"] == 0)
    log_before = len(tight_server.log())
    if stream:
        with httpx.Client(timeout=60) as http, http.stream("POST", tight_server.v1 + "/chat/completions",
                                                           json=LONG) as response:
            lines = response.iter_lines()
            for _ in range(5):
                next(lines)
            assert details(tight_server)["active"] == 1
        # leaving the block closes the connection mid-stream
    else:
        async def hang_up():
            async with httpx.AsyncClient(timeout=60) as client:
                task = asyncio.create_task(client.post(tight_server.v1 + "/chat/completions",
                                                       json={**LONG, "stream": False}))
                await asyncio.sleep(1.0)
                assert details(tight_server)["active"] == 1
                task.cancel()
        asyncio.run(hang_up())
    # Freed long before the 2000 tokens asked for could be generated (20 s or more here);
    # how fast it is freed is measured by benchmarks/responsiveness.py.
    assert wait_for(lambda: details(tight_server)["active"] == 0, timeout=10)
    reply = httpx.post(tight_server.v1 + "/chat/completions", json={**LONG, "stream": False, "max_tokens": 3},
                       timeout=30)
    assert reply.status_code == 200
    logged = tight_server.log()[log_before:]
    assert "Traceback" not in logged and "ERROR" not in logged, logged[-2000:]


def test_health_answers_while_a_generation_runs(tight_server):
    with httpx.Client(timeout=60) as http, http.stream("POST", tight_server.v1 + "/chat/completions",
                                                       json=LONG) as busy:
        lines = busy.iter_lines()
        next(lines)
        for _ in range(5):  # answered while the answer goes on (how fast: benchmarks/responsiveness.py)
            assert http.get(tight_server.url + "/health", timeout=10).status_code == 200
        assert details(tight_server)["active"] == 1
