"""Instances SIGKILLed under load behind a hub: does any client notice?

A hub (`--model none`) in front of two registered instances; 4 client threads stream 48-token answers
for `--seconds`; every `--every` seconds (first after 5 s) the instance serving the most streams is
SIGKILLed and a fresh one joins, so the fleet stays at two. Prints requests sent / finished /
resumed (continued on another instance after their instance died mid-answer, from the hub's
/metrics) / failed.

    python -m benchmarks.kill_under_load [--seconds 30] [--every 10] [--runs 3]

Target: 0 failed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import threading
import time
from pathlib import Path

from tests.support.fleet import INSTANCE_ARGS, TOKEN, instances
from tests.support.load import one_stream
from tests.support.servers import CHAT_MODEL, Server, samples, start_server, stop_server, total, wait_for

BODY = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Tell a story."}], "max_tokens": 48,
        "ignore_eos": True}


def one_run(tmp: Path, seconds: float, every: float) -> tuple[int, int, int, list[str]]:
    hub = start_server(tmp, "--model", "none", "--hub-token", TOKEN, "--hub-allow-private", "--no-ui",
                       "--probe-interval", "0.5", "--heartbeat-timeout", "3", "--log-level", "warning")
    names = (f"k{n}" for n in itertools.count(1))
    members: dict[str, Server] = {}

    def join() -> None:
        name = next(names)
        members[name] = start_server(tmp, *INSTANCE_ARGS, "--hub", hub.url, "--hub-token", TOKEN,
                                     "--instance-id", name, "--log-level", "warning")

    outcomes, stop = [], threading.Event()

    def client() -> None:
        while not stop.is_set():
            outcomes.append(one_stream(hub.url, BODY, timeout=120))

    try:
        join()
        join()
        assert wait_for(lambda: sum(i["state"] == "healthy" for i in instances(hub).values()) == 2, timeout=30)
        before = samples(hub)
        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        started, next_kill = time.monotonic(), time.monotonic() + 5
        while time.monotonic() - started < seconds:
            if time.monotonic() >= next_kill:
                live = {n: i for n, i in instances(hub).items() if i["state"] == "healthy" and n in members}
                victim = max(live, key=lambda n: live[n]["active"])
                members.pop(victim).process.kill()
                join()  # a replacement, as a restarted runner would be
                next_kill = time.monotonic() + every
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(120)
        after = samples(hub)
    finally:
        for server in (*members.values(), hub):
            stop_server(server)
    resumed = int(total(after, "playground_requests_total", status="resumed")
                  - total(before, "playground_requests_total", status="resumed"))
    finished = sum(o.finished for o in outcomes)
    failures = [f"{o.status} {o.error}" for o in outcomes if not o.finished]
    return len(outcomes), finished, resumed, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--every", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"hub + 2 instances, 4 streaming clients, 48-token answers, a SIGKILL every {args.every:g} s, "
          f"{args.seconds:g} s a run, {os.cpu_count()} CPUs")
    for run in range(1, args.runs + 1):
        sent, finished, resumed, failures = one_run(Path(tempfile.mkdtemp()), args.seconds, args.every)
        print(f"run {run}: sent {sent}, finished {finished}, resumed {resumed}, failed {len(failures)}"
              + (f": {failures[:3]}" if failures else ""))


if __name__ == "__main__":
    main()
