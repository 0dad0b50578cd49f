"""GET /v1/models and GET /v1/models/{id}: the hosted models, OpenAI-style."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.modes import mode_models
from engines.registry import Entry

router = APIRouter()


def describe(entry: Entry) -> dict[str, Any]:
    spec = entry.spec
    return {
        "id": spec.id,
        "object": "model",
        "created": entry.created,
        "owned_by": "local",
        "name": spec.name,
        "state": entry.state,
        "context_length": spec.n_ctx,
        "chat": spec.chat,
    }


@router.get("/v1/models")
async def list_models(request: Request):
    hosted = [describe(e) for e in request.app.state.registry.entries()]
    return {"object": "list", "data": hosted + mode_models()}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request):
    return describe(request.app.state.registry.entry(model_id))
