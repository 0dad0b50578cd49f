"""50 clients at once, against one instance (2 slots, a queue of 8) and through a hub in front of two:
each request completes or is refused at once with 429/503 and Retry-After; none hangs; /health keeps
answering; memory comes back. The latency figures are benchmarks/load.py's."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.fleet import TOKEN, instances
from tests.support.load import HealthWatch, resident_mb, run_clients
from tests.support.servers import CHAT_MODEL, start_server, stop_server, wait_for

CLIENTS = 50
SLOTS = ("--model", CHAT_MODEL, "--no-ui", "--threads", "1", "--max-concurrent", "2", "--max-queue", "8",
         "--queue-timeout", "10")
BODY = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Count to ten."}], "max_tokens": 12,
        "ignore_eos": True}


def check(outcomes) -> dict[str, int]:
    """Every client got a whole answer or a prompt refusal that says when to retry."""
    tally = {"finished": 0, "429": 0, "503": 0}
    for outcome in outcomes:
        if outcome.status == 200:
            assert outcome.finished, outcome
            tally["finished"] += 1
        else:
            assert outcome.status in (429, 503) and outcome.retry_after and int(outcome.retry_after) >= 1, outcome
            tally[str(outcome.status)] += 1
    assert max(o.seconds for o in outcomes) < 60  # nothing hung (queue timeout 10 s, 12 tokens an answer)
    return tally


@pytest.mark.slow
def test_fifty_clients_against_one_instance(tmp_path):
    server = start_server(tmp_path, *SLOTS)
    try:
        run_clients(server.url, BODY, CLIENTS, timeout=120)  # warm: buffers and caches reach their size
        time.sleep(1)
        idle_mb = resident_mb(server.process.pid)
        with HealthWatch(server.url) as health:
            tally = check(run_clients(server.url, BODY, CLIENTS, timeout=120))
        assert tally["finished"] >= 10 and tally["429"] >= 1, tally  # 2 slots + 8 waiting; the rest refused
        assert wait_for(lambda: httpx.get(server.url + "/health/details").json()["models"][CHAT_MODEL]["active"] == 0)
        time.sleep(1)
        assert resident_mb(server.process.pid) - idle_mb < 50  # nothing kept per request
        assert len(health.ms) > 10 and max(health.ms) < 2000, max(health.ms)  # answered throughout
    finally:
        stop_server(server)


@pytest.mark.slow
def test_fifty_clients_through_a_hub_spread_over_two_instances(tmp_path):
    hub = start_server(tmp_path, "--model", "none", "--hub-token", TOKEN, "--hub-allow-private", "--no-ui",
                       "--probe-interval", "0.5")
    members = [start_server(tmp_path, *SLOTS, "--hub", hub.url, "--hub-token", TOKEN, "--instance-id", name)
               for name in ("l1", "l2")]
    try:
        assert wait_for(lambda: {n for n, i in instances(hub).items() if i["state"] == "healthy"} == {"l1", "l2"},
                        timeout=30)
        with HealthWatch(hub.url) as health:
            tally = check(run_clients(hub.url, BODY, CLIENTS, timeout=120))
        served = {name: i["requests"] for name, i in instances(hub).items()}
        assert tally["finished"] >= 20, tally  # two instances' slots and queues
        assert served["l1"] >= 8 and served["l2"] >= 8, served
        assert max(health.ms) < 2000, max(health.ms)
    finally:
        for server in (*members, hub):
            stop_server(server)
