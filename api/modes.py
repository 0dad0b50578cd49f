"""Modes over HTTP: POST /v1/modes/{mode} (typed events as SSE, or one JSON result), and the OpenAI
alias `model: "council"` (etc.) on /v1/chat/completions, which streams only the final answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, ValidationError

from api import sse
from api.errors import APIError
from api.schemas import ChatCompletionRequest
from modes import LEAD_ROLE, MODES, run_mode
from modes.events import Event, ModeOptions

router = APIRouter()


class ModeRequest(ModeOptions):
    question: str = Field(min_length=1, description="What the members work on")
    members: list[str] | None = Field(None, min_length=1, max_length=8,
                                      description="Model ids; default: every hosted chat model")
    stream: bool = False


def resolve_options(request: Request, mode: str, fields: dict[str, Any]) -> ModeOptions:
    """Checks the mode and every named model before anything runs (unknown -> 404, bad -> 400)."""
    if mode not in MODES:
        raise APIError(404, f"Unknown mode '{mode}'. Modes: {', '.join(MODES)}.", code="mode_not_found",
                       param="mode")
    registry = request.app.state.registry
    if not fields.get("members"):
        fields["members"] = [e.spec.id for e in registry.entries() if e.spec.chat] or registry.ids
    try:
        options = ModeOptions(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"])
        raise APIError(400, f"Invalid mode option '{param}': {first['msg']}", param=param,
                       code="invalid_value") from None
    for model_id in [*options.members, *([options.lead] if options.lead else [])]:
        registry.entry(model_id)  # raises UnknownModel (404) listing the available models
    return options


@router.post("/v1/modes/{mode}")
async def mode_endpoint(mode: str, body: ModeRequest, request: Request):
    fields = body.model_dump(exclude={"question", "stream"}, exclude_unset=True)
    options = resolve_options(request, mode, {**fields, "members": body.members})
    events = run_mode(mode, body.question, options, request.app.state.registry.get)
    if body.stream:
        return sse.response(_sse_events(events))
    return await sse.unless_disconnected(request, _summary(mode, events))


async def _sse_events(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield sse.encode(event.as_dict())
    finally:
        await events.aclose()
    yield sse.DONE


async def _summary(mode: str, events: AsyncIterator[Event]) -> dict[str, Any]:
    final, error, turns, stages, total_ms = None, None, [], [], None
    try:
        async for event in events:
            if event.type in ("member_done", "member_error"):
                turns.append(event.as_dict())
            elif event.type == "stage_done":
                stages.append(event.as_dict())
            elif event.type == "final":
                final = event.as_dict()
            elif event.type == "error":
                error = event.text
            elif event.type == "mode_done":
                total_ms = event.duration_ms
    finally:
        await events.aclose()
    if error is not None:
        raise APIError(503, error, type="server_error", code="all_members_failed")
    return {"mode": mode, "final": final, "stages": stages, "turns": turns, "duration_ms": total_ms}


def question_from(body: ChatCompletionRequest) -> str:
    messages = [(m.role, m.text()) for m in body.messages if m.text()]
    if len(messages) == 1:
        return messages[0][1]
    history = "\n".join(f"{role}: {text}" for role, text in messages)
    return f"Conversation so far:\n{history}\n\nRespond to the last user message."


async def mode_completion(request: Request, body: ChatCompletionRequest):
    """`model: "<mode>"` on /v1/chat/completions: the final answer as an ordinary completion, with
    the stages attached as `mode` (on the last chunk when streaming)."""
    fields = dict(body.mode_options or {})
    if body.max_tokens or body.max_completion_tokens:
        fields.setdefault("max_tokens", body.max_completion_tokens or body.max_tokens)
    if body.temperature is not None:
        fields.setdefault("temperature", body.temperature)
    options = resolve_options(request, body.model, fields)
    events = run_mode(body.model, question_from(body), options, request.app.state.registry.get)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": body.model}
    if body.stream:
        return sse.response(_alias_stream(events, head, body.model, options))
    summary = await sse.unless_disconnected(request, _summary(body.model, events))
    return {**head, "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": summary["final"]["text"]}}],
            "usage": _usage(summary["turns"]), "mode": summary}


async def _alias_stream(events: AsyncIterator[Event], head: dict, mode: str, options: ModeOptions):
    chunk = {**head, "object": "chat.completion.chunk"}
    delta = lambda text, **extra: sse.encode(  # noqa: E731
        {**chunk, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}], **extra})
    lead = LEAD_ROLE.get(mode)
    streamed, turns, stages = "", [], []
    try:
        yield sse.encode({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None}]})
        async for event in events:
            if event.type == "token" and event.stage == "final" and event.role == lead:
                streamed += event.text
                yield delta(event.text)
            elif event.type in ("member_done", "member_error"):
                turns.append(event.as_dict())
            elif event.type == "stage_done":
                stages.append(event.as_dict())
            elif event.type == "error":
                yield sse.encode({"error": {"message": event.text, "type": "server_error", "param": None,
                                            "code": "all_members_failed"}})
                break
            elif event.type == "final":
                if event.text.strip() != streamed.strip():  # not streamed live, or the lead failed midway
                    yield delta(("\n\n" if streamed else "") + event.text)
                summary = {"mode": mode, "final": event.as_dict(), "stages": stages, "turns": turns}
                yield sse.encode({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                  "usage": _usage(turns), "mode": summary})
    finally:
        await events.aclose()
    yield sse.DONE


def _usage(turns: list[dict]) -> dict[str, int]:
    prompt = sum(t.get("data", {}).get("prompt_tokens", 0) for t in turns)
    completion = sum(t.get("data", {}).get("completion_tokens", 0) for t in turns)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def mode_models() -> list[dict[str, Any]]:
    """The modes as entries of /v1/models, so model pickers in OpenAI clients offer them."""
    return [{"id": mode, "object": "model", "created": 0, "owned_by": "playground-modes"} for mode in MODES]

