"""How much does serving through the API cost? Raw llama-cpp-python vs /v1/chat/completions.

Measures, in one run and on the same model, threads and context, alternating the two sides:
  raw: llama-cpp-python in-process, `create_chat_completion(stream=True)`
  api: `python app.py` on 127.0.0.1, streaming /v1/chat/completions read with httpx
and prints median decode tokens/s and time to first token (TTFT), and their ratios.

    python -m benchmarks.api_vs_raw [--model smollm2-135m-instruct] [--runs 9] [--max-tokens 256]

Targets (issue 2): api/raw tokens/s >= 0.97; TTFT overhead <= 15 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import llama_cpp

from engines.model_files import resolve_path, spec_for
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent

PROMPT = "Run {i}. Write a long, detailed story about a lighthouse keeper and a storm."


def measure_raw(llm: llama_cpp.Llama, i: int, max_tokens: int) -> tuple[float, float, int]:
    started = time.perf_counter()
    stamps = []
    for chunk in llm.create_chat_completion(
        [{"role": "user", "content": PROMPT.format(i=i)}], max_tokens=max_tokens, temperature=0, stream=True
    ):
        if chunk["choices"][0]["delta"].get("content"):
            stamps.append(time.perf_counter())
    return stats(started, stamps, len(stamps))


def measure_api(client: httpx.Client, url: str, model: str, i: int, max_tokens: int) -> tuple[float, float, int]:
    """A lean SSE reader: it shares the 2 cores with the server, so it timestamps raw byte blocks
    and parses JSON only for the final usage event."""
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT.format(i=i)}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    stamps, tail = [], b""
    started = time.perf_counter()
    with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
        for block in response.iter_raw():
            if b'"delta":{"content":' in block:
                stamps.append(time.perf_counter())
            tail = (tail + block)[-4096:]
    usage = next(json.loads(line[6:])["usage"] for line in tail.decode().splitlines() if '"usage"' in line)
    return stats(started, stamps, usage["completion_tokens"])


def stats(started: float, stamps: list[float], tokens: int) -> tuple[float, float, int]:
    ttft_ms = (stamps[0] - started) * 1000
    tokens_per_s = (tokens - 1) / (stamps[-1] - stamps[0])
    return ttft_ms, tokens_per_s, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    spec = spec_for(args.model)
    path = resolve_path(spec)
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=spec.n_ctx, n_threads=args.threads,
                          n_threads_batch=args.threads, n_batch=spec.n_batch, verbose=False)

    port = free_port()
    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    server = subprocess.Popen(
        [sys.executable, "app.py", "--model", args.model, "--port", str(port), "--no-ui", "--max-concurrent", "1",
         "--threads", str(args.threads), "--log-level", "warning"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=300) as client:
            for _ in range(600):
                try:
                    if client.get(url + "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            measure_raw(llm, -1, 16)  # warm-up both sides
            measure_api(client, url, args.model, -1, 16)
            raw, api = [], []
            for i in range(args.runs):  # alternate so drift in machine load hits both sides alike
                raw.append(measure_raw(llm, i, args.max_tokens))
                api.append(measure_api(client, url, args.model, i, args.max_tokens))
    finally:
        server.terminate()
        server.wait(10)

    print(f"model {args.model}, threads {args.threads}, {args.runs} runs x {args.max_tokens} tokens, "
          f"{os.cpu_count()} CPUs")
    report(("raw", raw), ("api", api), tps_target=0.97, ttft_target_ms=15)


def report(baseline: tuple[str, list], candidate: tuple[str, list], *, tps_target: float,
           ttft_target_ms: float) -> None:
    """Prints median TTFT and decode tokens/s of both sides (rows from measure_*), and their ratios."""
    (base_name, base), (cand_name, cand) = baseline, candidate

    def median(rows, k):
        return statistics.median(r[k] for r in rows)

    pair_ratio = statistics.median(c[1] / b[1] for c, b in zip(cand, base, strict=True))
    print(f"{'':8}{'TTFT ms':>10}{'decode tok/s':>14}")
    for name, rows in (baseline, candidate):
        print(f"{name:8}{median(rows, 0):>10.1f}{median(rows, 1):>14.1f}")
    print(f"{cand_name}/{base_name} tokens/s: {median(cand, 1) / median(base, 1):.3f}  "
          f"(median of per-pair ratios {pair_ratio:.3f}; target >= {tps_target})")
    print(f"TTFT added: {median(cand, 0) - median(base, 0):+.1f} ms  (target <= {ttft_target_ms:g} ms)")

if __name__ == "__main__":
    main()
