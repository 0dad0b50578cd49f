"""Composition root: settings -> node (models, fleet, identity) -> FastAPI (OpenAI routes) -> Gradio at / -> uvicorn."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from fastapi import FastAPI

from api import create_api
from engines import catalog
from engines.errors import EngineError
from fleet.config import FleetError
from fleet.node import Node, build_node
from fleet.serve import lifespan, serve
from settings import parse_args

log = logging.getLogger("playground")


def build_app(node: Node) -> FastAPI:
    settings = node.settings
    app = create_api(settings, node, lifespan=lifespan(node))
    if settings.ui:
        import gradio as gr

        from genui.artifact import PAGE_LISTENER
        from gestures.actions import GestureConfig
        from playground import CSS, build_playground

        gestures = None
        if settings.gesture_config:
            gestures = GestureConfig.from_json(Path(settings.gesture_config).read_text())
        # Mounted last, at "/": routes added after this would be shadowed by Gradio.
        blocks = build_playground(node.registry, gestures, results_dir=settings.results_dir, loader=node.loader,
                                  keys_set=bool(settings.api_keys))
        app = gr.mount_gradio_app(app, blocks, path="/", footer_links=["api"], css=CSS, head=PAGE_LISTENER,
                                  max_file_size=settings.max_upload_bytes)
    return app


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    if args.list_models:
        print(catalog.format_table())
        return 0
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per heartbeat and probe is noise
    try:
        node = build_node(settings)
        app = build_app(node)
    except EngineError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except FleetError as exc:
        print(f"error: fleet: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # e.g. an unreadable or invalid --gesture-config, a bad --lifetime
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("serving %s on http://%s:%d (API at /v1, UI at /)", ", ".join(node.registry.ids) or "no models",
             settings.host, settings.port)
    serve(app, node)
    return 0


if __name__ == "__main__":
    sys.exit(main())
