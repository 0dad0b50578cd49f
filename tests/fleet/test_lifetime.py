"""Hand-offs on loopback: an instance whose lifetime ends starts its successor (a real second
`app.py`), waits until the hub sees it healthy, then drains and exits — under steady client load,
twice in a row; and a successor that never becomes healthy leaves the instance serving."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time

import httpx
import openai
import pytest

from fleet.lifetime import parse_duration, successor_id
from tests.support.fleet import TOKEN, instances
from tests.support.servers import CHAT_MODEL, ROOT, start_server, stop_server, wait_for

SUCCESSOR = f"{sys.executable} {ROOT / 'tests/fleet/successor.py'} {{instance_id}} 3"


def test_durations_and_successor_ids():
    assert parse_duration("5h30m") == 19800 and parse_duration("90s") == 90 and parse_duration("45") == 45
    assert parse_duration("1.5h") == 5400
    for bad in ("5x", "h", "5h 30m", ""):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)
    assert successor_id("runner-a") == "runner-a.2" and successor_id("runner-a.2") == "runner-a.3"


@pytest.fixture
def hub(tmp_path):
    srv = start_server(tmp_path, "--model", "none", "--hub-token", TOKEN, "--probe-interval", "0.5", "--no-ui",
                       "--hub-allow-private")
    yield srv
    stop_server(srv)


def instance_env(hub, lifetime: str, successor: str) -> dict[str, str]:
    """Settings by environment, so that each successor inherits them (as a runner's job env would)."""
    return {"PLAYGROUND_HUB": hub.url, "PLAYGROUND_HUB_TOKEN": TOKEN, "PLAYGROUND_MODELS": CHAT_MODEL,
            "PLAYGROUND_UI": "false", "PLAYGROUND_THREADS": "1", "PLAYGROUND_LIFETIME": lifetime,
            "PLAYGROUND_SUCCESSOR": successor, "PLAYGROUND_HANDOFF_TIMEOUT": "60"}


def successor_pids(log: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"successor \S+ started as pid (\d+)", log)]


def test_two_hand_offs_in_a_row_under_steady_load_lose_no_request(hub, tmp_path):
    first = start_server(tmp_path, "--instance-id", "runner", env=instance_env(hub, "8s", SUCCESSOR))
    outcomes: list[str] = []
    stop = threading.Event()

    def client_loop():
        client = openai.OpenAI(base_url=hub.v1, api_key="x", max_retries=0, timeout=60)
        while not stop.is_set():
            try:
                stream = client.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}],
                                                        max_tokens=8, stream=True)
                outcomes.append("ok" if "".join(c.choices[0].delta.content or "" for c in stream if c.choices) else
                                "empty")
            except openai.APIError as exc:
                outcomes.append(f"failed: {exc}")
            time.sleep(0.05)

    threads = [threading.Thread(target=client_loop) for _ in range(2)]
    try:
        assert wait_for(lambda: instances(hub).get("runner", {}).get("state") == "healthy", timeout=30)
        for thread in threads:
            thread.start()
        assert wait_for(lambda: "runner.3" in instances(hub), timeout=90), first.log()[-3000:]
        assert wait_for(lambda: set(instances(hub)) == {"runner.3"}, timeout=30), instances(hub)
        assert first.process.wait(10) in (0, -signal.SIGTERM)  # the first one drained and exited
        time.sleep(2)  # load on the last one
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        log = first.log()
        for pid in successor_pids(log):  # each successor leads its own process group
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        stop_server(first)
    print(f"\nhand-offs: {len(outcomes)} requests, {outcomes.count('ok')} succeeded, "
          f"failures: {[o for o in outcomes if o != 'ok']}")
    assert len(successor_pids(log)) == 2  # runner -> runner.2 -> runner.3
    assert "successor runner.2 is healthy: draining and exiting" in log
    assert "successor runner.3 is healthy: draining and exiting" in log
    assert len(outcomes) >= 20 and outcomes.count("ok") == len(outcomes)


def test_a_successor_that_never_becomes_healthy_leaves_the_instance_serving(hub, tmp_path):
    env = {**instance_env(hub, "3s", "sleep 30"), "PLAYGROUND_HANDOFF_TIMEOUT": "3"}
    srv = start_server(tmp_path, "--instance-id", "stays", env=env)
    try:
        assert wait_for(lambda: "did not become healthy within 3 s (not registered at the hub" in srv.log(),
                        timeout=30), srv.log()[-2000:]
        details = httpx.get(srv.url + "/health/details").json()
        assert details["lifetime"]["state"] in ("successor-failed", "handing-off")
        reply = openai.OpenAI(base_url=hub.v1, api_key="x", max_retries=0).chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        assert reply.usage.completion_tokens >= 1 and srv.process.poll() is None
        assert instances(hub)["stays"]["state"] == "healthy"
        # One lineage: the failed attempt is stopped, and the next one uses the same successor id.
        assert wait_for(lambda: "starting successor stays.2 (attempt 2)" in srv.log(), timeout=30), srv.log()[-2000:]
        first_attempt = successor_pids(srv.log())[0]
        assert f"stopped the failed successor (pid {first_attempt})" in srv.log()
        with pytest.raises(ProcessLookupError):
            os.killpg(first_attempt, 0)
    finally:
        stop_server(srv)
