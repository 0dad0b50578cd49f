"""GET /health (200 ready / 503 loading or failed) and GET /health/details (per-model capacity)."""

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
    states = {e.spec.id: e.state for e in registry.entries()}
    if registry.ready:
        return {"status": "ok", "models": states}
    status = "failed" if "failed" in states.values() else "loading"
    return JSONResponse({"status": status, "models": states}, status_code=503)


@router.get("/health/details")
async def health_details(request: Request):
    state = request.app.state
    models = {}
    for entry in state.registry.entries():
        base = {"state": entry.state, "loaded": entry.engine is not None, "source": entry.spec.source}
        if entry.error:
            base["error"] = entry.error
        models[entry.spec.id] = {**base, **(entry.engine.details() if entry.engine else {})}
    return {
        "status": "ok" if state.registry.ready else "unavailable",
        "instance_id": state.instance_id,
        "version": VERSION,
        "uptime_seconds": round(time.time() - state.started_at, 1),
        "cpu_count": os.cpu_count(),
        "models": models,
    }
