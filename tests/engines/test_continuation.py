"""An answer begun elsewhere (`GenerationRequest.prefix`, how a hub resumes a stream) continues on the
real model exactly as the uninterrupted answer went on — greedy, seeded, and schema-constrained when
its token ids come along — and is counted as the same answer. Exactly, because both read the prompt
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


def continued(engine, request: GenerationRequest, whole: list[Chunk], cut: int, *, with_ids: bool) -> str:
    """The answer when the first `cut` chunks came from elsewhere (with their token ids, or as text)."""
    prefix = "".join(c.text for c in whole[:cut])
    ids = tuple(t for c in whole[:cut] for t in c.tokens) if with_ids else ()
    rest = chunks(engine, dataclasses.replace(request, prefix=prefix, prefix_tokens=ids))
    assert rest[-1].finish_reason == whole[-1].finish_reason
    assert rest[-1].usage.prompt_tokens == whole[-1].usage.prompt_tokens  # the prompt, without the prefix
    if with_ids:
        assert rest[-1].usage.completion_tokens == whole[-1].usage.completion_tokens  # the prefix counts
    return prefix + "".join(c.text for c in rest)


@pytest.mark.parametrize("request_", [
    GenerationRequest(messages=STORY, max_tokens=40, temperature=0),
    GenerationRequest(messages=STORY, max_tokens=40, temperature=0.9, seed=7),
], ids=["greedy", "seeded"])
def test_a_continued_answer_is_the_uninterrupted_one(engine, request_):
    whole = chunks(engine, request_)
    text = "".join(c.text for c in whole)
    assert sum(len(c.tokens) for c in whole) == whole[-1].usage.completion_tokens  # every id, once
    for cut in (2, len(whole) // 2):
        for with_ids in (True, False):  # prose reads back as the tokens it was generated as
            assert continued(engine, request_, whole, cut, with_ids=with_ids) == text, (cut, with_ids)


def test_a_schema_answer_continues_token_for_token_and_stays_valid_from_text_alone(engine):
    """Constrained output often uses tokens a plain reading of its text would merge ('{' '"' where the
    text reads as '{"'): with the ids it continues identically; from the text alone, within the schema."""
    request = GenerationRequest(messages=[{"role": "user", "content": "A person as JSON"}], max_tokens=60,
                                temperature=0.9, seed=3, json_schema=PERSON)
    whole = chunks(engine, request)
    text = "".join(c.text for c in whole)
    for cut in (2, len(whole) // 2):
        assert continued(engine, request, whole, cut, with_ids=True) == text
        person = json.loads(continued(engine, request, whole, cut, with_ids=False))
        assert isinstance(person["name"], str) and isinstance(person["age"], int)


def test_ids_that_do_not_spell_the_prefix_are_used_as_far_as_they_do(engine):
    whole = chunks(engine, GenerationRequest(messages=STORY, max_tokens=12, temperature=0))
    ids = [t for c in whole for t in c.tokens]
    prefix = "".join(c.text for c in whole)
    plan = engine.plan(GenerationRequest(messages=STORY, max_tokens=12, prefix=prefix,
                                         prefix_tokens=(*ids[:3], 10**9, *ids[4:])))  # one id out of range
    assert plan.prompt_tokens[plan.answer_starts:][:3] == ids[:3]
    assert engine.count_tokens(prefix)[-1] == plan.prompt_tokens[-1]  # the rest read from the text


def test_a_prefix_that_fills_max_tokens_ends_at_once_and_one_the_schema_forbids_is_refused(engine):
    whole = chunks(engine, GenerationRequest(messages=STORY, max_tokens=8, temperature=0, ignore_eos=True))
    done = chunks(engine, GenerationRequest(messages=STORY, max_tokens=8, temperature=0,
                                            prefix="".join(c.text for c in whole)))
    assert [c.text for c in done] == [""] and done[0].finish_reason == "length"
    assert done[0].usage.completion_tokens == 8
    with pytest.raises(InvalidRequest, match="does not match the response format"):
        chunks(engine, GenerationRequest(messages=STORY, max_tokens=8, json_schema=PERSON, prefix="Once upon"))
