"""FastAPI routers: OpenAI-compatible routes, health, fleet registration, metrics, badges, error
mapping and SSE encoding."""

from __future__ import annotations

import time
import uuid

from fastapi import Depends, FastAPI

from api import badges, completions, errors, health, hub, metrics, models, modes, ui
from api.auth import RateLimiter, guard
from api.body_limit import BodySizeLimit
from engines.registry import ModelRegistry
from fleet.hub import Hub
from settings import VERSION, Settings


def create_api(settings: Settings, registry: ModelRegistry, *, fleet: Hub | None = None, lifespan=None) -> FastAPI:
    """The FastAPI core with every API route; the UI is mounted on it afterwards, at `/`."""
    app = FastAPI(title="Serverless LLM Playground", version=VERSION, lifespan=lifespan)
    app.state.settings = settings
    app.state.registry = registry
    app.state.hub = fleet or Hub(registry, heartbeat_timeout=settings.heartbeat_timeout,
                                 probe_interval=settings.probe_interval)
    app.state.metrics = metrics.Metrics(registry)
    registry.set_observer(app.state.metrics)
    app.state.rate_limiter = RateLimiter(settings.rate_limit) if settings.rate_limit else None
    app.state.instance_id = settings.instance_id or uuid.uuid4().hex[:12]
    app.state.started_at = time.time()
    app.state.draining = False
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    guarded = [Depends(guard)]
    app.include_router(completions.router, dependencies=guarded)
    app.include_router(models.router, dependencies=guarded)
    app.include_router(modes.router, dependencies=guarded)
    app.include_router(ui.router, dependencies=guarded)
    app.include_router(hub.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(badges.router)
    return app
