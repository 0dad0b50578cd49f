"""Many clients at once against a server: what each one got, /health latency meanwhile, resident
memory. Shared by tests/api/test_load.py (behaviour) and benchmarks/load.py (the figures)."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx


@dataclass
class Outcome:
    status: int  # HTTP status; 0 when the connection failed or the client timed out
    finished: bool = False  # a 200 stream that ended with a finish_reason and [DONE]
    retry_after: str | None = None
    seconds: float = 0.0
    error: str = ""


def one_stream(url: str, body: dict, timeout: float) -> Outcome:
    started = time.perf_counter()
    try:
        with httpx.stream("POST", url + "/v1/chat/completions", json={**body, "stream": True},
                          timeout=timeout) as response:
            if response.status_code != 200:
                response.read()
                return Outcome(response.status_code, retry_after=response.headers.get("retry-after"),
                               seconds=time.perf_counter() - started, error=response.text[:200])
            finish, done = None, False
            for line in response.iter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    if "error" in event:
                        return Outcome(200, seconds=time.perf_counter() - started, error=str(event["error"]))
                    for choice in event.get("choices") or ():
                        finish = choice.get("finish_reason") or finish
            return Outcome(200, finished=bool(finish and done), seconds=time.perf_counter() - started)
    except httpx.HTTPError as exc:
        return Outcome(0, seconds=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")


def run_clients(url: str, body: dict, clients: int, *, timeout: float) -> list[Outcome]:
    """`clients` streams started together, one per thread."""
    barrier = threading.Barrier(clients)

    def client(_: int) -> Outcome:
        barrier.wait()
        return one_stream(url, body, timeout)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(client, range(clients)))


class HealthWatch:
    """Times GET /health every `interval` seconds until stopped — from a process of its own, so the
    clients' threads in this one do not delay the measurement."""

    def __init__(self, url: str, interval: float = 0.05):
        context = multiprocessing.get_context("spawn")
        self._stop, self._results = context.Event(), context.Queue()
        self._process = context.Process(target=_watch, args=(url, interval, self._stop, self._results), daemon=True)
        self.ms: list[float] = []

    def __enter__(self) -> HealthWatch:
        self._process.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self.ms = self._results.get(timeout=30)
        self._process.join(10)


def _watch(url: str, interval: float, stop, results) -> None:
    timings = []
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                client.get(url + "/health")
                timings.append((time.perf_counter() - started) * 1000)
            except httpx.HTTPError:
                timings.append(float("inf"))
            time.sleep(interval)
    results.put(timings)


def resident_mb(pid: int) -> float:
    """A process's resident memory (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
