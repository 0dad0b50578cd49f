"""Speculative decoding: this app with and without it vs llama-server plain and with each n-gram mode.

    python -m benchmarks.speculative --llama-server PATH [--runs 1] [--max-tokens 300] [--streams 8]

Same GGUF, threads and context per slot on every side; temperature 0; each prompt goes to every side
in turn before the next prompt (alternating, so machine drift hits all alike). Every answer is exactly
--max-tokens long (ignore_eos), so each side decodes the same amount.

  1. one stream, one slot: the grounded set (benchmarks/data/grounded.jsonl: 12 prompts of 330-720
     tokens that copy, rewrite, extract to JSON or edit code from the prompt) and the chat set
     (benchmarks/data/chat.jsonl). Sides: the app without speculation, with n-gram speculation (the
     default) on an f16, q8_0 and q4_0 KV cache; llama-server plain and with each --spec-type.
     Per set: decode tokens/s over all answers (tokens after the first / time after the first),
     acceptance (drafted tokens kept), and the app's KV-cache memory per slot for each cache type.
  2. --streams concurrent streams, as many slots: the app (n-gram, and without speculation) vs
     llama-server -np N plain and with its best n-gram mode of phase 1; aggregate tokens/s (all
     tokens / wall time, prompts included).

Targets (issue 19): grounded >= 1.0 x llama-server's best n-gram mode and >= 1.5 x the app without
speculation; chat >= 0.97 x without speculation; N streams >= 1.2 x llama-server -np N.
Without --llama-server (or $LLAMA_SERVER) only the app's columns run.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.engine_vs_llama_server import FRESH, Side, start_app, start_llama_server

DATA = Path(__file__).parent / "data"
SPEC_TYPES = ("ngram-simple", "ngram-map-k", "ngram-map-k4v", "ngram-mod")
APP_PLAIN, APP_SPEC = "app", "app ngram"


@dataclass
class Answer:
    tokens: int
    decode_s: float  # from the first content event to the last
    wall_s: float
    drafted: int
    accepted: int


def prompts(name: str) -> list[str]:
    return [json.loads(line)["prompt"] for line in (DATA / name).read_text().splitlines() if line.strip()]


def ask(client: httpx.Client, side: Side, prompt: str, max_tokens: int) -> Answer:
    """One streamed answer. The reader timestamps raw blocks and parses only the final events."""
    body = {"model": side.model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True},
            "include_perf": True}
    first = last = 0.0
    tail: list[str] = []
    started = time.perf_counter()
    with client.stream("POST", side.url + "/v1/chat/completions", json=body, headers=FRESH) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                last = time.perf_counter()
                first = first or last
            if '"usage"' in line or '"timings"' in line or '"perf"' in line:
                tail.append(line)
    final: dict = {}
    for line in tail:
        event = json.loads(line.removeprefix("data: "))
        for key in ("usage", "timings", "perf"):
            if event.get(key):
                final[key] = event[key]
    tokens = final["usage"]["completion_tokens"]
    timings = final.get("perf") or final.get("timings") or {}
    drafted = timings.get("draft_tokens", timings.get("draft_n", 0))
    accepted = timings.get("draft_accepted", timings.get("draft_n_accepted", 0))
    return Answer(tokens, last - first, time.perf_counter() - started, drafted, accepted)


def rate(answers: list[Answer]) -> float:
    decoded = [a for a in answers if a.tokens >= 2 and a.decode_s > 0]
    return sum(a.tokens - 1 for a in decoded) / sum(a.decode_s for a in decoded)


def acceptance(answers: list[Answer]) -> str:
    drafted = sum(a.drafted for a in answers)
    return f"{sum(a.accepted for a in answers) / drafted:6.1%} of {drafted:5d}" if drafted else "      -"


def start_all(sides: list[Side]) -> None:
    with httpx.Client(timeout=600) as client:
        for side in sides:
            side.wait_ready(client)


def one_stream(args, binary: str | None) -> str | None:
    """Phase 1; returns llama-server's best n-gram mode on the grounded set."""
    app = [start_app(args.model, 1, args.threads, "on", "--speculative", "off", name=APP_PLAIN),
           start_app(args.model, 1, args.threads, "on", name=APP_SPEC),
           start_app(args.model, 1, args.threads, "on", "--cache-type", "q8_0", name="app ngram q8_0"),
           start_app(args.model, 1, args.threads, "on", "--cache-type", "q4_0", name="app ngram q4_0")]
    theirs = []
    if binary:
        theirs = [start_llama_server(binary, args.model, 1, args.threads)]
        theirs += [start_llama_server(binary, args.model, 1, args.threads, "--spec-type", kind, name=f"ls {kind}")
                   for kind in SPEC_TYPES]
    sides = app + theirs
    sets = {"grounded": prompts("grounded.jsonl"), "chat": prompts("chat.jsonl")}
    results = {name: {side.name: [] for side in sides} for name in sets}
    try:
        start_all(sides)
        with httpx.Client(timeout=600) as client:
            for side in sides:
                ask(client, side, "Hello", 8)  # warm-up
            for _ in range(args.runs):
                for set_name, items in sets.items():
                    for prompt in items:
                        for side in sides:
                            results[set_name][side.name].append(ask(client, side, prompt, args.max_tokens))
            memory = {side.name: client.get(side.url + "/health/details").json() for side in app}
    finally:
        for side in sides:
            side.stop()
    best = None
    for set_name, by_side in results.items():
        print(f"1. {set_name} set, one stream ({len(sets[set_name])} prompts x {args.runs} run(s), "
              f"{args.max_tokens} tokens at most)")
        plain = rate(by_side[APP_PLAIN])
        ngram_modes = {name: rate(a) for name, a in by_side.items() if name.startswith("ls ")}
        best_name = max(ngram_modes, key=ngram_modes.get) if ngram_modes else None
        if set_name == "grounded":
            best = best_name
        for name, answers in by_side.items():
            tokens = sum(a.tokens for a in answers)
            print(f"   {name:18}{rate(answers):7.1f} tok/s  {tokens:6d} tokens  accepted {acceptance(answers)}"
                  f"  x{rate(answers) / plain:.2f} of app without speculation")
        spec = rate(by_side[APP_SPEC])
        target = ">= 1.5" if set_name == "grounded" else ">= 0.97"
        print(f"   -> app ngram / app without speculation: x{spec / plain:.3f} (target {target})")
        if best_name:
            print(f"   -> app ngram / llama-server's best n-gram mode ({best_name[3:]}): "
                  f"x{spec / ngram_modes[best_name]:.3f}" + (" (target >= 1.0)" if set_name == "grounded" else ""))
            print(f"   -> app ngram / llama-server plain: x{spec / rate(by_side['llama-server']):.3f}")
    print("   KV cache per slot (n_ctx tokens): " + ", ".join(
        f"{name}: {_kv(details)} MB" for name, details in memory.items() if name != APP_PLAIN))
    return best


def _kv(details: dict) -> float:
    return next(iter(details["models"].values()))["kv_cache_mb_per_slot"]


def many_streams(args, binary: str | None, best: str | None) -> None:
    n = args.streams
    sides = [start_app(args.model, n, args.threads, "on", name=APP_SPEC),
             start_app(args.model, n, args.threads, "on", "--speculative", "off", name=APP_PLAIN)]
    if binary:
        sides.append(start_llama_server(binary, args.model, n, args.threads))
        if best:
            sides.append(start_llama_server(binary, args.model, n, args.threads, "--spec-type", best[3:], name=best))
    sets = {"grounded": prompts("grounded.jsonl")[:n], "chat": prompts("chat.jsonl")[:n]}
    try:
        start_all(sides)
        totals = {(set_name, side.name): [0, 0.0] for set_name in sets for side in sides}
        for _ in range(args.runs):
            for set_name, items in sets.items():
                for side in sides:
                    answers: list[Answer | None] = [None] * len(items)

                    def worker(k: int, side=side, answers=answers, items=items) -> None:
                        with httpx.Client(timeout=600) as client:
                            answers[k] = ask(client, side, items[k], args.max_tokens)

                    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(items))]
                    began = time.perf_counter()
                    for thread in threads:
                        thread.start()
                    for thread in threads:
                        thread.join()
                    total = totals[(set_name, side.name)]
                    total[0] += sum(a.tokens for a in answers)
                    total[1] += time.perf_counter() - began
    finally:
        for side in sides:
            side.stop()
    for set_name in sets:
        print(f"2. {set_name} set, {n} concurrent streams, {n} slots (aggregate: all tokens / wall time)")
        values = {side.name: totals[(set_name, side.name)][0] / totals[(set_name, side.name)][1] for side in sides}
        for name, value in values.items():
            print(f"   {name:18}{value:7.1f} tok/s")
        print(f"   -> app ngram / app without speculation: x{values[APP_SPEC] / values[APP_PLAIN]:.3f}")
        if "llama-server" in values:
            print(f"   -> app ngram / llama-server -np {n}: x{values[APP_SPEC] / values['llama-server']:.3f} "
                  "(target >= 1.2)")
        if best in values:
            print(f"   -> app ngram / llama-server -np {n} {best[3:]}: x{values[APP_SPEC] / values[best]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER"), help="path to a llama-server binary")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=300)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--phase", choices=("all", "1", "2"), default="all",
                        help="1: one stream; 2: concurrent streams (against ngram-mod when phase 1 is skipped)")
    args = parser.parse_args()
    binary = args.llama_server if args.llama_server and Path(args.llama_server).is_file() else None
    if binary is None:
        print("llama-server not given or not found: measuring this app alone (--llama-server PATH to compare)")
    print(f"model {args.model}, threads {args.threads}, {os.cpu_count()} CPUs, temperature 0, flash attention on, "
          f"{args.max_tokens} tokens per answer")
    best = one_stream(args, binary) if args.phase != "2" else "ls ngram-mod"
    if args.phase != "1":
        many_streams(args, binary, best)


if __name__ == "__main__":
    main()
