"""The models this app serves, by id, with their loading state.

Models load in the background so the server answers at once (`/health` says 503 until ready).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from engines.catalog import ModelSpec
from engines.contract import Engine
from engines.errors import Unavailable, UnknownModel

log = logging.getLogger(__name__)


@dataclass
class Entry:
    spec: ModelSpec
    state: str = "loading"  # loading | ready | failed
    error: str = ""
    engine: Engine | None = None
    created: int = 0  # unix time the model became ready


class ModelRegistry:
    def __init__(self):
        self._entries: dict[str, Entry] = {}

    def add(self, spec: ModelSpec, engine: Engine | None = None) -> Entry:
        entry = Entry(spec=spec, engine=engine, state="ready" if engine else "loading", created=int(time.time()))
        self._entries[spec.id] = entry
        return entry

    async def load(self, spec: ModelSpec, build: Callable[[], Engine]) -> None:
        """Builds the engine on a worker thread; a failure is recorded, never raised."""
        entry = self._entries.get(spec.id) or self.add(spec)
        try:
            entry.engine = await asyncio.to_thread(build)
            entry.state, entry.created = "ready", int(time.time())
            log.info("model %s ready", spec.id)
        except Exception as exc:
            entry.state, entry.error = "failed", str(exc)
            log.error("model %s failed to load: %s", spec.id, exc)

    @property
    def ids(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    @property
    def ready(self) -> bool:
        return bool(self._entries) and all(e.state == "ready" for e in self._entries.values())

    def entry(self, model_id: str) -> Entry:
        entry = self._entries.get(model_id)
        if entry is None:
            raise UnknownModel(
                f"The model '{model_id}' does not exist here. Available models: "
                f"{', '.join(self._entries) or 'none'}."
            )
        return entry

    def get(self, model_id: str) -> Engine:
        entry = self.entry(model_id)
        if entry.state == "loading":
            raise Unavailable(f"Model '{model_id}' is still loading; retry in a few seconds.")
        if entry.engine is None:
            raise Unavailable(f"Model '{model_id}' failed to load: {entry.error}")
        return entry.engine

    async def aclose(self) -> None:
        for entry in self._entries.values():
            if entry.engine is not None:
                await entry.engine.aclose()
