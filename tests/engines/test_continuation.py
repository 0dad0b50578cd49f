"""An answer begun elsewhere (`GenerationRequest.prefix`, how a hub resumes a stream) continues on the
real model exactly as the uninterrupted answer went on — greedy and seeded — and is counted as the
same answer; a schema-constrained one stays within its schema. Exactly, because both read the prompt
whole: a prompt read after a cached prefix differs in the last digits of its arithmetic (so each test
starts a fresh engine)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from engines.catalog import find
from engines.contract import Chunk, GenerationRequest
from engines.errors import InvalidRequest
from engines.local import LocalEngine
from engines.model_files import resolve_path

STORY = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]
PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


@pytest.fixture
def engine():
    spec = dataclasses.replace(find("smollm2-135m-instruct"), max_concurrent=2, n_threads=2)
    return LocalEngine(spec, resolve_path(spec), max_queue=2, queue_timeout=30)


def chunks(engine, request: GenerationRequest) -> list[Chunk]:
    async def main():
        return [chunk async for chunk in engine.stream(request)]

    return asyncio.run(main())


@pytest.mark.parametrize("request_", [
    GenerationRequest(messages=STORY, max_tokens=40, temperature=0),
    GenerationRequest(messages=STORY, max_tokens=40, temperature=0.9, seed=7),
], ids=["greedy", "seeded"])
def test_a_continued_answer_is_the_uninterrupted_one(engine, request_):
    whole = chunks(engine, request_)
    text = "".join(c.text for c in whole)
    for cut in (2, len(whole) // 2):
        prefix = "".join(c.text for c in whole[:cut])
        rest = chunks(engine, dataclasses.replace(request_, prefix=prefix))
        assert prefix + "".join(c.text for c in rest) == text, f"cut after {cut} chunks"
        assert rest[-1].finish_reason == whole[-1].finish_reason
        assert rest[-1].usage.prompt_tokens == whole[-1].usage.prompt_tokens  # the prompt, without the prefix
        assert rest[-1].usage.completion_tokens == whole[-1].usage.completion_tokens  # the prefix counts


def test_a_schema_answer_continues_within_the_schema(engine):
    """Constrained output often uses tokens a plain reading of its text would merge ('{' '"' where the
    text reads as '{"'), so it continues from the text validly — the grammar follows it — not identically."""
    request = GenerationRequest(messages=[{"role": "user", "content": "A person as JSON"}], max_tokens=60,
                                temperature=0.9, seed=3, json_schema=PERSON)
    whole = chunks(engine, request)
    for cut in (2, len(whole) // 2):
        prefix = "".join(c.text for c in whole[:cut])
        rest = chunks(engine, dataclasses.replace(request, prefix=prefix))
        person = json.loads(prefix + "".join(c.text for c in rest))
        assert isinstance(person["name"], str) and isinstance(person["age"], int)


def test_a_prefix_that_fills_max_tokens_ends_at_once_and_one_the_schema_forbids_is_refused(engine):
    whole = chunks(engine, GenerationRequest(messages=STORY, max_tokens=8, temperature=0, ignore_eos=True))
    done = chunks(engine, GenerationRequest(messages=STORY, max_tokens=8, temperature=0,
                                            prefix="".join(c.text for c in whole)))
    assert [c.text for c in done] == [""] and done[0].finish_reason == "length"
    assert done[0].usage.completion_tokens == 8
    with pytest.raises(InvalidRequest, match="does not match the response format"):
        chunks(engine, GenerationRequest(messages=STORY, max_tokens=8, json_schema=PERSON, prefix="Once upon"))
