"""How this server is doing: GET /health (200 ready / 503 loading, failed, draining, or starting: a
successor hub still taking over its predecessor's fleet),
GET /health/details (every model's instances with state, load, latency and tokens/s; to a caller
without a key, when keys are set, only each model's state) and GET /metrics (Prometheus text)."""

from __future__ import annotations

import os
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import AuthenticatedDep, MetricsDep, NodeDep
from settings import VERSION

router = APIRouter()


@router.get("/health")
async def health(node: NodeDep):
    registry = node.registry
    states = {pool.model_id: pool.state for pool in registry.entries()}
    if node.draining:
        return JSONResponse({"status": "draining", "models": states}, status_code=503)
    if waiting := node.starting():
        return JSONResponse({"status": "starting", "waiting": waiting, "models": states}, status_code=503)
    if registry.ready:
        status = "ok" if states and all(state == "ready" for state in states.values()) else "degraded"
        return {"status": status, "models": states}
    return JSONResponse({"status": registry.local_state, "models": states}, status_code=503)


@router.get("/health/details")
async def health_details(node: NodeDep, authenticated: AuthenticatedDep):
    status = ("draining" if node.draining else "starting" if node.starting() else
              "ok" if node.registry.ready else "unavailable")
    if not authenticated:  # keys are set and none was shown: nothing about instances, URLs or files
        return {"status": status, "version": VERSION,
                "models": {p.model_id: {"state": p.state} for p in node.registry.entries()}}
    models = {}
    for pool in node.registry.entries():
        local = pool.local
        models[pool.model_id] = {
            "loaded": local is not None and local.engine is not None,
            "source": pool.spec.source if local is not None else "remote",
            **pool.details(),
        }
    lifetime = node.lifetime
    return {
        "status": status,
        "instance_id": node.instance_id,
        "version": VERSION,
        "uptime_seconds": round(time.time() - node.started_at, 1),
        "cpu_count": os.cpu_count(),
        "models": models,
        "registered_instances": [{"instance_id": m.instance_id, "url": m.url, "models": m.models}
                                 for m in node.hub.members.values()],
        **({"lifetime": {"state": lifetime.state, "remaining_seconds": round(lifetime.remaining)}} if lifetime else {}),
    }


@router.get("/metrics", include_in_schema=False)
async def metrics(figures: MetricsDep) -> Response:
    return Response(figures.exposition(), media_type=CONTENT_TYPE_LATEST)
