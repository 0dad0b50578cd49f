"""Faults a real model cannot produce on demand, injected through the engine contract: a crash
after the first token, and a model that is still loading. The app is the real FastAPI core."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from api import create_api
from engines.catalog import find
from engines.contract import Chunk
from engines.errors import Unavailable
from engines.registry import ModelRegistry
from fleet.hub import Hub
from fleet.node import Node
from settings import Settings
from tests.support.scripted import ScriptedEngine

SPEC = find("smollm2-135m-instruct")
HELLO = {"model": SPEC.id, "messages": [{"role": "user", "content": "hi"}]}


def CrashesMidStream() -> ScriptedEngine:
    return ScriptedEngine([Chunk(text="Hello")], model_id=SPEC.id, fault=Unavailable("the model process died"))


def app_with(registry: ModelRegistry):
    settings = Settings(models=[SPEC.id])
    return create_api(settings, Node("test", registry, Hub(registry), settings))


async def call(app, method, path, **kwargs):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)


def test_failure_after_first_token_is_an_sse_error_then_done():
    registry = ModelRegistry()
    registry.add(SPEC, CrashesMidStream())
    response = asyncio.run(call(app_with(registry), "POST", "/v1/chat/completions", json={**HELLO, "stream": True}))
    assert response.status_code == 200
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert "model process died" in error["message"] and error["code"] == "unavailable"
    texts = [json.loads(e)["choices"][0]["delta"].get("content") for e in events[:-2]]
    assert "Hello" in texts


def test_failure_without_streaming_is_a_503():
    registry = ModelRegistry()
    registry.add(SPEC, CrashesMidStream())
    response = asyncio.run(call(app_with(registry), "POST", "/v1/chat/completions", json=HELLO))
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"


def test_health_is_503_while_loading_then_200():
    registry = ModelRegistry()
    registry.add(SPEC)
    app = app_with(registry)
    release = threading.Event()

    async def main():
        loading = asyncio.create_task(registry.load(SPEC, lambda: release.wait(10) and CrashesMidStream()))
        await asyncio.sleep(0.05)
        during = await call(app, "GET", "/health")
        busy = await call(app, "POST", "/v1/chat/completions", json=HELLO)
        release.set()
        await loading
        return during, busy, await call(app, "GET", "/health")

    during, busy, after = asyncio.run(main())
    assert during.status_code == 503 and during.json()["status"] == "loading"
    assert busy.status_code == 503 and "still loading" in busy.json()["error"]["message"]
    assert after.status_code == 200


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v1/models/unknown"])
def test_unknown_routes_and_models_are_openai_shaped_404(path):
    registry = ModelRegistry()
    registry.add(SPEC, CrashesMidStream())
    response = asyncio.run(call(app_with(registry), "GET", path))
    assert response.status_code == 404 and set(response.json()["error"]) == {"message", "type", "param", "code"}
