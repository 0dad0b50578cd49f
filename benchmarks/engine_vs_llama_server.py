"""How fast is the engine? This app vs llama-server on the same GGUF, threads and slots, in one run.

    python -m benchmarks.engine_vs_llama_server --llama-server PATH [--runs 5] [--max-tokens 200]

Phases (each side alternating run by run, so machine drift hits both alike):
  1. one stream:    app.py --max-concurrent 1 vs llama-server -np 1; median TTFT and decode tokens/s
  2. many streams:  app.py --max-concurrent 4 vs llama-server -np 4; 4 concurrent streams, aggregate
                    tokens/s (all tokens / wall time) and each stream's median and p95 gap between tokens
  3. conversation:  app.py; TTFT of a first turn (long system prompt) and of the second turn
  memory:           resident memory (PSS) of each server after each phase (1 slot, 4 slots)

Both sides stream /v1/chat/completions with temperature 0 and ignore_eos (exactly --max-tokens tokens).
Without --llama-server (or $LLAMA_SERVER) the llama-server columns are skipped. Build it from the
llama.cpp vendored in llama-cpp-python's source package (never commit the build):
    pip download llama-cpp-python==0.3.36 --no-deps --no-binary :all: && tar xzf llama_cpp_python-*.tar.gz
    cd llama_cpp_python-*/vendor/llama.cpp && cmake -B build -DLLAMA_CURL=OFF
    cmake --build build --target llama-server
On x86-64 add the CPU flags requirements.txt gives llama-cpp-python (-DGGML_NATIVE=OFF -DGGML_AVX=ON
-DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON), so both sides run the same kernels.

Targets (issue 8): one stream tokens/s >= 1.0 x llama-server, TTFT within 10 ms; 4 streams aggregate
>= 1.0 x llama-server -np 4; second-turn TTFT far below the first; slots add only KV cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from engines.model_files import resolve_path, spec_for
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent

PROMPT = "Run {i}. Write a long, detailed story about a lighthouse keeper and a storm."
FRESH = {"Connection": "close"}  # llama-server may drop a kept-alive connection after a stream
SYSTEM = ("You are a meticulous assistant for a lighthouse museum. " * 40).strip()  # ~400 tokens


class Side:
    """One server process: this app or llama-server."""

    def __init__(self, name: str, command: list[str], port: int, model: str):
        self.name, self.model, self.url = name, model, f"http://127.0.0.1:{port}"
        log = tempfile.NamedTemporaryFile("w", suffix=f"-{name}.log", delete=False)
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.log = log.name

    def wait_ready(self, client: httpx.Client) -> None:
        for _ in range(1200):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log}")
            try:
                if client.get(self.url + "/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready; see {self.log}")

    def pss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/smaps_rollup") as rollup:
            fields = dict(line.split(":", 1) for line in rollup.read().splitlines()[1:])
        return int(fields["Pss"].split()[0]) / 1024

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_app(model: str, slots: int, threads: int, flash_attn: str, *extra: str, name: str = "") -> Side:
    port = free_port()
    return Side(name or f"app fa={flash_attn}", [
        sys.executable, "app.py", "--model", model, "--port", str(port), "--no-ui", "--max-concurrent", str(slots),
        "--threads", str(threads), "--flash-attn", flash_attn, "--log-level", "warning", *extra], port, model)


def start_llama_server(binary: str, model: str, slots: int, threads: int, *extra: str,
                       name: str = "llama-server") -> Side:
    spec = spec_for(model)
    port = free_port()
    return Side(name,
                [binary, "-m", str(resolve_path(spec)), "--port", str(port), "-np", str(slots), "-t", str(threads),
                 "-tb", str(threads), "-c", str(spec.n_ctx * slots), "-b", str(spec.n_batch), "-ub", str(spec.n_batch),
                 "--no-webui", *extra], port, model)


def stream(client: httpx.Client, side: Side, messages: list[dict], max_tokens: int) -> tuple[float, list[float]]:
    """Streams one answer; returns (start time, arrival time of each content event).

    A lean reader: it shares the CPUs with the servers, so it timestamps raw byte blocks and counts
    content events without parsing JSON."""
    body = {"model": side.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
            "ignore_eos": True, "stream": True}
    stamps: list[float] = []
    started = time.perf_counter()
    with client.stream("POST", side.url + "/v1/chat/completions", json=body, headers=FRESH) as response:
        response.raise_for_status()
        for block in response.iter_raw():
            events = block.count(b'"delta":{"content":')
            if events:
                stamps.extend([time.perf_counter()] * events)
    return started, stamps


def one_stream(client: httpx.Client, side: Side, i: int, max_tokens: int) -> tuple[float, float]:
    started, stamps = stream(client, side, [{"role": "user", "content": PROMPT.format(i=i)}], max_tokens)
    return (stamps[0] - started) * 1000, (len(stamps) - 1) / (stamps[-1] - stamps[0])


def many_streams(side: Side, i: int, n: int, max_tokens: int) -> tuple[float, list[float], list[float]]:
    """n concurrent streams; (aggregate tokens/s, median gap ms per stream, p95 gap ms per stream)."""
    results: list[tuple[float, list[float]]] = [None] * n  # type: ignore[list-item]

    def worker(k: int) -> None:
        with httpx.Client(timeout=600) as client:
            results[k] = stream(client, side, [{"role": "user", "content": PROMPT.format(i=f"{i}.{k}")}],
                                max_tokens)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = max(stamps[-1] for _, stamps in results)
    tokens = sum(len(stamps) for _, stamps in results)
    gaps = [[(b - a) * 1000 for a, b in zip(stamps, stamps[1:], strict=False)] for _, stamps in results]
    return (tokens / (ended - began), [statistics.median(g) for g in gaps],
            [statistics.quantiles(g, n=20)[-1] for g in gaps])


def conversation(client: httpx.Client, side: Side, i: int) -> tuple[float, float]:
    """TTFT of a first turn and of the second turn of the same conversation."""
    messages = [{"role": "system", "content": f"Session {i}. {SYSTEM}"},  # a new prefix: the first turn is cold
                {"role": "user", "content": "Who built it?"}]
    started, stamps = stream(client, side, messages, 32)
    first = (stamps[0] - started) * 1000
    answer = client.post(side.url + "/v1/chat/completions", json={
        "model": side.model, "messages": messages, "max_tokens": 32, "temperature": 0}, headers=FRESH).json()
    messages += [{"role": "assistant", "content": answer["choices"][0]["message"]["content"]},
                 {"role": "user", "content": "And when?"}]
    started, stamps = stream(client, side, messages, 8)
    return first, (stamps[0] - started) * 1000


def median(values) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER"), help="path to a llama-server binary")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--streams", type=int, default=4)
    args = parser.parse_args()
    binary = args.llama_server if args.llama_server and Path(args.llama_server).is_file() else None
    if binary is None:
        print("llama-server not given or not found: measuring this app alone (--llama-server PATH to compare)")
    print(f"model {args.model}, threads {args.threads}, {args.runs} runs x {args.max_tokens} tokens, "
          f"{os.cpu_count()} CPUs; app with flash attention off and on (default), no speculation; "
          "llama-server with its defaults")

    def phase(slots: int, measure) -> dict[str, list]:
        sides = [start_app(args.model, slots, args.threads, fa, "--speculative", "off") for fa in ("off", "on")]
        if binary:
            sides.append(start_llama_server(binary, args.model, slots, args.threads))
        rows: dict[str, list] = {side.name: [] for side in sides}
        try:
            with httpx.Client(timeout=600) as client:
                for side in sides:
                    side.wait_ready(client)
                    measure(client, side, -1)  # warm-up
                for i in range(args.runs):
                    for side in sides:
                        rows[side.name].append(measure(client, side, i))
            print(f"  resident memory (PSS) with {slots} slot(s) after the runs: "
                  + ", ".join(f"{side.name} {side.pss_mb():.0f} MB" for side in sides))
        finally:
            for side in sides:
                side.stop()
        return rows

    def compare(rows: dict[str, list], label: str, key, unit: str, target: str, *, difference: bool = False) -> None:
        theirs = median(key(r) for r in rows["llama-server"]) if "llama-server" in rows else None
        for name, values in rows.items():
            value = median(key(r) for r in values)
            versus = ""
            if theirs is not None and name != "llama-server":
                versus = (f" -> {value - theirs:+.1f} {unit}" if difference else f" -> x{value / theirs:.3f}")
                versus += f" ({target})"
            print(f"  {label:20}{name:16}{value:8.1f} {unit}{versus}")

    print("1. one stream, one slot (median of runs)")
    rows = phase(1, lambda client, side, i: one_stream(client, side, i, args.max_tokens))
    compare(rows, "decode", lambda r: r[1], "tok/s", "target >= 1.0")
    compare(rows, "TTFT", lambda r: r[0], "ms", "target <= +10 ms", difference=True)

    print(f"2. {args.streams} concurrent streams, {args.streams} slots (median of runs)")
    rows = phase(args.streams, lambda client, side, i: many_streams(side, i, args.streams, args.max_tokens))
    compare(rows, "aggregate", lambda r: r[0], "tok/s", "target >= 1.0")
    compare(rows, "gap per stream", lambda r: median(r[1]), "ms", "median gap between tokens", difference=True)
    compare(rows, "gap p95", lambda r: median(r[2]), "ms", "95th percentile", difference=True)

    print("3. conversation: TTFT of the first turn (~430 prompt tokens) and of the second (median of runs)")
    rows = phase(1, conversation)
    compare(rows, "first turn", lambda r: r[0], "ms", "cold")
    compare(rows, "second turn", lambda r: r[1], "ms", "prefix reused")


if __name__ == "__main__":
    main()
