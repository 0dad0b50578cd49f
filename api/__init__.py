"""FastAPI routers: OpenAI-compatible routes, health, fleet registration, metrics, badges, error
mapping and SSE encoding. Routes get what they use through `api/deps.py`."""

from __future__ import annotations

from fastapi import FastAPI

from api import badges, completions, errors, health, hub, manage, metrics, models, modes, status, tokenizer, ui
from api.access import AccessPolicy
from api.body_limit import BodySizeLimit
from engines.metering import TokenBudget
from fleet.node import Node
from settings import VERSION, Settings


def create_api(settings: Settings, node: Node, *, lifespan=None) -> FastAPI:
    """The FastAPI core with every API route; the UI is mounted on it afterwards, at `/`."""
    app = FastAPI(title="Serverless LLM Playground", version=VERSION, lifespan=lifespan)
    app.state.settings = settings
    app.state.node = node
    app.state.metrics = metrics.Metrics(node.registry)
    node.registry.set_observer(app.state.metrics)
    node.registry.set_budget(TokenBudget(settings.token_budget) if settings.token_budget else None)
    errors.install(app)
    # The last added is outermost: an oversized body is refused before anything else (it costs nothing
    # and says nothing), then the front door.
    app.add_middleware(AccessPolicy, keys=settings.api_keys, rate_limit=settings.rate_limit)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, upload_bytes=settings.max_upload_bytes)
    routers = [completions.router, models.router, manage.router, modes.router, ui.router, hub.router,
               tokenizer.router]
    for router in (*routers, health.router, badges.router, status.router):
        app.include_router(router)
    # before the UI is mounted at "/", which would answer other methods with its 404
    errors.refuse_other_methods(app, routers)
    return app
