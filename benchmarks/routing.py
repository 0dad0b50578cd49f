"""model="auto": how well requests are classified, and what routing adds before the first token.

    python -m benchmarks.routing

A labelled set kept in the repo (benchmarks/data/routing.jsonl: 60 prompts, 15 each of coding,
reasoning, function calling and general) is classified by the embedded model under the router's JSON
schema (asked here although the router itself does not ask models under 1 GB) and by the keyword
classifier, side by side, through engines/router.py with the real model in this process. Prints each
method's accuracy (overall and per category) and the routing overhead (classification, median and
p95 ms).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import statistics
import time
from collections import Counter
from pathlib import Path

from engines.catalog import find
from engines.contract import GenerationRequest
from engines.local import LocalEngine
from engines.model_files import resolve_path
from engines.registry import ModelRegistry
from engines.router import CATEGORIES, Router, keyword_category
from tests.support.servers import CHAT_MODEL

DATA = Path(__file__).parent / "data" / "routing.jsonl"


def labelled() -> list[tuple[str, str]]:
    return [(row["prompt"], row["category"]) for row in map(json.loads, DATA.read_text().splitlines())]


async def main() -> None:
    spec = dataclasses.replace(find(CHAT_MODEL), max_concurrent=1, n_threads=2)
    registry = ModelRegistry()
    registry.add(spec, LocalEngine(spec, resolve_path(spec), max_queue=4, queue_timeout=60))
    router = Router(registry)
    rows = labelled()
    right: dict[str, Counter] = {"model": Counter(), "keywords": Counter()}
    model_ms, keyword_ms, route_ms, fallbacks = [], [], [], 0
    for prompt, truth in rows:
        started = time.perf_counter()
        category = await router.ask(registry.entry(CHAT_MODEL), prompt)  # asked even though it is small
        model_ms.append((time.perf_counter() - started) * 1000)
        fallbacks += category is None
        right["model"][truth] += category == truth
        started = time.perf_counter()
        right["keywords"][truth] += keyword_category(prompt) == truth
        keyword_ms.append((time.perf_counter() - started) * 1000)
        route_ms.append((await router.route(GenerationRequest(messages=[{"role": "user", "content": prompt}])))
                        .classify_ms)
    totals = Counter(truth for _, truth in rows)
    print(f"{len(rows)} labelled prompts, {CHAT_MODEL} as the classifier, 2 threads, {os.cpu_count()} CPUs")
    columns = "".join(f"{c:>18}" for c in CATEGORIES)
    print(f"{'method':10}{'accuracy':>10}{columns}{'median ms':>11}{'p95 ms':>9}")
    for method, times in (("model", model_ms), ("keywords", keyword_ms)):
        accuracy = sum(right[method].values()) / len(rows)
        per = "".join(f"{right[method][c]:>12}/{totals[c]:<5}" for c in CATEGORIES)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"{method:10}{accuracy:>10.0%}{per}{statistics.median(times):>11.1f}{p95:>9.1f}")
    print(f"(the model gave no valid category {fallbacks} times)")
    print(f"routing as served here (method: {(await router.route(GenerationRequest(messages=[]))).method}): "
          f"median {statistics.median(route_ms):.2f} ms, p95 {statistics.quantiles(route_ms, n=20)[-1]:.2f} ms "
          "before the model starts")
    await registry.aclose()


if __name__ == "__main__":
    asyncio.run(main())
