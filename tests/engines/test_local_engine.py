"""LocalEngine with the real embedded model: reasoning separation, cancellation, UTF-8."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from engines.catalog import find
from engines.contract import Chunk, GenerationRequest, collect
from engines.local import LocalEngine
from engines.model_files import resolve_path


@pytest.fixture(scope="module")
def engine():
    spec = dataclasses.replace(find("smollm2-135m-instruct"), thinking=True, max_concurrent=1, n_threads=2)
    return LocalEngine(spec, resolve_path(spec), max_queue=2, queue_timeout=30)


def run_with_grammar(engine, request: GenerationRequest, gbnf: str) -> list[Chunk]:
    """Runs the real token loop with a grammar the API does not offer, to steer the real model."""
    plan = dataclasses.replace(engine.plan(request), grammar=gbnf)

    async def main():
        return [chunk async for chunk in engine.generate(plan)]

    return asyncio.run(main())


def test_reasoning_is_separated_from_the_answer(engine):
    # The grammar makes the model write a <think> block, as thinking models do.
    request = GenerationRequest(messages=[{"role": "user", "content": "Think, then answer: what is red?"}],
                                max_tokens=120, temperature=0.7, seed=3)
    chunks = run_with_grammar(engine, request,
                              'root ::= "<think>" [a-z ]{5,40} "</think>" "\\n\\n" [A-Za-z ]{3,30} "."')
    answer = "".join(c.text for c in chunks)
    reasoning = "".join(c.reasoning for c in chunks)
    assert reasoning.strip() and "<think>" not in reasoning and "</think>" not in reasoning
    assert answer.endswith(".") and "<" not in answer and not answer.startswith("\n")
    assert chunks[-1].finish_reason == "stop"


def test_closing_the_stream_cancels_within_a_few_tokens(engine):
    """Measured in this run's own token time, so a busy machine slows both sides alike."""
    async def main():
        request = GenerationRequest(messages=[{"role": "user", "content": "Tell a long story."}],
                                    max_tokens=1500, ignore_eos=True)
        stream = engine.stream(request)
        stamps = []
        async for _ in stream:
            stamps.append(time.perf_counter())
            if len(stamps) == 21:
                break
        await stream.aclose()
        closed = time.perf_counter()
        while engine.slots.active:
            await asyncio.sleep(0.005)
        token_time = (stamps[-1] - stamps[0]) / 20
        again = await collect(engine.stream(GenerationRequest(prompt="Hi", max_tokens=2)))
        return (time.perf_counter() - closed) / token_time, again

    tokens_until_freed, again = asyncio.run(main())
    assert tokens_until_freed < 50  # the other ~1480 tokens of the story were never generated
    assert again.usage.completion_tokens == 2


def test_multibyte_characters_survive_token_splits(engine):
    request = GenerationRequest(messages=[{"role": "user", "content": "Say: café 東京 🙂"}], max_tokens=40)
    chunks = run_with_grammar(engine, request, 'root ::= "café 東京 🙂"')
    assert "".join(c.text for c in chunks) == "café 東京 🙂"
    assert chunks[-1].usage.completion_tokens > 4  # several tokens, some of them partial characters
