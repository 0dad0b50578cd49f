"""GET /v1/models and GET /v1/models/{id}: the hosted models, OpenAI-style."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import RegistryDep
from api.modes import mode_models
from engines.personas import Persona
from engines.pool import Pool
from engines.registry import ModelRegistry
from engines.router import AUTO

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


def describe_persona(persona: Persona, registry: ModelRegistry) -> dict[str, Any]:
    pool = registry.entry(persona.model)
    return {"id": persona.id, "object": "model", "created": pool.created, "owned_by": "persona",
            "name": persona.name, "state": pool.state, "context_length": pool.context_length, "chat": True,
            "persona": persona.model_dump(exclude={"id", "name"}, exclude_none=True)}


@router.get("/v1/models")
async def list_models(registry: RegistryDep):
    hosted = [describe(e) for e in registry.entries()]
    personas = [describe_persona(p, registry) for p in registry.personas.values()]
    auto = {"id": AUTO, "object": "model", "created": 0, "owned_by": "playground-router",
            "name": "Auto: the best ready model for each request"}
    return {"object": "list", "data": hosted + personas + [auto] + mode_models()}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, registry: RegistryDep):
    if model_id in registry.personas:
        return describe_persona(registry.personas[model_id], registry)
    return describe(registry.entry(model_id))
