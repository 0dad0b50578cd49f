"""A hub hands over to its successor behind one shared address (tests/support/shared_address.py, as a
named tunnel): the successor imports the fleet with its leases and reports healthy only once it serves
every model, so two clients streaming through the address the whole time see no failure."""

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

from tests.support.fleet import INSTANCE_ARGS, TOKEN, instances
from tests.support.servers import CHAT_MODEL, ROOT, Server, start_server, stop_server, wait_for
from tests.support.shared_address import SharedAddress

SUCCESSOR = f"{sys.executable} {ROOT / 'tests/fleet/successor.py'} {{instance_id}} 2"


def hub_env(shared: SharedAddress) -> dict[str, str]:
    """A hub that serves 10 s, then starts its successor (importing from the shared address)."""
    return {"PLAYGROUND_MODELS": "none", "PLAYGROUND_HUB_TOKEN": TOKEN, "PLAYGROUND_HUB_ALLOW_PRIVATE": "true",
            "PLAYGROUND_UI": "false", "PLAYGROUND_PROBE_INTERVAL": "0.5", "PLAYGROUND_HEARTBEAT_TIMEOUT": "6",
            "PLAYGROUND_LIFETIME": "10s", "PLAYGROUND_SUCCESSOR": f"{SUCCESSOR} --hub-import {shared.url}",
            "PLAYGROUND_SUCCESSOR_URL": shared.url, "PLAYGROUND_HANDOFF_TIMEOUT": "60",
            "PLAYGROUND_DRAIN_GRACE": "1"}


def connect_new_servers(first: Server, shared: SharedAddress, stop: threading.Event) -> None:
    """Each server the first hub's successor command starts joins the address (as a connector would;
    it is health-checked before it gets traffic)."""
    while not stop.is_set():
        for port in re.findall(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", first.log()):
            shared.add(f"http://127.0.0.1:{port}")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_hub_hands_over_to_its_successor_without_a_failed_request(tmp_path):
    shared = SharedAddress()
    first = start_server(tmp_path, "--instance-id", "hub", env=hub_env(shared))
    members, outcomes, stop = [], [], threading.Event()
    threads = [threading.Thread(target=connect_new_servers, args=(first, shared, stop))]

    def client_loop():
        # A new connection per request, as a tunnel's edge routes each request (this address is TCP).
        client = openai.OpenAI(base_url=shared.url + "/v1", api_key="x", max_retries=0, timeout=60,
                               http_client=httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)))
        while not stop.is_set():
            try:
                stream = client.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}],
                                                        max_tokens=8, stream=True)
                text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
                outcomes.append("ok" if text else "empty")
            except openai.APIError as exc:
                outcomes.append(f"failed: {exc}")
            time.sleep(0.05)

    try:
        shared.add(first.url)
        assert shared.wait_healthy(first.url)
        for name in ("i1", "i2"):
            members.append(start_server(tmp_path, *INSTANCE_ARGS, "--hub", shared.url, "--hub-token", TOKEN,
                                        "--instance-id", name))
        assert wait_for(lambda: {n for n, i in instances(first).items() if i["state"] == "healthy"} == {"i1", "i2"},
                        timeout=30)
        threads += [threading.Thread(target=client_loop) for _ in range(2)]
        for thread in threads:
            thread.start()
        assert wait_for(lambda: "successor hub.2 is healthy: draining and exiting" in first.log(), timeout=90), \
            first.log()[-3000:]
        assert first.process.wait(30) in (0, -signal.SIGTERM)
        time.sleep(3)  # traffic on the successor alone
        details = httpx.get(shared.url + "/health/details", timeout=5).json()
    finally:
        stop.set()
        for thread in threads:
            if thread.ident:
                thread.join(60)
        log = first.log()
        for pid in re.findall(r"successor \S+ started as pid (\d+)", log):
            try:
                os.killpg(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                pass
        for server in (*members, first):
            stop_server(server)
        shared.close()
    print(f"\nhub hand-off: {len(outcomes)} requests, {outcomes.count('ok')} succeeded, "
          f"failures: {[o for o in outcomes if o != 'ok']}")
    assert "imported 2 instances from hub" in log
    assert details["instance_id"] == "hub.2" and details["status"] == "ok"
    assert {i["name"] for i in details["models"][CHAT_MODEL]["instances"] if i["state"] == "healthy"} == {"i1", "i2"}
    assert len(outcomes) >= 20 and outcomes.count("ok") == len(outcomes)
