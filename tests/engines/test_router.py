"""model="auto": categories from tools, a classifier model or keywords, and the best ready model for
each, with the next best taking over when the best is down."""

from __future__ import annotations

import asyncio

from engines.catalog import find
from engines.contract import GenerationRequest, Tool
from engines.errors import Unavailable
from engines.registry import ModelRegistry
from engines.router import Router, keyword_category
from tests.support.scripted import ScriptedEngine, answer

ASK = [{"role": "user", "content": "Write a Python function that adds two numbers."}]


def fleet(classifier_says: str | None = '{"category": "coding"}') -> tuple[ModelRegistry, dict[str, ScriptedEngine]]:
    """The embedded model (rank 0, too small to classify), Qwen3 4B (good at everything; the
    classifier) and FunctionGemma (function calling only), as scripted engines."""
    registry, engines = ModelRegistry(), {}
    for model_id in ("smollm2-135m-instruct", "qwen3-4b", "functiongemma-270m-it"):
        says = classifier_says if model_id == "qwen3-4b" else "hi"
        engines[model_id] = ScriptedEngine(answer(says) if says else (), model_id=model_id,
                                           fault=None if says else Unavailable("classifier down"))
        registry.add(find(model_id), engines[model_id])
    return registry, engines


def test_keywords_tell_the_categories_apart():
    assert keyword_category("Fix this SQL query") == "coding"
    assert keyword_category("What is 17 * 23?") == "reasoning"
    assert keyword_category("Book a table for two tonight") == "function_calling"
    assert keyword_category("Why is the sky blue?") == "general"


def test_the_classifier_model_decides_and_the_best_model_for_it_answers():
    registry, engines = fleet()
    route = asyncio.run(Router(registry).route(GenerationRequest(messages=ASK)))
    assert (route.model, route.category, route.method) == ("qwen3-4b", "coding", "model")
    classify = engines["qwen3-4b"].requests[0]
    assert classify.json_schema["properties"]["category"]["enum"][0] == "coding" and classify.temperature == 0
    assert ASK[0]["content"] in classify.messages[0]["content"]


def test_tools_mean_function_calling_and_the_specialist_is_ranked_by_the_catalog():
    registry, engines = fleet()
    request = GenerationRequest(messages=ASK, tools=(Tool("add"),))
    route = asyncio.run(Router(registry).route(request))
    assert route.category == "function_calling" and route.method == "tools"
    assert Router(registry).ranked("function_calling") == ["qwen3-4b", "functiongemma-270m-it",
                                                           "smollm2-135m-instruct"]
    assert not engines["qwen3-4b"].requests  # no classification needed


def test_keywords_decide_when_the_classifier_fails_and_a_down_model_is_passed_over():
    registry, _ = fleet(classifier_says=None)
    route = asyncio.run(Router(registry).route(GenerationRequest(messages=ASK)))
    assert route.method == "keywords" and route.category == "coding" and route.model == "qwen3-4b"
    registry.entry("qwen3-4b").instances["local"].state = "failed"  # the best coder (and classifier) is down
    route = asyncio.run(Router(registry).route(GenerationRequest(messages=ASK)))
    assert route.method == "keywords" and route.model == "smollm2-135m-instruct"  # next best by rank


def test_a_small_model_is_not_asked_to_classify():
    registry, engines = fleet()
    registry.entry("qwen3-4b").instances["local"].state = "failed"
    assert Router(registry).classifier() is None  # SmolLM2 (0.09 GB) and FunctionGemma (0.3 GB) are too small
    asyncio.run(Router(registry).route(GenerationRequest(messages=ASK)))
    assert not engines["smollm2-135m-instruct"].requests
