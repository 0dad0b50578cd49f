"""GET /health (200 ready / 503 loading, failed or draining) and GET /health/details (every model's
instances with state, load, latency and tokens/s)."""

from __future__ import annotations

import os
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from settings import VERSION

router = APIRouter()


@router.get("/health")
async def health(request: Request):
    registry = request.app.state.registry
    states = {pool.model_id: pool.state for pool in registry.entries()}
    if request.app.state.draining:
        return JSONResponse({"status": "draining", "models": states}, status_code=503)
    if registry.ready:
        status = "ok" if states and all(state == "ready" for state in states.values()) else "degraded"
        return {"status": status, "models": states}
    return JSONResponse({"status": registry.local_state, "models": states}, status_code=503)


@router.get("/health/details")
async def health_details(request: Request):
    state = request.app.state
    models = {}
    for pool in state.registry.entries():
        local = pool.local
        models[pool.model_id] = {
            "loaded": local is not None and local.engine is not None,
            "source": pool.spec.source if local is not None else "remote",
            **pool.details(),
        }
    members = state.hub.members.values()
    lifetime = getattr(state, "lifetime", None)
    return {
        "status": "draining" if state.draining else "ok" if state.registry.ready else "unavailable",
        "instance_id": state.instance_id,
        "version": VERSION,
        "uptime_seconds": round(time.time() - state.started_at, 1),
        "cpu_count": os.cpu_count(),
        "models": models,
        "registered_instances": [{"instance_id": m.instance_id, "url": m.url, "models": m.models} for m in members],
        **({"lifetime": {"state": lifetime.state, "remaining_seconds": round(lifetime.remaining)}} if lifetime else {}),
    }
