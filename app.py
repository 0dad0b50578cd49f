"""Composition root: settings -> engines -> FastAPI (OpenAI routes) -> Gradio at / -> uvicorn."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from api import create_api
from engines import catalog
from engines.catalog import ModelSpec
from engines.errors import EngineError
from engines.local import LocalEngine
from engines.model_files import resolve_path, spec_for, with_overrides
from engines.registry import ModelRegistry
from settings import Settings, parse_args

log = logging.getLogger("playground")


def hosted_specs(settings: Settings) -> list[ModelSpec]:
    """The catalog entries (or local files) to host, with the settings' overrides applied."""
    specs = []
    for reference in settings.models:
        spec = spec_for(reference)
        specs.append(with_overrides(
            spec,
            n_threads=settings.threads or min(spec.n_threads, os.cpu_count() or 1),
            n_ctx=settings.ctx, n_batch=settings.batch, max_concurrent=settings.max_concurrent,
        ))
    return specs


def build_app(settings: Settings) -> FastAPI:
    registry = ModelRegistry()
    specs = hosted_specs(settings)
    for spec in specs:
        registry.add(spec)

    def local_engine(spec: ModelSpec) -> LocalEngine:
        path = resolve_path(spec, cache_dir=settings.hf_cache)  # may download, with a progress bar
        return LocalEngine(spec, path, max_queue=settings.max_queue, queue_timeout=settings.queue_timeout)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        async def load_all():  # one at a time: loading in parallel only competes for memory and disk
            for spec in specs:
                await registry.load(spec, lambda spec=spec: local_engine(spec))

        loading = asyncio.create_task(load_all())
        yield
        loading.cancel()
        await registry.aclose()

    app = create_api(settings, registry, lifespan=lifespan)
    if settings.ui:
        import gradio as gr

        from genui.artifact import PAGE_LISTENER
        from gestures.actions import GestureConfig
        from playground import CSS, build_playground

        gestures = None
        if settings.gesture_config:
            gestures = GestureConfig.from_json(Path(settings.gesture_config).read_text())
        # Mounted last, at "/": routes added after this would be shadowed by Gradio.
        app = gr.mount_gradio_app(app, build_playground(registry, gestures), path="/", footer_links=["api"],
                                  css=CSS, head=PAGE_LISTENER)
    return app


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    if args.list_models:
        print(catalog.format_table())
        return 0
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = build_app(settings)
    except EngineError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # e.g. an unreadable or invalid --gesture-config
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("serving %s on http://%s:%d (API at /v1, UI at /)", ", ".join(settings.models),
             settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
