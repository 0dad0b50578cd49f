"""A small fleet on loopback: two instances configured in a fleet file, a hub in front of them,
and one scripted upstream for the fault no real instance produces on demand (a hang mid-answer)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.conftest import CHAT_MODEL, Server, free_port, start_server, stop_server, wait_for

TOKEN = "fleet-secret"
INSTANCE_ARGS = ("--model", CHAT_MODEL, "--no-ui", "--threads", "1", "--max-concurrent", "2")


def instances(hub: Server, model: str = CHAT_MODEL) -> dict[str, dict]:
    models = httpx.get(hub.url + "/health/details", timeout=5).json()["models"]
    return {i["name"]: i for i in models[model]["instances"]} if model in models else {}


def _hanging_app() -> Starlette:
    """Sends one token, then nothing: the idle timeout must end the stream."""

    async def chat(request):
        async def events():
            delta = {"role": "assistant", "content": "Once"}
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "hangs",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            await asyncio.sleep(3600)

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@dataclass
class Fleet:
    hub: Server
    a: Server
    b: Server
    victim_port: int  # the only instance of the alias "victim", started and killed by the tests
    tmp_path: object


@pytest.fixture(scope="module")
def hanging_upstream() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_hanging_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, timeout=10)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, hanging_upstream) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("fleet")
    a = start_server(tmp, *INSTANCE_ARGS, "--instance-id", "a")
    b = start_server(tmp, *INSTANCE_ARGS, "--instance-id", "b")
    victim_port = free_port()
    (tmp / "fleet.yaml").write_text(f"""
models:
  {CHAT_MODEL}:
    instances:
      - {{url: {a.v1}, name: a}}
      - {{url: {b.v1}, name: b}}
  victim:
    instances:
      - {{url: "http://127.0.0.1:{victim_port}/v1", name: victim, model: {CHAT_MODEL}}}
  hangs:
    instances:
      - {{url: "{hanging_upstream}", name: hangs, probe: none, idle_timeout: 1}}
""")
    hub = start_server(tmp, "--fleet", str(tmp / "fleet.yaml"), "--hub-token", TOKEN, "--probe-interval", "0.5",
                       "--heartbeat-timeout", "2", "--instance-id", "hub")
    assert wait_for(lambda: all(i["state"] == "healthy" for i in instances(hub).values()))
    yield Fleet(hub, a, b, victim_port, tmp)
    for server in (hub, a, b):
        stop_server(server)
