"""Does batching change the text? Each prompt alone vs the same prompts decoded together, temperature 0.

llama.cpp computes a batch of several sequences with other matrix shapes than one token at a time,
so logits can differ in the last bits; when two candidate tokens are nearly tied, greedy decoding
can then take another path. This measures how often and how late that happens:

    python -m benchmarks.batch_divergence [--prompts 16] [--streams 4] [--max-tokens 128] [--flash-attn]

Every prompt runs alone, then in groups of --streams concurrent requests; prints, per group size,
how many streams differ from their solo text and at which generated token they first differ.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
from pathlib import Path

from engines.contract import GenerationRequest, collect
from engines.local import LocalEngine
from engines.model_files import resolve_path, spec_for

ROOT = Path(__file__).resolve().parent.parent

SUBJECTS = ["a lighthouse", "rain", "a cat", "the moon", "bread", "a river", "chess", "a violin", "snow",
            "a market", "bees", "a train", "the desert", "a library", "coffee", "a volcano"]


def first_difference(a: str, b: str) -> int | None:
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--flash-attn", action="store_true")
    args = parser.parse_args()
    spec = dataclasses.replace(spec_for(args.model), max_concurrent=args.streams, n_threads=os.cpu_count() or 2)
    engine = LocalEngine(spec, resolve_path(spec), max_queue=args.prompts, queue_timeout=600,
                         flash_attn=args.flash_attn)
    requests = [GenerationRequest(messages=[{"role": "user", "content": f"Write about {SUBJECTS[i % len(SUBJECTS)]}"
                                             f" ({i})."}], temperature=0, max_tokens=args.max_tokens,
                                  ignore_eos=True) for i in range(args.prompts)]
    solo = [(await collect(engine.stream(r))).text for r in requests]
    batched: list[str] = []
    for start in range(0, len(requests), args.streams):
        group = requests[start:start + args.streams]
        batched += [c.text for c in await asyncio.gather(*(collect(engine.stream(r)) for r in group))]
    late = []
    for alone, together in zip(solo, batched, strict=True):
        at = first_difference(alone, together)
        if at is not None:
            late.append(len(engine.count_tokens(alone[:at])))
    await engine.aclose()
    print(f"model {args.model}, flash attention {'on' if args.flash_attn else 'off'}, {args.prompts} prompts x "
          f"{args.max_tokens} tokens, groups of {args.streams}")
    print(f"streams whose batched text differs from their solo text: {len(late)} of {args.prompts}")
    if late:
        print(f"first differing token (of {args.max_tokens}): {sorted(late)}")


if __name__ == "__main__":
    asyncio.run(main())
