"""Personas as members (the default panel on the one embedded model) and follow-up questions that
continue a conversation, through the real engine and the registry's lookup."""

from __future__ import annotations

import asyncio

import pytest

from api.modes import conversation_of
from api.schemas import ChatCompletionRequest
from engines.catalog import find
from engines.contract import GenerationRequest, collect
from engines.errors import InvalidRequest, UnknownModel
from engines.personas import DEFAULT_PANEL, Persona, PersonaEngine, slug
from engines.registry import ModelRegistry
from fleet.node import add_personas
from modes import MODES, run_mode
from modes.adapter import resolve_options
from modes.events import ModeOptions
from tests.support.scripted import ScriptedEngine, answer
from tests.support.servers import BASE_MODEL, CHAT_MODEL


@pytest.fixture
def registry(engines) -> ModelRegistry:
    registry = ModelRegistry()
    registry.add(find(CHAT_MODEL), engines[CHAT_MODEL])
    registry.add(find(BASE_MODEL), engines[BASE_MODEL])  # a base model: not a chat member
    add_personas(registry, [])
    return registry


def test_a_persona_speaks_through_its_model_with_its_prompt_and_settings():
    model = ScriptedEngine(answer("ok"), model_id="m")
    lawyer = Persona(id="lawyer", name="The Lawyer", model="m", system="You are a lawyer.", temperature=0.2)
    engine = PersonaEngine(lawyer, lambda model_id: {"m": model}[model_id])
    request = GenerationRequest(messages=[{"role": "system", "content": "Answer in French."},
                                          {"role": "user", "content": "Hi"}], temperature=1.5)
    assert asyncio.run(collect(engine.stream(request))).text == "ok"
    sent = model.requests[0]
    assert sent.messages == [{"role": "system", "content": "You are a lawyer.\n\nAnswer in French."},
                             {"role": "user", "content": "Hi"}]
    assert sent.temperature == 0.2 and sent.top_p == request.top_p  # what the persona sets wins; the rest stays


def test_one_chat_model_gives_a_panel_of_personas_as_the_default_members(registry):
    assert list(registry.personas) == [p.id for p in DEFAULT_PANEL] and len(DEFAULT_PANEL) >= 3
    assert all(p.model == CHAT_MODEL for p in registry.personas.values())  # the first hosted chat model
    assert registry.default_members == list(registry.personas)
    assert resolve_options("council", {}, registry).members == list(registry.personas)
    assert registry.member_ids == [CHAT_MODEL, *registry.personas]
    with pytest.raises(InvalidRequest, match="already a model or mode"):
        registry.add_persona(Persona(id="council", name="C", system="s"), reserved=frozenset(MODES))
    with pytest.raises(UnknownModel, match="not hosted"):
        registry.add_persona(Persona(id="x", name="X", model="nope", system="s"))
    with pytest.raises(UnknownModel, match="skeptic"):  # the error lists personas too
        registry.require("nobody")
    assert slug("Devil's Advocate!") == "devils-advocate"


def test_a_council_of_personas_on_one_small_model_runs_to_a_final_answer(registry):
    options = resolve_options("council", {"max_tokens": 48, "temperature": 0.7}, registry)

    async def main():
        return [e async for e in run_mode("council", "Should a small team write tests first?", options,
                                          registry.get)]

    events = asyncio.run(main())
    answered = {e.member for e in events if e.type == "member_done" and e.stage == "answers"}
    assert answered == set(registry.personas)  # four different members, one model
    final = next(e for e in events if e.type == "final")
    assert final.text.strip() and final.member == options.lead_member


def test_a_follow_up_question_carries_the_conversation_to_every_turn():
    seen = ScriptedEngine(answer("Paris has 2.1 million people."), model_id="m")
    history = [{"role": "user", "content": "What is the capital of France?"},
               {"role": "assistant", "content": "Paris."}]
    options = ModeOptions(members=["m"], history=history)

    async def main():
        return [e async for e in run_mode("council", "How many people live there?", options, lambda _: seen)]

    asyncio.run(main())
    for request in seen.requests:  # the answer and the chairman's turn alike
        assert request.messages[:2] == history and request.messages[-1]["role"] == "user"
    assert seen.requests[0].messages[-1]["content"] == "How many people live there?"


def test_the_alias_takes_the_last_user_message_as_the_question_and_the_rest_as_history():
    body = ChatCompletionRequest.model_validate({"model": "council", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And of Spain?"}]})
    question, history = conversation_of(body)
    assert question == "And of Spain?"
    assert [m["role"] for m in history] == ["system", "user", "assistant"]
