"""Shutdown and membership edge cases with real processes: /health says "draining" during any
shutdown; a draining instance never joins a restarted hub; a second lineage of one instance id stops
itself."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from engines.catalog import find
from engines.pool import Instance
from engines.registry import ModelRegistry
from fleet.link import HubLink
from tests.support.fleet import INSTANCE_ARGS, TOKEN, instances
from tests.support.scripted import ScriptedEngine, answer
from tests.support.servers import CHAT_MODEL, free_port, start_server, stop_server, wait_for

LONG = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "A story"}], "max_tokens": 400,
        "ignore_eos": True, "stream": True}


def hub_args(*extra: str) -> tuple[str, ...]:
    return ("--model", "none", "--hub-token", TOKEN, "--hub-allow-private", "--no-ui", "--probe-interval", "0.5",
            "--heartbeat-timeout", "1.5", *extra)


def health_during_shutdown(server, seconds: float) -> list[int]:
    """Streams a long answer, sends SIGTERM after its first chunks, and polls /health meanwhile."""
    statuses = []
    with httpx.stream("POST", server.v1 + "/chat/completions", json=LONG, timeout=60) as response:
        lines = response.iter_lines()
        for _ in range(3):
            next(lines)
        server.process.send_signal(signal.SIGTERM)
        for _ in range(int(seconds / 0.1)):
            try:
                statuses.append(httpx.get(server.url + "/health", timeout=2).status_code)
            except httpx.TransportError:
                statuses.append(0)  # the listener has closed
                break
            time.sleep(0.1)
        list(lines)  # the answer in flight finishes
    return statuses


@pytest.mark.slow
def test_health_says_draining_during_a_shutdown_without_a_hub(tmp_path):
    server = start_server(tmp_path, *INSTANCE_ARGS, "--drain-grace", "1")
    try:
        statuses = health_during_shutdown(server, 3)
        assert statuses[0] == 503 and set(statuses) <= {503, 0}, statuses
        assert statuses.count(503) >= 5  # the grace: about a second of answering "draining"
        assert server.process.wait(30) in (0, -signal.SIGTERM)
    finally:
        stop_server(server)


@pytest.mark.slow
def test_a_draining_instance_never_joins_a_restarted_hub(tmp_path):
    port = free_port()
    hub = start_server(tmp_path, *hub_args(), port=port)
    member = start_server(tmp_path, *INSTANCE_ARGS, "--hub", hub.url, "--hub-token", TOKEN, "--instance-id", "m")
    try:
        assert wait_for(lambda: instances(hub).get("m", {}).get("state") == "healthy", timeout=20)
        with httpx.stream("POST", member.v1 + "/chat/completions", json=LONG, timeout=60) as response:
            lines = response.iter_lines()
            next(lines)
            member.process.send_signal(signal.SIGTERM)  # draining: the stream in flight goes on
            assert wait_for(lambda: instances(hub).get("m", {}).get("state") == "draining", timeout=10)
            stop_server(hub)
            hub = start_server(tmp_path, *hub_args(), port=port)  # the hub restarts, knowing nobody
            seen = []
            for _ in range(3):  # a few heartbeat intervals (0.5 s)
                time.sleep(0.5)
                seen.append(instances(hub))
            list(lines)
        assert seen == [{}, {}, {}]  # heartbeats got 404: a draining instance does not register again
        assert "m" not in instances(hub)
        assert member.process.wait(30) in (0, -signal.SIGTERM)
    finally:
        stop_server(member)
        stop_server(hub)


@pytest.mark.slow
def test_an_instance_whose_id_stays_taken_stops_itself(tmp_path):
    hub = start_server(tmp_path, *hub_args("--heartbeat-timeout", "30"))
    first = start_server(tmp_path, *INSTANCE_ARGS, "--hub", hub.url, "--hub-token", TOKEN, "--instance-id", "twin")
    try:
        assert wait_for(lambda: instances(hub).get("twin", {}).get("state") == "healthy", timeout=20)
        registry = ModelRegistry()
        registry.pool(find(CHAT_MODEL)).add(Instance("local", ScriptedEngine(answer()), kind="local", source="local"))
        link = HubLink(hub.url, "http://127.0.0.1:9", "twin", registry, token=TOKEN)
        link.id_taken_grace = 1.0
        stopped = asyncio.Event()
        link.on_id_taken = stopped.set

        async def second_lineage():
            task = asyncio.create_task(link.run())
            try:
                await asyncio.wait_for(stopped.wait(), timeout=15)
            finally:
                task.cancel()
                await link.leave()

        asyncio.run(second_lineage())
        assert not link.registered and instances(hub)["twin"]["state"] == "healthy"  # the first one is untouched
    finally:
        stop_server(first)
        stop_server(hub)
