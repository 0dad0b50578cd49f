"""What a grammar costs per generated token: the same free-text answer with and without one.

    python -m benchmarks.grammar_speed [--runs 3] [--tokens 200]

One LocalEngine (SmolLM2, given Qwen 2.5's template so tools use the native Hermes format), one slot.
Alternating runs of a 200-token story (ignore_eos, seeded sampling) with a tool under `auto` (the
whole-answer grammar of engines/tool_formats.py, which lets prose through), and the same prompt text
(the template's tool instructions included) sent as a plain completion, with no grammar. Prints
decode tokens/s (after the first token) and the ratio. The sampler checks the grammar on its own
choice first (engines/generation.py), so a grammar that rarely refuses costs little; target >= 0.9x.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
from pathlib import Path

from engines.catalog import find
from engines.contract import GenerationRequest, Tool, collect
from engines.local import LocalEngine
from engines.model_files import resolve_path
from tests.support.servers import CHAT_MODEL

TEMPLATE = Path(__file__).parents[1] / "tests" / "data" / "templates" / "qwen2.5-instruct.jinja"
WEATHER = Tool("get_weather", "Current weather in a city",
               {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
STORY = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]


async def decode_rate(engine: LocalEngine, request: GenerationRequest) -> float:
    done = await collect(engine.stream(request))
    return done.timings.tokens_per_second


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    spec = dataclasses.replace(find(CHAT_MODEL), max_concurrent=1, n_threads=2)
    engine = LocalEngine(spec, resolve_path(spec), max_queue=1, queue_timeout=60, chat_template=TEMPLATE.read_text())
    with_tools = GenerationRequest(messages=STORY, tools=(WEATHER,), max_tokens=args.tokens, temperature=0.8,
                                   seed=1, ignore_eos=True)
    prompt, _ = engine.render_prompt(with_tools)
    kinds = {"free text": dataclasses.replace(with_tools, messages=None, tools=(), prompt=prompt),
             "tools, auto": with_tools}
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.runs):
        for kind, request in kinds.items():  # alternating: every kind sees the same machine state
            rates[kind].append(await decode_rate(engine, request))
    await engine.aclose()
    free = statistics.median(rates["free text"])
    print(f"{CHAT_MODEL}, 2 threads, {os.cpu_count()} CPUs, {args.runs} runs of {args.tokens} tokens (medians)")
    for kind, values in rates.items():
        median = statistics.median(values)
        print(f"{kind:14} {median:7.1f} tok/s  {median / free:5.2f}x free text")


if __name__ == "__main__":
    asyncio.run(main())
