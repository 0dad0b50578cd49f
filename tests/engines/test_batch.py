"""Continuous batching with the real embedded model.

The lean loop gives llama-cpp-python's own high-level output at temperature 0; streams decoded
together in one context get the text they get alone; stop strings, grammars, cancellation and
late joiners work inside a batch; a conversation's next turn reuses the cached prefix.

The batch tests run with flash attention on: without it llama.cpp's attention arithmetic depends on
the batch's shape, and greedy text can change when two candidates are nearly tied (6 of 32 streams
of 200 tokens, from token 0 to 68; with flash attention 0 of 32 — benchmarks/batch_divergence.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json

import jsonschema
import llama_cpp
import pytest

from engines.catalog import find
from engines.contract import Completion, GenerationRequest, collect
from engines.local import LocalEngine
from engines.model_files import resolve_path

PROMPTS = ["Name three colours.", "Write a haiku about rain.", "What is the capital of France?",
           "Describe a cat in one sentence."]


def start(flash_attn: bool) -> LocalEngine:
    spec = dataclasses.replace(find("smollm2-135m-instruct"), max_concurrent=4, n_threads=2)
    return LocalEngine(spec, resolve_path(spec), max_queue=8, queue_timeout=60, flash_attn=flash_attn)


@pytest.fixture(scope="module")
def engine():
    engine = start(flash_attn=True)
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture(scope="module")
def default_engine():
    engine = start(flash_attn=False)
    yield engine
    asyncio.run(engine.aclose())


def chat(prompt: str, **options) -> GenerationRequest:
    options.setdefault("max_tokens", 48)
    return GenerationRequest(messages=[{"role": "user", "content": prompt}], temperature=0, **options)


async def answer(engine: LocalEngine, prompt: str, **options) -> Completion:
    return await collect(engine.stream(chat(prompt, **options)))


@pytest.mark.parametrize("flash_attn", [False, True], ids=["default", "flash-attn"])
def test_temperature_zero_equals_llama_cpp_pythons_high_level_path(request, flash_attn):
    engine = request.getfixturevalue("engine" if flash_attn else "default_engine")
    reference = llama_cpp.Llama(model_path=str(engine.path), n_ctx=engine.n_ctx, n_threads=2,
                                n_batch=engine.spec.n_batch, flash_attn=flash_attn, verbose=False)
    try:
        for prompt in PROMPTS[:3]:
            expected = reference.create_chat_completion([{"role": "user", "content": prompt}], temperature=0,
                                                        max_tokens=48)
            got = asyncio.run(answer(engine, prompt))
            assert got.text == expected["choices"][0]["message"]["content"]
            assert got.usage.prompt_tokens == expected["usage"]["prompt_tokens"]
            assert got.usage.completion_tokens == expected["usage"]["completion_tokens"]
            assert got.finish_reason == expected["choices"][0]["finish_reason"]
    finally:
        reference.close()


def test_streams_decoded_together_get_the_text_they_get_alone(engine):
    solo = [asyncio.run(answer(engine, prompt, max_tokens=64)) for prompt in PROMPTS]
    steps_before = engine.batch.steps

    async def together():
        return await asyncio.gather(*(answer(engine, prompt, max_tokens=64) for prompt in PROMPTS))

    batched = asyncio.run(together())
    steps = engine.batch.steps - steps_before
    tokens = sum(c.usage.completion_tokens for c in batched)
    assert steps < tokens / 2  # several sequences per decode step: they really were batched
    for alone, with_others in zip(solo, batched, strict=True):
        assert with_others.text == alone.text
        assert with_others.usage.completion_tokens == alone.usage.completion_tokens


def _spanning_stop(engine: LocalEngine, text: str) -> str:
    """A stop string made of the end of one token of `text` and the start of the next."""
    tokens = engine.count_tokens(text)
    pieces = [engine._pieces[t].decode() for t in tokens]  # noqa: SLF001
    k = next(k for k in range(3, len(pieces) - 1) if len(pieces[k].strip()) >= 2 and len(pieces[k + 1]) >= 2)
    return pieces[k][-2:] + pieces[k + 1][:2]


def test_stops_grammars_cancellation_and_late_joiners_inside_one_batch(engine):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                               "age": {"type": "integer"}}, "required": ["name", "age"]}
    haiku = asyncio.run(answer(engine, PROMPTS[1], max_tokens=64)).text
    stop = _spanning_stop(engine, haiku)
    capital_alone = asyncio.run(answer(engine, PROMPTS[2])).text

    async def main():
        long = engine.stream(chat("Tell a very long story.", max_tokens=1500, ignore_eos=True))
        received = 0
        async for _ in long:  # the long one is generating before the others join
            received += 1
            if received == 5:
                break
        stopped, shaped = await asyncio.gather(
            answer(engine, PROMPTS[1], max_tokens=64, stop=(stop,)),
            answer(engine, "Describe a person as JSON.", max_tokens=80, json_schema=schema),
        )
        joined_late = asyncio.create_task(answer(engine, PROMPTS[2]))
        await asyncio.sleep(0.2)
        await long.aclose()  # cancelled while the late joiner is still generating
        while engine.slots.active > 1 and not joined_late.done():
            await asyncio.sleep(0.005)
        long_left_while_busy = not joined_late.done()
        return stopped, shaped, await joined_late, long_left_while_busy

    stopped, shaped, joined_late, long_left_while_busy = asyncio.run(main())
    assert stopped.finish_reason == "stop" and stopped.text == haiku[: haiku.index(stop)]
    assert shaped.finish_reason == "stop"
    jsonschema.validate(json.loads(shaped.text), schema)
    assert joined_late.text == capital_alone
    assert long_left_while_busy
    assert engine.slots.active == 0


def test_the_next_turn_of_a_conversation_reuses_the_cached_prefix(engine):
    async def main():
        first_messages = [{"role": "system", "content": "You answer in one short sentence. " * 20},
                          {"role": "user", "content": "What is a lighthouse?"}]
        first = await collect(engine.stream(GenerationRequest(messages=first_messages, temperature=0, max_tokens=24)))
        again = await collect(engine.stream(GenerationRequest(messages=first_messages, temperature=0, max_tokens=24)))
        second_messages = first_messages + [{"role": "assistant", "content": first.text},
                                            {"role": "user", "content": "Who keeps it?"}]
        second = await collect(engine.stream(GenerationRequest(messages=second_messages, temperature=0,
                                                               max_tokens=16)))
        return first, again, second

    first, again, second = asyncio.run(main())
    # No text comparison: logits of a token decoded alone and inside a long prompt batch can differ in
    # the last bits (as in llama-server), so a repeated request may take another path where tokens tie.
    assert again.usage.cached_tokens == first.usage.prompt_tokens - 1  # the last token is decoded for its logits
    assert second.usage.cached_tokens >= first.usage.prompt_tokens
    assert second.usage.prompt_tokens > second.usage.cached_tokens


def test_memory_is_reported(default_engine):
    memory = default_engine.details()["memory_mb"]
    assert memory["weights"] > 50  # SmolLM2-135M Q4_1 is ~90 MB of weights
    assert memory["context"] > 0
    assert default_engine.details()["max_concurrent"] == 4
