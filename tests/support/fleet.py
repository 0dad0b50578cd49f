"""A fleet on loopback: what a hub says about its instances, and the one scripted upstream, for the
fault no real instance produces on demand (a hang mid-answer)."""

from __future__ import annotations

import asyncio
import json

import httpx
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.support.servers import CHAT_MODEL, Server

TOKEN = "fleet-secret"
INSTANCE_ARGS = ("--model", CHAT_MODEL, "--no-ui", "--threads", "1", "--max-concurrent", "2")


def instances(hub: Server, model: str = CHAT_MODEL) -> dict[str, dict]:
    models = httpx.get(hub.url + "/health/details", timeout=5).json()["models"]
    return {i["name"]: i for i in models[model]["instances"]} if model in models else {}


def hanging_app() -> Starlette:
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
