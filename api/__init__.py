"""FastAPI routers: OpenAI-compatible routes, health, error mapping and SSE encoding."""

from __future__ import annotations

import time
import uuid

from fastapi import Depends, FastAPI

from api import completions, errors, health, models, modes, ui
from api.auth import require_api_key
from engines.registry import ModelRegistry
from settings import VERSION, Settings


def create_api(settings: Settings, registry: ModelRegistry, *, lifespan=None) -> FastAPI:
    """The FastAPI core with every API route; the UI is mounted on it afterwards, at `/`."""
    app = FastAPI(title="Serverless LLM Playground", version=VERSION, lifespan=lifespan)
    app.state.settings = settings
    app.state.registry = registry
    app.state.instance_id = settings.instance_id or uuid.uuid4().hex[:12]
    app.state.started_at = time.time()
    errors.install(app)
    keyed = [Depends(require_api_key)]
    app.include_router(completions.router, dependencies=keyed)
    app.include_router(models.router, dependencies=keyed)
    app.include_router(modes.router, dependencies=keyed)
    app.include_router(ui.router, dependencies=keyed)
    app.include_router(health.router)
    return app
