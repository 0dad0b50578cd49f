"""The Models tab: every instance of every model this app serves or routes to (live), and the catalog."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from engines import catalog
from engines.registry import ModelRegistry

CATALOG_HEADERS = ["id", "name", "category", "params", "quant", "size (GB)", "context", "slots", "description",
                   "source"]
FLEET_HEADERS = ["model", "instance", "kind", "state", "active", "queued", "slots", "latency (ms)", "TTFT (ms)",
                 "tokens/s", "requests", "errors", "note"]


def catalog_rows() -> list[list[Any]]:
    return [
        [s.id, s.name, s.category, s.params, s.quant, s.size_gb, s.n_ctx, s.max_concurrent, s.description,
         s.source]
        for s in catalog.ranked()
    ]


def fleet_rows(registry: ModelRegistry) -> list[list[Any]]:
    rows = []
    for pool in registry.entries():
        for instance in pool.instances.values():
            d = instance.describe()
            rows.append([
                pool.model_id, instance.name, instance.kind, instance.state, d["active"], d["queued"],
                d["max_concurrent"], d["latency_ms"], d["ttft_ms"], d["tokens_per_second"], d["requests"],
                d["errors"], (d.get("error") if not instance.routable else None) or d.get("url", ""),
            ])
    return rows


def summary(registry: ModelRegistry) -> str:
    pools = registry.entries()
    instances = [i for p in pools for i in p.instances.values()]
    healthy = sum(i.routable for i in instances)
    ready = sum(p.state == "ready" for p in pools)
    return f"**{ready}/{len(pools)} models online** · {healthy}/{len(instances)} instances healthy"


def build(registry: ModelRegistry) -> tuple[Callable[[], tuple[str, list[list[Any]]]], list[gr.components.Component]]:
    """Lays out the tab; returns the refresh and its outputs, which the page also runs at every load
    (values computed when the UI was built would show a fleet from before the models had loaded)."""
    gr.Markdown("### Fleet (live)")
    headline = gr.Markdown(summary(registry), elem_id="fleet-summary")
    live = gr.Dataframe(fleet_rows(registry), headers=FLEET_HEADERS, interactive=False, elem_id="live-models")
    gr.Markdown("### Catalog — start with `python app.py --model <id>` (hub models download once)")
    gr.Dataframe(catalog_rows(), headers=CATALOG_HEADERS, interactive=False, wrap=True)

    def refresh() -> tuple[str, list[list[Any]]]:
        return summary(registry), fleet_rows(registry)

    gr.Timer(2.0).tick(refresh, outputs=[headline, live], api_visibility="private", show_progress="hidden")

    def models() -> list[list[Any]]:
        """One row per instance: model, instance, kind, state, active, queued, slots, latency, TTFT,
        tokens/s, requests, errors, note (why it takes no traffic, else its URL)."""
        return fleet_rows(registry)

    gr.api(models, api_name="models")
    return refresh, [headline, live]
