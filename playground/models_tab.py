"""The Models tab: the catalog, which models this instance hosts, and their live slot usage."""

from __future__ import annotations

from typing import Any

import gradio as gr

from engines import catalog
from engines.registry import ModelRegistry

CATALOG_HEADERS = ["id", "name", "category", "params", "quant", "size (GB)", "context", "slots", "description",
                   "source"]


def catalog_rows() -> list[list[Any]]:
    return [
        [s.id, s.name, s.category, s.params, s.quant, s.size_gb, s.n_ctx, s.max_concurrent, s.description,
         s.source]
        for s in catalog.ranked()
    ]


def live_rows(registry: ModelRegistry) -> list[list[Any]]:
    rows = []
    for entry in registry.entries():
        details = entry.engine.details() if entry.engine else {}
        rows.append([
            entry.spec.id, entry.state if not entry.error else f"failed: {entry.error}",
            details.get("active", 0), details.get("queued", 0), details.get("max_concurrent", "-"),
            details.get("n_ctx", entry.spec.n_ctx), details.get("n_threads", entry.spec.n_threads),
        ])
    return rows


LIVE_HEADERS = ["model", "state", "active", "queued", "slots", "context", "threads"]


def build(registry: ModelRegistry) -> None:
    gr.Markdown("### Hosted here (live)")
    live = gr.Dataframe(live_rows(registry), headers=LIVE_HEADERS, interactive=False, elem_id="live-models")
    gr.Markdown("### Catalog — start with `python app.py --model <id>` (hub models download once)")
    gr.Dataframe(catalog_rows(), headers=CATALOG_HEADERS, interactive=False, wrap=True)
    timer = gr.Timer(2.0)
    timer.tick(lambda: live_rows(registry), outputs=live, api_visibility="private", show_progress="hidden")
    def models() -> list[list[Any]]:
        """One row per hosted model: id, state, active, queued, slots, context, threads."""
        return live_rows(registry)

    gr.api(models, api_name="models")
