"""Composition root: settings -> engines -> FastAPI (OpenAI routes) -> Gradio at / -> uvicorn."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

import fleet.config
from api import create_api
from engines import catalog
from engines.catalog import ModelSpec
from engines.errors import EngineError
from engines.local import LocalEngine
from engines.model_files import resolve_path, spec_for, with_overrides
from engines.registry import ModelRegistry
from fleet.config import FleetConfig, FleetError
from fleet.hub import Hub
from fleet.lifetime import Lifetime, hub_check, parse_duration, url_check
from fleet.link import HubLink
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


def fleet_config(settings: Settings) -> FleetConfig:
    """The fleet file (if any) plus serverless-llm's environment conventions."""
    configs = [fleet.config.from_environment(os.environ)]
    if settings.fleet:
        configs.insert(0, fleet.config.load(settings.fleet))
    return fleet.config.merge(*configs)


def limited_life(settings: Settings, instance_id: str, registry: ModelRegistry) -> Lifetime | None:
    """--lifetime: after it, start --successor, wait until it is healthy, then drain and exit."""
    if not settings.lifetime:
        return None
    if settings.hub:
        local_models = lambda: [p.model_id for p in registry.entries() if p.local is not None]  # noqa: E731
        check = hub_check(settings.hub, local_models)
    else:
        check = url_check(settings.successor_url or "")
    return Lifetime(lifetime=parse_duration(settings.lifetime), successor=settings.successor,
                    instance_id=instance_id, is_healthy=check, handoff_timeout=settings.handoff_timeout,
                    exit=lambda: os.kill(os.getpid(), signal.SIGTERM))  # the same drain as Ctrl-C


def build_app(settings: Settings) -> FastAPI:
    registry = ModelRegistry()
    config = fleet_config(settings)
    if settings.fleet and "models" not in settings.model_fields_set:  # the fleet file says what runs here
        settings = settings.model_copy(update={"models": config.local_models()})
    specs = hosted_specs(settings)
    for spec in specs:
        registry.add(spec)
    hub = Hub(registry, heartbeat_timeout=settings.heartbeat_timeout, probe_interval=settings.probe_interval)
    hub.add_configured(config, source="fleet")

    def local_engine(spec: ModelSpec) -> LocalEngine:
        path = resolve_path(spec, cache_dir=settings.hf_cache)  # may download, with a progress bar
        return LocalEngine(spec, path, max_queue=settings.max_queue, queue_timeout=settings.queue_timeout,
                           flash_attn=settings.flash_attn == "on")

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        async def load_all():  # one at a time: loading in parallel only competes for memory and disk
            for spec in specs:
                await registry.load(spec, lambda spec=spec: local_engine(spec))

        tasks = [asyncio.create_task(load_all()), asyncio.create_task(hub.run())]
        if link is not None:
            tasks.append(asyncio.create_task(link.run()))
        if lifetime is not None:
            tasks.append(asyncio.create_task(lifetime.run()))
        yield
        for task in tasks:
            task.cancel()
        if link is not None:
            await link.leave()  # after uvicorn let the requests in flight finish
        await registry.aclose()

    app = create_api(settings, registry, fleet=hub, lifespan=lifespan)
    link = None
    if settings.hub:
        link = HubLink(settings.hub, settings.public_url, app.state.instance_id, registry, token=settings.hub_token,
                       api_key=settings.api_keys[0] if settings.api_keys else None)
    app.state.link = link
    lifetime = app.state.lifetime = limited_life(settings, app.state.instance_id, registry)
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
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per heartbeat and probe is noise
    try:
        app = build_app(settings)
    except EngineError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except FleetError as exc:
        print(f"error: fleet: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # e.g. an unreadable or invalid --gesture-config
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("serving %s on http://%s:%d (API at /v1, UI at /)", ", ".join(app.state.registry.ids) or "no models",
             settings.host, settings.port)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    DrainingServer(config, app).run()
    return 0


class DrainingServer(uvicorn.Server):
    """On the first SIGTERM/SIGINT: report draining (the hub stops routing here), then let uvicorn
    stop accepting connections and finish the requests in flight; the lifespan then deregisters."""

    def __init__(self, config: uvicorn.Config, app: FastAPI):
        super().__init__(config)
        self.app_state = app.state
        self._draining = False

    def handle_exit(self, sig, frame) -> None:
        if self._draining or self.app_state.link is None:
            return super().handle_exit(sig, frame)
        self._draining = True
        self.app_state.draining = True
        asyncio.get_event_loop().call_soon_threadsafe(lambda: asyncio.ensure_future(self._drain(sig, frame)))

    async def _drain(self, sig, frame) -> None:
        await self.app_state.link.drain()
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    sys.exit(main())
