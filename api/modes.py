"""Modes over HTTP: POST /v1/modes/{mode} (typed events as SSE, or one JSON result), and the OpenAI
alias `model: "council"` (etc.) on /v1/chat/completions, which streams only the final answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, model_validator

from api import sse
from api.deps import RegistryDep
from api.errors import APIError
from api.schemas import ChatCompletionRequest, valid_unicode
from engines.registry import ModelRegistry
from modes import LEAD_ROLE, MODES, run_mode
from modes.adapter import ModeRun, resolve_options
from modes.events import MAX_HISTORY, Event, ModeOptions

router = APIRouter()


class ModeRequest(ModeOptions):
    question: str = Field(min_length=1, description="What the members work on")
    members: list[str] | None = Field(None, min_length=1, max_length=8,
                                      description="Model ids; default: every hosted chat model")
    stream: bool = False

    @model_validator(mode="before")
    @classmethod
    def _unicode(cls, data: Any) -> Any:
        return valid_unicode(data)


@router.post("/v1/modes/{mode}")
async def mode_endpoint(mode: str, body: ModeRequest, request: Request, registry: RegistryDep):
    fields = body.model_dump(exclude={"question", "stream"}, exclude_unset=True)
    options = resolve_options(mode, {**fields, "members": body.members}, registry)
    events = run_mode(mode, body.question, options, registry.get)
    if body.stream:
        return sse.response(_sse_events(events))
    return (await _finished(request, mode, events)).summary()


async def _sse_events(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield sse.encode(event.as_dict())
    finally:
        await events.aclose()
    yield sse.DONE


async def _finished(request: Request, mode: str, events: AsyncIterator[Event]) -> ModeRun:
    run = await sse.unless_disconnected(request, ModeRun.collect(mode, events))
    if run.error:
        raise APIError(503, run.error, type="server_error", code="all_members_failed")
    return run


def conversation_of(body: ChatCompletionRequest) -> tuple[str, list[dict[str, str]]]:
    """The alias's question (the last user message) and the conversation before it, as the mode's
    history: a follow-up continues the conversation instead of starting over."""
    messages = [{"role": m.role, "content": m.text()} for m in body.messages
                if m.text() and m.role in ("system", "user", "assistant")]
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is None:
        raise APIError(400, "A mode needs a user message to answer.", param="messages")
    return messages[last_user]["content"], messages[:last_user][-MAX_HISTORY:]  # the most recent part


async def mode_completion(request: Request, body: ChatCompletionRequest, registry: ModelRegistry):
    """`model: "<mode>"` on /v1/chat/completions: the final answer as an ordinary completion, with
    the stages attached as `mode` (on the last chunk when streaming)."""
    fields = dict(body.mode_options or {})
    if body.max_tokens or body.max_completion_tokens:
        fields.setdefault("max_tokens", body.max_completion_tokens or body.max_tokens)
    if body.temperature is not None:
        fields.setdefault("temperature", body.temperature)
    question, history = conversation_of(body)
    fields.setdefault("history", history)
    options = resolve_options(body.model, fields, registry)
    events = run_mode(body.model, question, options, registry.get)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": body.model}
    if body.stream:
        return sse.response(_alias_stream(events, head, body.model))
    run = await _finished(request, body.model, events)
    return {**head, "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": run.final.text}}],
            "usage": run.usage(), "mode": run.summary()}


async def _alias_stream(events: AsyncIterator[Event], head: dict, mode: str) -> AsyncIterator[bytes]:
    chunk = {**head, "object": "chat.completion.chunk"}

    def delta(text: str) -> bytes:
        return sse.encode({**chunk, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})

    lead, run, streamed = LEAD_ROLE.get(mode), ModeRun(mode), ""
    try:
        yield sse.encode({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None}]})
        async for event in events:
            run.apply(event)
            if event.type == "token" and event.stage == "final" and event.role == lead:
                streamed += event.text
                yield delta(event.text)
            elif event.type == "error":
                yield sse.encode({"error": {"message": event.text, "type": "server_error", "param": None,
                                            "code": "all_members_failed"}})
                break
            elif event.type == "final":
                if event.text.strip() != streamed.strip():  # not streamed live, or the lead failed midway
                    yield delta(("\n\n" if streamed else "") + event.text)
                yield sse.encode({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                  "usage": run.usage(), "mode": run.summary()})
    finally:
        await events.aclose()
    yield sse.DONE


def mode_models() -> list[dict[str, Any]]:
    """The modes as entries of /v1/models, so model pickers in OpenAI clients offer them."""
    return [{"id": mode, "object": "model", "created": 0, "owned_by": "playground-modes"} for mode in MODES]
