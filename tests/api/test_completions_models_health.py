"""/v1/completions on the base model, /v1/models, /health and /health/details."""

from __future__ import annotations

import httpx
from openai import OpenAI

from engines.personas import DEFAULT_PANEL
from tests.support.servers import BASE_MODEL, CHAT_MODEL


def test_plain_completion_on_the_base_model(server):
    client = OpenAI(base_url=server.v1, api_key="x", max_retries=0)
    reply = client.completions.create(model=BASE_MODEL, prompt="The capital of France is", max_tokens=8,
                                      temperature=0)
    assert reply.object == "text_completion"
    assert reply.choices[0].text.strip()
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens <= 8 and reply.usage.prompt_tokens > 3
    streamed = client.completions.create(model=BASE_MODEL, prompt="The capital of France is", max_tokens=8,
                                         temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == reply.choices[0].text


def test_completion_default_max_tokens_is_16_like_openai(server):
    client = OpenAI(base_url=server.v1, api_key="x", max_retries=0)
    reply = client.completions.create(model=BASE_MODEL, prompt="Once upon a time", temperature=0)
    assert reply.usage.completion_tokens <= 16


def test_models_list_and_get(server):
    client = OpenAI(base_url=server.v1, api_key="x", max_retries=0)
    ids = [m.id for m in client.models.list()]
    personas = [p.id for p in DEFAULT_PANEL]  # one chat model: the default panel speaks through it
    assert ids == [CHAT_MODEL, BASE_MODEL, *personas, "auto", "compare", "council", "roundtable", "debate", "analyze",
                   "mixture", "agent"]
    model = client.models.retrieve(CHAT_MODEL)
    assert model.id == CHAT_MODEL and model.object == "model"
    skeptic = client.models.retrieve("skeptic")
    assert skeptic.owned_by == "persona" and skeptic.model_extra["persona"]["model"] == CHAT_MODEL
    reply = client.chat.completions.create(model="skeptic", messages=[{"role": "user", "content": "Is it safe?"}],
                                           max_tokens=12)
    assert reply.model == "skeptic" and reply.choices[0].message.content


def test_auto_routes_to_the_best_ready_model_and_says_so(server):
    client = OpenAI(base_url=server.v1, api_key="x", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Write a Python function that adds two numbers."}],
        max_tokens=16)
    reply = raw.parse()
    assert raw.headers["x-routed-model"] == reply.model == CHAT_MODEL  # the one ready chat model here
    assert raw.headers["x-route-category"] in ("coding", "reasoning", "function_calling", "general")
    with client.chat.completions.with_streaming_response.create(
            model="auto", messages=[{"role": "user", "content": "Hi"}], max_tokens=8, stream=True,
            tools=[{"type": "function", "function": {"name": "wave", "parameters": {"type": "object"}}}]) as streamed:
        assert streamed.headers["x-route-category"] == "function_calling"  # tools offered: no classification
        assert any(chunk.model == CHAT_MODEL for chunk in streamed.parse())


def test_health_and_details(server):
    health = httpx.get(server.url + "/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    details = httpx.get(server.url + "/health/details").json()
    assert details["instance_id"] and details["version"] and details["uptime_seconds"] >= 0
    model = details["models"][CHAT_MODEL]
    for field in ("loaded", "n_ctx", "n_threads", "n_batch", "max_concurrent", "active", "queued"):
        assert field in model, field
    assert model["loaded"] is True and model["max_concurrent"] == 2 and model["n_ctx"] == 2048
