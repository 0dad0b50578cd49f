"""Models loaded and unloaded while the server runs (POST /models/load and /models/unload, the Models tab).

A load is a job that runs whoever watches it: resolve the reference, check that the model fits in
memory (before downloading, and again once the file's real size is known), download through
huggingface-hub (its cache, resume and `HF_TOKEN`), then build the engine on a worker thread, its
stages (weights, context, warm-up) reported as they pass. The model joins the registry only once it
can answer, so a load never turns `/health` to 503 the way the start's models do. A second request
for a model being loaded watches the same job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Literal

from engines.catalog import ModelSpec
from engines.errors import EngineError, InsufficientMemory, InvalidRequest, Unavailable
from engines.local import LocalEngine
from engines.model_files import file_size, resolve_path, spec_for, with_overrides
from engines.registry import ModelRegistry
from settings import Settings

log = logging.getLogger(__name__)

MB = 1_000_000
RUNTIME_ALLOWANCE = 256 * MB  # compute buffers, KV caches of the default contexts, the tokenizer
Status = Literal["checking", "downloading", "loading", "ready", "error"]


@dataclass
class LoadEvent:
    """One step of a load, as the API streams it and the Models tab draws it."""

    status: Status
    model: str
    completed: int | None = None  # bytes downloaded
    total: int | None = None  # bytes to download, when known
    stage: str = ""  # while loading: weights, context, warm-up
    fraction: float = 0.0  # of the whole load, 0..1, for a progress bar
    message: str = ""
    seconds: float = 0.0  # since the load began

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}


@dataclass
class LoadJob:
    spec: ModelSpec
    started: float = field(default_factory=time.monotonic)
    events: list[LoadEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    error: EngineError | None = None  # why it failed, typed (the API maps it to a status)

    @property
    def last(self) -> LoadEvent | None:
        return self.events[-1] if self.events else None

    @property
    def done(self) -> bool:
        return self.last is not None and self.last.status in ("ready", "error")

    def post(self, event: LoadEvent) -> None:
        event.seconds = round(time.monotonic() - self.started, 2)
        self.events.append(event)
        del self.events[:-64]  # watchers only need the latest; keep a short trail
        self.changed.set()


def available_bytes() -> int:
    """Memory the machine can give without swapping (Linux's MemAvailable; elsewhere, free pages)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def needed_bytes(weights: int) -> int:
    """What a model of `weights` bytes takes once serving: its weights, a fifth more for the context and
    buffers of larger models, and a fixed allowance for small ones."""
    return int(weights * 1.2) + RUNTIME_ALLOWANCE


def may_manage(*, keys_set: bool, client_host: str | None, forwarded: bool) -> bool:
    """Who may load and unload models: anyone with a key when keys are set (the front door has checked
    it); without keys, only a caller on this machine that no proxy or tunnel forwarded, so a server open
    to the internet cannot be made to download or drop models by strangers."""
    return keys_set or (client_host in ("127.0.0.1", "::1", "localhost") and not forwarded)


def gb(size: float) -> str:
    return f"{size / 1e9:.2f} GB"


def hosted_spec(reference: str, settings: Settings) -> ModelSpec:
    """The spec a reference (catalog id, hf://owner/repo/file.gguf, .gguf path) is hosted with here:
    the catalog's defaults with the settings' threads, context and slots on top."""
    reference = (reference or "").strip()
    if not reference:
        raise InvalidRequest("Name a model: a catalog id, hf://owner/repo/file.gguf or a .gguf path.", param="model")
    spec = spec_for(reference)
    return with_overrides(spec, n_threads=settings.threads or min(spec.n_threads, os.cpu_count() or 1),
                          n_ctx=settings.ctx, n_batch=settings.batch, max_concurrent=settings.max_concurrent)


class ModelLoader:
    def __init__(self, registry: ModelRegistry, settings: Settings):
        self.registry = registry
        self.settings = settings
        self.jobs: dict[str, LoadJob] = {}  # by model id: loads under way, and the last one of each model

    def build_engine(self, spec: ModelSpec, *, downloaded=None, stage=None) -> LocalEngine:
        """Downloads if needed and loads (blocking: call it on a worker thread)."""
        settings = self.settings
        path = resolve_path(spec, cache_dir=settings.hf_cache, progress=downloaded)
        if downloaded is not None:
            self.check_memory(spec, path.stat().st_size)  # the real size, now that it is known
        draft = None
        if settings.draft_model:
            draft_spec = spec_for(settings.draft_model)
            draft = (draft_spec.id, resolve_path(draft_spec, cache_dir=settings.hf_cache))
        return LocalEngine(spec, path, max_queue=settings.max_queue, queue_timeout=settings.queue_timeout,
                           flash_attn=settings.flash_attn == "on", chat_template=settings.chat_template,
                           tool_format=settings.tool_format, speculative=settings.speculative, draft=draft,
                           draft_max=settings.draft_max, cache_type=settings.cache_type, progress=stage)

    def used_bytes(self) -> int:
        """What the models hosted here take now (measured at their load)."""
        used = 0
        for pool in self.registry.entries():
            engine = pool.local.engine if pool.local is not None else None
            memory = getattr(engine, "memory_mb", None) or {}
            used += int(sum(memory.values()) * MB)
        return used

    def check_memory(self, spec: ModelSpec, weights: int | None) -> None:
        """Raises InsufficientMemory when the model would not fit in free memory or --memory-limit."""
        if not weights:
            return  # nothing knows its size yet: checked again once downloaded
        need = needed_bytes(weights)
        free = available_bytes()
        where = "this machine has"
        if self.settings.memory_limit:
            budget = int(self.settings.memory_limit * 1e9) - self.used_bytes()
            if budget < free:
                free, where = max(budget, 0), f"--memory-limit {self.settings.memory_limit:g} GB leaves"
        if need > free:
            raise InsufficientMemory(
                f"{spec.id} needs about {gb(need)} of memory ({gb(weights)} of weights plus context and buffers) "
                f"but {where} {gb(free)} free: unload a model, choose a smaller quantization, or raise "
                "--memory-limit.", param="model")

    async def start(self, reference: str) -> LoadJob:
        """Checks the reference and the memory, then starts the load (or returns the one under way).
        Raises EngineError before anything starts."""
        spec = hosted_spec(reference, self.settings)
        job = self.jobs.get(spec.id)
        if job is not None and not job.done:
            return job
        pool = self.registry.entry(spec.id) if spec.id in self.registry.ids else None
        if pool is not None and pool.local is not None:
            job = LoadJob(spec)
            state = "ready" if pool.local.routable else pool.local.state
            job.post(LoadEvent("ready" if state == "ready" else "error", spec.id, fraction=1.0,
                               message=f"{spec.id} is already hosted here ({state})."))
            return job
        size = await asyncio.to_thread(file_size, spec, cache_dir=self.settings.hf_cache)
        self.check_memory(spec, size)
        job = self.jobs[spec.id] = LoadJob(spec)
        job.post(LoadEvent("checking", spec.id, total=size, message=f"{gb(size or 0)} to load" if size else ""))
        job.task = asyncio.create_task(self._run(job))
        return job

    async def _run(self, job: LoadJob) -> None:
        loop = asyncio.get_running_loop()
        spec = job.spec

        def downloaded(done: int, total: int | None) -> None:  # on the download thread
            share = done / total if total else 0.0
            loop.call_soon_threadsafe(job.post, LoadEvent("downloading", spec.id, completed=done, total=total,
                                                          fraction=round(0.8 * share, 3)))

        shown = {"stage": "", "fraction": -1.0}

        def stage(name: str, fraction: float) -> None:  # on the loading thread, up to hundreds of times
            overall = round({"weights": 0.8 + 0.1 * fraction, "context": 0.92, "warm-up": 0.96}[name], 2)
            if name == shown["stage"] and overall == shown["fraction"]:
                return
            shown.update(stage=name, fraction=overall)
            loop.call_soon_threadsafe(job.post, LoadEvent("loading", spec.id, stage=name, fraction=overall))

        try:
            engine = await asyncio.to_thread(self.build_engine, spec, downloaded=downloaded, stage=stage)
        except Exception as exc:  # a broken file, llama.cpp refusing it, the hub failing midway
            if not isinstance(exc, EngineError):
                log.exception("loading %s failed", spec.id)
                exc = Unavailable(f"{spec.id} failed to load: {exc}")
            job.error = exc
            job.post(LoadEvent("error", spec.id, message=exc.message))
            return
        self.registry.add(spec, engine)
        log.info("model %s loaded at run time in %.1f s", spec.id, time.monotonic() - job.started)
        job.post(LoadEvent("ready", spec.id, fraction=1.0,
                           message=f"{spec.id} is ready ({engine.load_seconds:.1f} s to load)."))

    async def watch(self, job: LoadJob) -> AsyncIterator[LoadEvent]:
        """The job's events from now on (the latest first), until it is ready or failed."""
        seen = None
        while True:
            last = job.last
            if last is not None and last is not seen:
                seen = last
                yield last
            if job.done:
                return
            job.changed.clear()
            if job.last is seen:
                await job.changed.wait()

    async def unload(self, model_id: str, *, drain_timeout: float = 60.0) -> None:
        """Drains the model's slots, then frees it. Raises UnknownModel or InvalidRequest."""
        job = self.jobs.get(model_id)
        if job is not None and not job.done:
            raise InvalidRequest(f"{model_id} is still loading; unload it once it is ready.", param="model")
        await self.registry.remove_local(model_id, drain_timeout=drain_timeout)
