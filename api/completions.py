"""POST /v1/chat/completions and POST /v1/completions, streaming and not.

Errors before the first token are HTTP errors with a status; once a stream has started, a failure is
sent as a final SSE error event followed by [DONE].
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api import logprobs, sse
from api.deps import RegistryDep
from api.errors import engine_error_status, error_body
from api.modes import mode_completion
from api.schemas import ChatCompletionRequest, CompletionRequest
from engines.contract import Chunk, Completion, collect
from engines.errors import EngineError
from engines.registry import ModelRegistry
from engines.router import AUTO, Router
from modes import MODES

log = logging.getLogger(__name__)
router = APIRouter()


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, registry: RegistryDep):
    if body.model in MODES and body.model not in registry.ids:
        return await mode_completion(request, body, registry)  # model="council" etc.
    return await _serve(request, registry, body, "chatcmpl", _ChatFormat)


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request, registry: RegistryDep):
    return await _serve(request, registry, body, "cmpl", _TextFormat)


class _ChatFormat:
    obj, chunk_obj = "chat.completion", "chat.completion.chunk"

    @staticmethod
    def choice(done: Completion, body: ChatCompletionRequest) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": done.text or None if done.tool_calls else done.text}
        if done.reasoning:
            message["reasoning_content"] = done.reasoning
        if done.tool_calls:
            message["tool_calls"] = [{"id": call.id, "type": "function",
                                      "function": {"name": call.name, "arguments": call.arguments}}
                                     for call in done.tool_calls]
        return {"index": 0, "message": message, "finish_reason": done.finish_reason,
                "logprobs": logprobs.chat(done.logprobs) if body.logprobs else None}

    @staticmethod
    def delta(chunk: Chunk | None, body: ChatCompletionRequest, sent: int = 0, first: bool = False) -> dict[str, Any]:
        delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
        if chunk is not None and chunk.text:
            delta["content"] = chunk.text
        if chunk is not None and chunk.reasoning:
            delta["reasoning_content"] = chunk.reasoning
        if chunk is not None and chunk.tool_calls:
            delta["tool_calls"] = [_call_delta(call) for call in chunk.tool_calls]
        return {"index": 0, "delta": delta, "finish_reason": chunk.finish_reason if chunk else None,
                "logprobs": logprobs.chat(chunk.logprobs) if body.logprobs and chunk else None}


def _call_delta(call) -> dict[str, Any]:
    """A call's first piece names it; later pieces add arguments. Every piece has a `function` object
    (the openai SDK's stream accumulator expects one)."""
    if call.id:
        return {"index": call.index, "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": call.arguments}}
    return {"index": call.index, "function": {"arguments": call.arguments}}


class _TextFormat:
    obj, chunk_obj = "text_completion", "text_completion"

    @staticmethod
    def choice(done: Completion, body: CompletionRequest) -> dict[str, Any]:
        return {"index": 0, "text": logprobs.echoed(done.echo) + done.text, "finish_reason": done.finish_reason,
                "logprobs": logprobs.text([*done.echo, *done.logprobs]) if body.logprobs is not None else None}

    @staticmethod
    def delta(chunk: Chunk | None, body: CompletionRequest, sent: int = 0, first: bool = False) -> dict[str, Any]:
        """`sent`: characters of this choice's text already streamed (where this chunk's offsets start)."""
        entries = [*chunk.echo, *chunk.logprobs] if chunk else []
        return {"index": 0, "text": logprobs.echoed(chunk.echo) + chunk.text if chunk else "",
                "finish_reason": chunk.finish_reason if chunk else None,
                "logprobs": logprobs.text(entries, sent) if body.logprobs is not None else None}


async def _serve(request: Request, registry: ModelRegistry, body: ChatCompletionRequest | CompletionRequest,
                 prefix: str, fmt):
    generation, model, headers = body.to_generation(), body.model, {}
    if model == AUTO and AUTO not in registry.ids:  # the best ready model for this request's category
        route = await sse.unless_disconnected(request, Router(registry).route(generation))
        model, headers = route.model, {"X-Routed-Model": route.model, "X-Route-Category": route.category}
    stream = registry.get(model).stream(generation)
    head = {"id": f"{prefix}-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}
    if not body.stream:
        try:
            done = await sse.unless_disconnected(request, collect(stream))
        finally:
            await stream.aclose()
        result = {**head, "object": fmt.obj, "choices": [fmt.choice(done, body)], "usage": done.usage.as_dict()}
        if body.include_perf:
            result["perf"] = done.timings.as_dict()
        return JSONResponse(result, headers=headers)
    try:  # wait for the first chunk so queue/context errors still get a proper HTTP status
        first = await sse.unless_disconnected(request, anext(stream))
    except BaseException:
        await stream.aclose()
        raise
    response = sse.response(_events(stream, first, head, fmt, body))
    response.headers.update(headers)
    return response


async def _events(stream: AsyncIterator[Chunk], first: Chunk, head: dict, fmt,
                  body: ChatCompletionRequest | CompletionRequest) -> AsyncIterator[bytes]:
    chunk_head = {**head, "object": fmt.chunk_obj}
    event: Callable[[dict], bytes] = lambda choice: sse.encode({**chunk_head, "choices": [choice]})  # noqa: E731
    try:
        if fmt is _ChatFormat:
            yield event(fmt.delta(None, body, first=True))
        chunk, sent = first, 0
        while True:
            if chunk.text or chunk.reasoning or chunk.tool_calls or chunk.finish_reason:
                choice = fmt.delta(chunk, body, sent)
                sent += len(choice.get("text", ""))
                payload = {**chunk_head, "choices": [choice]}
                if body.return_tokens:
                    payload["choices"][0]["tokens"] = list(chunk.tokens)
                if chunk.finish_reason and body.include_perf and chunk.timings:
                    payload["perf"] = chunk.timings.as_dict()
                yield sse.encode(payload)
            if chunk.finish_reason:
                if body.include_usage and chunk.usage:
                    yield sse.encode({**chunk_head, "choices": [], "usage": chunk.usage.as_dict()})
                break
            chunk = await anext(stream)
    except EngineError as exc:
        _, kind = engine_error_status(exc)
        yield sse.encode(error_body(exc.message, kind, exc.code, exc.param))
    except StopAsyncIteration:
        yield sse.encode(error_body("The model stopped without finishing its answer.", "server_error"))
    except Exception as exc:  # the stream has started: report, never drop the connection silently
        log.exception("stream failed")
        yield sse.encode(error_body(f"Generation failed: {exc}", "server_error", "internal_error"))
    finally:
        await stream.aclose()
    yield sse.DONE
