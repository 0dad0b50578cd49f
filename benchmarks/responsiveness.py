"""Does the server stay responsive while it generates, and how fast does a cancelled answer leave?

Measures, in one run, on one `python app.py` (one slot) on 127.0.0.1:
  /health latency idle and while a long answer streams (the decode thread must not block the
  event loop), alternating the two; and the time from a client hanging up mid-stream until its
  slot is free, in milliseconds and in tokens of that same stream.
These are the timing claims the tests leave out (tests check behaviour with generous timeouts).

    python -m benchmarks.responsiveness [--model smollm2-135m-instruct] [--runs 9]

Targets: /health while generating <= 3x idle (p95) and under 50 ms; slot free within 5 tokens.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent

LONG = {"messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
        "max_tokens": 4000, "ignore_eos": True, "stream": True}


def health_ms(client: httpx.Client, url: str, samples: int = 20) -> list[float]:
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        client.get(url + "/health").raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
    return timings


def active(client: httpx.Client, url: str, model: str) -> int:
    return client.get(url + "/health/details").json()["models"][model]["active"]


def one_run(client: httpx.Client, url: str, model: str) -> tuple[list[float], list[float], float, float]:
    """(health idle, health while generating, ms until the slot is free, the same in tokens)."""
    idle = health_ms(client, url)
    with httpx.Client(timeout=300) as streamer, streamer.stream(
            "POST", url + "/v1/chat/completions", json={**LONG, "model": model}) as response:
        lines = response.iter_lines()
        stamps: list[float] = []
        for line in lines:
            if line.startswith("data:"):
                stamps.append(time.perf_counter())
            if len(stamps) == 41:
                break
        busy = health_ms(client, url)
        token_ms = (stamps[-1] - stamps[0]) * 1000 / 40
    hung_up = time.perf_counter()  # leaving the block closed the connection mid-answer
    while active(client, url, model):
        time.sleep(0.002)
    freed_ms = (time.perf_counter() - hung_up) * 1000
    return idle, busy, freed_ms, freed_ms / token_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()

    port = free_port()
    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    server = subprocess.Popen(
        [sys.executable, "app.py", "--model", args.model, "--port", str(port), "--no-ui", "--max-concurrent", "1",
         "--log-level", "warning"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=60) as client:
            for _ in range(600):
                try:
                    if client.get(url + "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            runs = [one_run(client, url, args.model) for _ in range(args.runs)]
    finally:
        server.terminate()
        server.wait(10)

    idle = [t for run in runs for t in run[0]]
    busy = [t for run in runs for t in run[1]]

    def p95(values: list[float]) -> float:
        return statistics.quantiles(values, n=20)[-1]

    print(f"model {args.model}, one slot, {args.runs} runs, {os.cpu_count()} CPUs")
    print(f"{'/health ms':22}{'median':>8}{'p95':>8}")
    print(f"{'idle':22}{statistics.median(idle):>8.1f}{p95(idle):>8.1f}")
    print(f"{'while generating':22}{statistics.median(busy):>8.1f}{p95(busy):>8.1f}")
    print(f"generating/idle p95: {p95(busy) / p95(idle):.2f}x  (target <= 3x and <= 50 ms)")
    freed_ms = statistics.median(run[2] for run in runs)
    freed_tokens = statistics.median(run[3] for run in runs)
    print(f"slot free after hang-up: median {freed_ms:.1f} ms = {freed_tokens:.1f} tokens (target <= 5 tokens)")


if __name__ == "__main__":
    main()
