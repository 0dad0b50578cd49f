"""The Models tab: every instance of every model this app serves or routes to (live), and the catalog,
each row with Load / Unload and a progress bar (downloads through huggingface-hub, then the load's
stages), plus a box for any hf://owner/repo/file.gguf or .gguf path.

Loads run through `fleet/loader.py`, the same jobs POST /models/load runs; a model loaded here, by the
API or by another page appears in every page's pickers without a reload (the tick below notices the
hosted set change and `hosted.change` refreshes them, see playground/__init__.py).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import gradio as gr

from engines import catalog
from engines.errors import EngineError
from engines.registry import ModelRegistry
from fleet.loader import LoadEvent, ModelLoader, may_manage

CATALOG_HEADERS = ["id", "name", "category", "params", "quant", "size (GB)", "context", "slots", "description",
                   "source"]
FLEET_HEADERS = ["model", "instance", "kind", "state", "active", "queued", "slots", "latency (ms)", "TTFT (ms)",
                 "tokens/s", "requests", "errors", "note"]
FORWARDING = ("x-forwarded-for", "forwarded", "cf-connecting-ip", "x-real-ip")
REDRAW_EVERY = 0.15  # seconds between progress updates sent to the page
CSS = """
.load-progress { display: flex; align-items: center; gap: .5em; font-size: .9em; min-height: 1.6em; }
.load-progress progress { width: 10em; }
.load-progress[data-status="error"] { color: var(--error-text-color, #b91c1c); }
.catalog-row { align-items: center; border-bottom: 1px solid var(--border-color-primary); }
"""


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


def hosted_here(registry: ModelRegistry) -> list[str]:
    """The models with an instance in this process (what Unload applies to)."""
    return sorted(p.model_id for p in registry.entries() if p.local is not None)


def element_id(model_id: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", model_id.lower())


def progress_html(event: LoadEvent | None) -> str:
    """A progress bar with a line of words; empty before anything happened."""
    if event is None:
        return ""
    words = _words(event)
    bar = "" if event.status == "error" else f'<progress max="100" value="{round(event.fraction * 100)}"></progress>'
    return (f'<div class="load-progress" data-status="{event.status}">{bar}'
            f"<span>{html.escape(words)}</span></div>")


def _words(event: LoadEvent) -> str:
    if event.status == "downloading":
        done = f"{(event.completed or 0) / 1e6:.1f}"
        return f"Downloading {done} / {event.total / 1e6:.1f} MB" if event.total else f"Downloading {done} MB"
    if event.status == "loading":
        return f"Loading: {event.stage}"
    if event.status == "checking":
        return "Checking memory…"
    return f"✓ {event.message or 'Ready'}" if event.status == "ready" else f"⚠ {event.message}"


def message_html(status: str, text: str) -> str:
    return f'<div class="load-progress" data-status="{status}"><span>{html.escape(text)}</span></div>'


class ModelManager:
    """The tab's Load and Unload, through the loader's jobs."""

    def __init__(self, registry: ModelRegistry, loader: ModelLoader, *, keys_set: bool):
        self.registry, self.loader, self.keys_set = registry, loader, keys_set

    def _check_allowed(self, request: gr.Request | None) -> None:
        headers = {k.lower() for k in (request.headers if request is not None else {})}
        client = request.client.host if request is not None and request.client else None
        if not may_manage(keys_set=self.keys_set, client_host=client, forwarded=any(h in headers for h in FORWARDING)):
            raise gr.Error("Loading and unloading models needs an API key: start the server with --api-key, "
                           "or use the UI from this machine.")

    async def load(self, reference: str, request: gr.Request = None) -> AsyncIterator[tuple[str, Any]]:
        """Yields (progress HTML, hosted models) until the model is ready or failed."""
        self._check_allowed(request)
        try:
            job = await self.loader.start(reference)
        except EngineError as exc:
            yield message_html("error", f"⚠ {exc.message}"), gr.skip()
            raise gr.Error(exc.message) from None
        shown = 0.0
        async for event in self.loader.watch(job):
            if event.status in ("ready", "error") or time.monotonic() - shown >= REDRAW_EVERY:
                shown = time.monotonic()
                yield progress_html(event), gr.skip()
        yield progress_html(job.last), hosted_here(self.registry)
        if job.last.status == "error":
            raise gr.Error(job.last.message)

    async def unload(self, model_id: str, request: gr.Request = None) -> AsyncIterator[tuple[str, Any]]:
        self._check_allowed(request)
        yield message_html("loading", f"Unloading {model_id}: letting its requests finish…"), gr.skip()
        try:
            await self.loader.unload(model_id)
        except EngineError as exc:
            yield message_html("error", f"⚠ {exc.message}"), gr.skip()
            raise gr.Error(exc.message) from None
        yield message_html("ready", f"{model_id} unloaded."), hosted_here(self.registry)

    async def load_once(self, reference: str, request: gr.Request = None) -> dict:
        """For gradio_client: loads a model (catalog id, hf://owner/repo/file.gguf or .gguf path) and returns
        the last progress event ({status, model, message, ...})."""
        self._check_allowed(request)
        try:
            job = await self.loader.start(reference)
        except EngineError as exc:
            raise gr.Error(exc.message) from None
        async for _ in self.loader.watch(job):
            pass
        if job.last.status == "error":
            raise gr.Error(job.last.message)
        return job.last.as_dict()

    async def unload_once(self, model_id: str, request: gr.Request = None) -> str:
        """For gradio_client: unloads a model hosted here once its requests have finished."""
        self._check_allowed(request)
        try:
            await self.loader.unload(model_id)
        except EngineError as exc:
            raise gr.Error(exc.message) from None
        return f"{model_id} unloaded."

    def state_of(self, model_id: str) -> str:
        job = self.loader.jobs.get(model_id)
        if job is not None and not job.done:
            return "loading…"
        if model_id in self.registry.ids:
            pool = self.registry.entry(model_id)
            return pool.state if pool.local is not None else f"{pool.state} (remote)"
        return "not loaded"


def build(registry: ModelRegistry, loader: ModelLoader | None = None, *, keys_set: bool = False,
          ) -> tuple[Callable[[], tuple[Any, ...]], list[gr.components.Component], gr.State]:
    """Lays out the tab; returns the refresh and its outputs, which the page also runs at every load
    (values computed when the UI was built would show a fleet from before the models had loaded), and
    the hosted-models state, which changes when a model is loaded or unloaded here."""
    gr.Markdown("### Fleet (live)")
    headline = gr.Markdown(summary(registry), elem_id="fleet-summary")
    live = gr.Dataframe(fleet_rows(registry), headers=FLEET_HEADERS, interactive=False, elem_id="live-models")
    hosted = gr.State(hosted_here(registry))
    if loader is None:
        gr.Markdown("### Catalog — start with `python app.py --model <id>` (hub models download once)")
        gr.Dataframe(catalog_rows(), headers=CATALOG_HEADERS, interactive=False, wrap=True)
    else:
        _management(ModelManager(registry, loader, keys_set=keys_set), hosted)

    def refresh() -> tuple[Any, ...]:
        now = hosted_here(registry)
        return summary(registry), fleet_rows(registry), now

    gr.Timer(2.0).tick(refresh, inputs=None, outputs=[headline, live, hosted], api_visibility="private",
                       show_progress="hidden")

    def models() -> list[list[Any]]:
        """One row per instance: model, instance, kind, state, active, queued, slots, latency, TTFT,
        tokens/s, requests, errors, note (why it takes no traffic, else its URL)."""
        return fleet_rows(registry)

    gr.api(models, api_name="models")
    return refresh, [headline, live, hosted], hosted


def _management(manager: ModelManager, hosted: gr.State) -> None:
    gr.Markdown("### Load a model\nA catalog model below, or any GGUF on the Hugging Face hub "
                "(`hf://owner/repo/file.gguf`, downloaded once into its cache; `HF_TOKEN` for gated ones) or on "
                "this machine (a `.gguf` path). Memory is checked first.")
    with gr.Row(equal_height=True):
        reference = gr.Textbox(placeholder="hf://owner/repo/file.gguf or /path/to/model.gguf", show_label=False,
                               scale=4, elem_id="load-reference")
        load = gr.Button("Load", variant="primary", scale=1, elem_id="load-reference-btn")
    custom_progress = gr.HTML(elem_id="load-reference-progress")
    load.click(manager.load, [reference], [custom_progress, hosted], api_visibility="private",
               concurrency_limit=None)
    reference.submit(manager.load, [reference], [custom_progress, hosted], api_visibility="private",
                     concurrency_limit=None)
    gr.api(manager.load_once, api_name="load_model")
    gr.api(manager.unload_once, api_name="unload_model")

    gr.Markdown("### Catalog")

    @gr.render(inputs=[hosted])
    def catalog_table(hosted_now: list[str]) -> None:
        for spec in catalog.ranked():
            slug = element_id(spec.id)
            with gr.Row(elem_classes="catalog-row", equal_height=True):
                gr.Markdown(f"**{spec.name}** `{spec.id}`  \n{spec.params} · {spec.quant} · {spec.size_gb:g} GB · "
                            f"context {spec.n_ctx} · {spec.source}", scale=5)
                gr.Markdown(manager.state_of(spec.id), elem_id=f"state-{slug}", scale=1)
                progress = gr.HTML(elem_id=f"progress-{slug}", scale=3)
                if spec.id in (hosted_now or []):
                    button = gr.Button("Unload", size="sm", scale=1, elem_id=f"unload-{slug}")
                    button.click(manager.unload, gr.State(spec.id), [progress, hosted], api_visibility="private",
                                 concurrency_limit=None)
                else:
                    button = gr.Button("Load", size="sm", variant="primary", scale=1, elem_id=f"load-{slug}")
                    button.click(manager.load, gr.State(spec.id), [progress, hosted], api_visibility="private",
                                 concurrency_limit=None)
