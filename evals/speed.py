"""Speed: time to first token, decode speed and tokens, over a few fixed prompts, as a caller sees them.

Measured on the caller's clock around `engine.stream` (the path the Chat tab and the API take), so
queueing, prompt processing and a remote model's network are in the figures, as they are for a user.
Every prompt generates exactly `max_tokens` (end-of-text ignored), so runs compare token for token.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

from engines.contract import Engine, GenerationRequest

PROMPTS = (
    "Write a short story about a lighthouse keeper.",
    "Explain how a rainbow forms.",
    "Give me five tips for a job interview.",
    "Describe the water cycle to a ten-year-old.",
    "List the planets of the solar system with one fact each.",
)


def request_for(text: str, *, chat: bool, **options: Any) -> GenerationRequest:
    """A chat request for a chat model; plain text to continue for a base model."""
    if chat:
        return GenerationRequest(messages=[{"role": "user", "content": text}], **options)
    return GenerationRequest(prompt=text, **options)


async def measure(engine: Engine, prompt: str, *, chat: bool, max_tokens: int) -> dict[str, float]:
    # A fresh tag in front of the prompt: a repeated prompt would find its tokens already in the KV
    # cache (engines/batch.py places requests by shared prefix) and show a TTFT no user gets.
    text = f"[{secrets.token_hex(3)}] {prompt}"
    started = time.perf_counter()
    first = last = None
    final = None
    async for chunk in engine.stream(request_for(text, chat=chat, max_tokens=max_tokens, ignore_eos=True,
                                                 temperature=0.0, seed=0)):
        if first is None and (chunk.text or chunk.tokens or chunk.reasoning):
            first = time.perf_counter()
        last = time.perf_counter()
        final = chunk
    if first is None or final is None or final.usage is None:
        raise RuntimeError("the model answered no tokens")
    tokens = final.usage.completion_tokens
    decode = last - first
    return {"ttft_ms": round((first - started) * 1000, 2),
            "tokens_per_second": round((tokens - 1) / decode, 2) if tokens > 1 and decode > 0 else 0.0,
            "tokens": tokens, "prompt_tokens": final.usage.prompt_tokens,
            "cached_tokens": final.usage.cached_tokens, "total_ms": round((last - started) * 1000, 2)}


async def run(engine: Engine, *, chat: bool, prompts: int, max_tokens: int,
              step: Callable[[str], None] = lambda _: None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(figures, samples) over the first `prompts` prompts, one after another (in parallel they would
    share the decode passes and measure each other)."""
    samples = []
    for index, prompt in enumerate(PROMPTS[:prompts]):
        step(f"speed {index + 1}/{prompts}")
        samples.append({"prompt": prompt, **await measure(engine, prompt, chat=chat, max_tokens=max_tokens)})
    decode_seconds = sum((s["total_ms"] - s["ttft_ms"]) / 1000 for s in samples)
    decoded = sum(max(s["tokens"] - 1, 0) for s in samples)
    figures = {
        "ttft_ms": round(statistics.median(s["ttft_ms"] for s in samples), 2),
        "tokens_per_second": round(decoded / decode_seconds, 2) if decode_seconds > 0 else 0.0,
        "tokens": sum(s["tokens"] for s in samples),
    }
    return figures, samples
