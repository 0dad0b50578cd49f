"""Does the council's parallel fan-out pay off? Council wall time against the sum and the max of its
members' solo times, in one run, with the embedded models (greedy decoding, so each member writes
the same answer alone and in the council).

    python -m benchmarks.council_fanout [--threads 2] [--max-tokens 96] [--runs 3]

All models of a process decode on one thread, taking turns step by step (engines/batch.py: two
OpenMP pools on the same cores slow every decode down), so with local members the stage-1 wall time
is close to sum(solo) with every core busy; members on other instances run truly in parallel.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import time
from pathlib import Path

from engines.catalog import find
from engines.contract import GenerationRequest, collect
from engines.local import LocalEngine
from engines.model_files import resolve_path
from modes import run_mode
from modes.events import ModeOptions

ROOT = Path(__file__).resolve().parent.parent

MEMBERS = ["smollm2-135m-instruct", "gemma3-270m"]
QUESTION = "Explain in a few sentences why the sky is blue."


async def solo(engine: LocalEngine, max_tokens: int) -> float:
    started = time.perf_counter()
    await collect(engine.stream(GenerationRequest(messages=[{"role": "user", "content": QUESTION}],
                                                  max_tokens=max_tokens, temperature=0.0)))
    return time.perf_counter() - started


async def council(engines: dict, max_tokens: int) -> tuple[float, float]:
    options = ModeOptions(members=MEMBERS, max_tokens=max_tokens, temperature=0.0)
    started = time.perf_counter()
    stage1 = None
    async for event in run_mode("council", QUESTION, options, engines.__getitem__):
        if event.type == "stage_done" and event.stage == "answers":
            stage1 = time.perf_counter() - started
    return stage1, time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    engines = {}
    for model_id in MEMBERS:
        spec = dataclasses.replace(find(model_id), n_threads=args.threads, max_concurrent=2)
        engines[model_id] = LocalEngine(spec, resolve_path(spec), max_queue=8, queue_timeout=600)
    await solo(engines[MEMBERS[0]], 4)  # warm-up
    sums, maxes, stage1s, totals = [], [], [], []
    for _ in range(args.runs):
        solos = [await solo(engines[m], args.max_tokens) for m in MEMBERS]
        stage1, total = await council(engines, args.max_tokens)
        sums.append(sum(solos))
        maxes.append(max(solos))
        stage1s.append(stage1)
        totals.append(total)
    med = statistics.median
    print(f"members {', '.join(MEMBERS)}; threads/member {args.threads}; {os.cpu_count()} CPUs; "
          f"max_tokens {args.max_tokens}; medians of {args.runs} runs")
    print(f"solo sum {med(sums):.2f} s, solo max {med(maxes):.2f} s")
    print(f"council stage 1 (parallel answers) {med(stage1s):.2f} s: {med(stage1s) / med(sums):.2f} x sum, "
          f"{med(stage1s) / med(maxes):.2f} x max")
    print(f"council total (answers, rankings, chairman) {med(totals):.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
