"""50 clients at once: against one `python app.py` (2 slots, a queue of 8), then through a hub in front
of two such instances. Prints, for each, what the clients got (finished / 429 / 503 / failed), the
latency of finished answers (p50, p95), /health latency meanwhile (max, p95) and resident memory
idle before and after (the instance; for the hub, the hub process).

    python -m benchmarks.load [--clients 50] [--tokens 12]

Targets: no client without an answer or a 429/503 carrying Retry-After; /health under 100 ms
throughout; memory back to its idle level (within a few MB).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.fleet import TOKEN, instances
from tests.support.load import HealthWatch, Outcome, resident_mb, run_clients
from tests.support.servers import CHAT_MODEL, Server, start_server, stop_server, wait_for

SLOTS = ("--model", CHAT_MODEL, "--no-ui", "--threads", "1", "--max-concurrent", "2", "--max-queue", "8",
         "--queue-timeout", "10", "--log-level", "warning")


def burst(server: Server, watched: Server, clients: int, tokens: int) -> None:
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Count to ten."}], "max_tokens": tokens,
            "ignore_eos": True}
    run_clients(server.url, body, clients, timeout=120)  # warm-up: buffers reach their size
    time.sleep(1)
    before = resident_mb(watched.process.pid)
    with HealthWatch(server.url) as health:
        outcomes = run_clients(server.url, body, clients, timeout=120)
    time.sleep(2)
    after = resident_mb(watched.process.pid)
    report(outcomes, health.ms, before, after)


def report(outcomes: list[Outcome], health_ms: list[float], before: float, after: float) -> None:
    finished = sorted(o.seconds for o in outcomes if o.finished)
    refused = [o for o in outcomes if o.status in (429, 503)]
    failed = len(outcomes) - len(finished) - len(refused)
    without_retry_after = sum(1 for o in refused if not o.retry_after)
    quantiles = statistics.quantiles(finished, n=20) if len(finished) > 1 else [0.0] * 19
    print(f"  sent {len(outcomes)}: finished {len(finished)}, 429 {sum(o.status == 429 for o in refused)}, "
          f"503 {sum(o.status == 503 for o in refused)} ({without_retry_after} without Retry-After), failed {failed}")
    print(f"  finished latency: p50 {statistics.median(finished):.2f} s, p95 {quantiles[-1]:.2f} s")
    print(f"  /health during the burst: {len(health_ms)} checks, p95 {statistics.quantiles(health_ms, n=20)[-1]:.1f} "
          f"ms, max {max(health_ms):.1f} ms (target < 100 ms)")
    print(f"  resident memory: idle {before:.0f} MB before, {after:.0f} MB after ({after - before:+.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=12)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    print(f"{args.clients} clients, {args.tokens}-token answers, {os.cpu_count()} CPUs")

    print("one instance (2 slots, queue 8, queue timeout 10 s):")
    instance = start_server(tmp, *SLOTS)
    try:
        burst(instance, instance, args.clients, args.tokens)
    finally:
        stop_server(instance)

    print("a hub in front of two such instances:")
    hub = start_server(tmp, "--model", "none", "--hub-token", TOKEN, "--hub-allow-private", "--no-ui",
                       "--probe-interval", "0.5", "--log-level", "warning")
    members = [start_server(tmp, *SLOTS, "--hub", hub.url, "--hub-token", TOKEN, "--instance-id", f"l{n}")
               for n in (1, 2)]
    try:
        wait_for(lambda: all(m.process.poll() is None for m in members) and _healthy(hub) == 2, timeout=30)
        burst(hub, hub, args.clients, args.tokens)
    finally:
        for server in (*members, hub):
            stop_server(server)


def _healthy(hub: Server) -> int:
    return sum(i["state"] == "healthy" for i in instances(hub).values())


if __name__ == "__main__":
    main()
