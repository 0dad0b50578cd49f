"""FastAPI routers: OpenAI-compatible routes, health, fleet registration, metrics, badges, error
mapping and SSE encoding. Routes get what they use through `api/deps.py`."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from api import badges, completions, errors, health, hub, metrics, models, modes, ui
from api.auth import guard
from api.body_limit import BodySizeLimit
from api.rate_limit import RateLimiter
from fleet.node import Node
from settings import VERSION, Settings


def create_api(settings: Settings, node: Node, *, lifespan=None) -> FastAPI:
    """The FastAPI core with every API route; the UI is mounted on it afterwards, at `/`."""
    app = FastAPI(title="Serverless LLM Playground", version=VERSION, lifespan=lifespan)
    app.state.settings = settings
    app.state.node = node
    app.state.metrics = metrics.Metrics(node.registry)
    node.registry.set_observer(app.state.metrics)
    app.state.rate_limiter = RateLimiter(settings.rate_limit) if settings.rate_limit else None
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    guarded = [Depends(guard)]
    app.include_router(completions.router, dependencies=guarded)
    app.include_router(models.router, dependencies=guarded)
    app.include_router(modes.router, dependencies=guarded)
    app.include_router(ui.router, dependencies=guarded)
    app.include_router(hub.router)
    app.include_router(health.router)
    app.include_router(badges.router)
    return app
