"""GET /v1/models and GET /v1/models/{id}: the hosted models, OpenAI-style."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import RegistryDep
from api.modes import mode_models
from engines.pool import Pool

router = APIRouter()


def describe(pool: Pool) -> dict[str, Any]:
    spec = pool.spec
    return {
        "id": spec.id,
        "object": "model",
        "created": pool.created,
        "owned_by": "local" if pool.local is not None else "remote",
        "name": spec.name,
        "state": pool.state,
        "instances": len(pool.instances),
        "context_length": pool.context_length,
        "chat": spec.chat,
    }


@router.get("/v1/models")
async def list_models(registry: RegistryDep):
    hosted = [describe(e) for e in registry.entries()]
    return {"object": "list", "data": hosted + mode_models()}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, registry: RegistryDep):
    return describe(registry.entry(model_id))
