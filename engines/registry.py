"""The models this app serves, by id: one `Pool` per model, holding its local and remote instances.

Local models load in the background so the server answers at once (`/health` says 503 until they
are ready). Remote instances come from the fleet file, the environment, or register at run time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from engines import catalog
from engines.catalog import ModelSpec
from engines.contract import Engine
from engines.errors import InvalidRequest, Unavailable, UnknownModel
from engines.metering import TokenBudget
from engines.personas import Persona, PersonaEngine
from engines.pool import Instance, Observer, Pool

log = logging.getLogger(__name__)

LOCAL = "local"  # the name of this process's own instance in every pool


def remote_spec(model_id: str, *, name: str | None = None, n_ctx: int = 0, chat: bool = True) -> ModelSpec:
    """The catalog entry when the id is known, otherwise a minimal description of a remote-only model."""
    known = catalog.find(model_id)
    if known is not None:
        return known
    return ModelSpec(id=model_id, name=name or model_id, description="Served by remote instances",
                     category="remote", rank=99, params="?", quant="?", size_gb=0.0, n_ctx=n_ctx, chat=chat)


class ModelRegistry:
    def __init__(self, observer: Observer | None = None):
        self._pools: dict[str, Pool] = {}
        self._personas: dict[str, Persona] = {}  # also those whose model is not served now
        self.observer = observer
        self.budget: TokenBudget | None = None

    def set_observer(self, observer: Observer) -> None:
        self.observer = observer
        for pool in self._pools.values():
            pool.observer = observer

    def set_budget(self, budget: TokenBudget | None) -> None:
        """Every generation, in every pool (also ones added later), spends from this per-caller budget."""
        self.budget = budget
        for pool in self._pools.values():
            pool.budget = budget

    def pool(self, spec: ModelSpec) -> Pool:
        """The pool for this model, created empty on first use."""
        if spec.id not in self._pools:
            self._pools[spec.id] = Pool(spec, self.observer)
            self._pools[spec.id].budget = self.budget
        return self._pools[spec.id]

    def add(self, spec: ModelSpec, engine: Engine | None = None) -> Pool:
        """Hosts `spec` in this process: ready with `engine`, or loading until `load` builds it."""
        pool = self.pool(spec)
        pool.add(Instance(LOCAL, engine, kind="local", source="local", max_concurrent=spec.max_concurrent,
                          state="healthy" if engine else "loading"))
        return pool

    def add_remote(self, model_id: str, name: str, engine: Engine, *, source: str, max_concurrent: int = 2,
                   spec: ModelSpec | None = None) -> Instance:
        pool = self.pool(spec or remote_spec(model_id))
        return pool.add(Instance(name, engine, kind="remote", source=source, max_concurrent=max_concurrent))

    def discard_if_empty(self, model_id: str) -> None:
        """Forgets a model whose last instance left (it came only from registrations)."""
        pool = self._pools.get(model_id)
        if pool is not None and not pool.instances:
            del self._pools[model_id]

    async def remove_local(self, model_id: str, *, drain_timeout: float = 60.0) -> None:
        """Stops hosting `model_id` here: no new requests reach this instance, those admitted finish (up
        to `drain_timeout` seconds, then they are cut), the engine closes, and a model left without
        instances is forgotten."""
        pool = self.entry(model_id)
        instance = pool.local
        if instance is None:
            raise InvalidRequest(f"'{model_id}' is not hosted by this server (only its own models can be unloaded).",
                                 param="model")
        instance.state = "draining"
        deadline = asyncio.get_running_loop().time() + drain_timeout
        while instance.engine is not None and instance.active + instance.queued + instance.in_flight > 0:
            if asyncio.get_running_loop().time() > deadline:
                log.warning("model %s: unloading with %d requests still running", model_id, instance.active)
                break
            await asyncio.sleep(0.1)
        del pool.instances[LOCAL]
        if instance.engine is not None:
            await instance.engine.aclose()
        self.discard_if_empty(model_id)
        log.info("model %s unloaded", model_id)

    async def load(self, spec: ModelSpec, build: Callable[[], Engine]) -> None:
        """Builds the local engine on a worker thread; a failure is recorded, never raised."""
        pool = self._pools.get(spec.id) or self.add(spec)
        instance = pool.instances[LOCAL]
        try:
            instance.engine = await asyncio.to_thread(build)
            instance.state = "healthy"
            log.info("model %s ready", spec.id)
        except Exception as exc:
            instance.state, instance.error = "failed", str(exc)
            log.error("model %s failed to load: %s", spec.id, exc)

    def add_persona(self, persona: Persona, *, reserved: frozenset[str] = frozenset()) -> Persona:
        """Adds (or replaces) a persona, speaking through its model or else the first hosted chat model.
        Its id may not be a model's or one of `reserved` (the modes' names)."""
        if persona.id in self._pools or persona.id in reserved:
            raise InvalidRequest(f"'{persona.id}' is already a model or mode name; give the persona another id.",
                                 param="id")
        model = persona.model or next(iter(self.chat_ids), None)
        if model is None:
            raise InvalidRequest("No chat model is hosted for the persona to speak through.", param="model")
        if model not in self._pools:
            raise UnknownModel(f"The persona's model '{model}' is not hosted here. Available models: "
                               f"{', '.join(self._pools) or 'none'}.", param="model")
        self._personas[persona.id] = persona.on(model)
        return self._personas[persona.id]

    @property
    def personas(self) -> dict[str, Persona]:
        """The personas whose model is served now (one unloaded at run time takes its personas along
        until it is loaded again)."""
        return {pid: p for pid, p in self._personas.items() if p.model in self._pools}

    @property
    def ids(self) -> list[str]:
        return list(self._pools)

    @property
    def member_ids(self) -> list[str]:
        """What can take part in a mode or a chat: the chat models, then the personas."""
        return [*self.chat_ids, *self.personas]

    @property
    def default_members(self) -> list[str]:
        """A mode's members when the caller names none: the chat models when there are several, else
        the personas (so one small model still holds a real panel), else that one model."""
        chat = [p.model_id for p in self._pools.values() if p.spec.chat]
        if len(chat) >= 2 or not self.personas:
            return self.chat_ids
        return list(self.personas)

    def require(self, model_id: str) -> None:
        """Raises UnknownModel (listing what is available) unless `model_id` is a model or a persona."""
        if model_id not in self.personas:
            self.entry(model_id)

    def entries(self) -> list[Pool]:
        return list(self._pools.values())

    @property
    def chat_ids(self) -> list[str]:
        """The chat models (instruction-tuned) — or every model when none is one."""
        return [p.model_id for p in self._pools.values() if p.spec.chat] or self.ids

    @property
    def local_state(self) -> str:
        """loading / failed while any locally hosted model is; else ready."""
        states = {p.local.state for p in self._pools.values() if p.local is not None}
        return "loading" if "loading" in states else "failed" if "failed" in states else "ready"

    @property
    def ready(self) -> bool:
        """Nothing hosted here is loading or failed (a hub with no models yet is ready too)."""
        return self.local_state == "ready"

    def entry(self, model_id: str) -> Pool:
        pool = self._pools.get(model_id)
        if pool is None:
            known = [*self._pools, *self.personas]
            raise UnknownModel(
                f"The model '{model_id}' does not exist here. Available models: {', '.join(known) or 'none'}."
            )
        return pool

    def get(self, model_id: str) -> Engine:
        if model_id in self.personas:
            return PersonaEngine(self.personas[model_id], self.get)
        pool = self.entry(model_id)
        if pool.state == "loading":
            raise Unavailable(f"Model '{model_id}' is still loading; retry in a few seconds.")
        if pool.state == "failed":
            raise Unavailable(f"Model '{model_id}' failed to load: {pool.local.error if pool.local else pool.error}")
        return pool

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
