"""An instance's side of the fleet: register with a hub once the local models are ready, heartbeat
with the current load, and on shutdown drain (the hub stops sending new requests) and leave.

A draining instance never registers again (a hub that restarted meanwhile would take it for a new,
healthy one); its heartbeats say it is draining. An instance whose id stays taken by another live
one (a second lineage of the same successor) stops itself, so only one survives."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from engines.contract import Load
from engines.registry import ModelRegistry

log = logging.getLogger(__name__)
ID_TAKEN_GRACE = 60.0  # seconds a refused id may stay taken: long enough for a dead holder's heartbeats to lapse


class HubLink:
    def __init__(self, hub_url: str, public_url: str, instance_id: str, registry: ModelRegistry, *,
                 token: str | None, api_key: str | None = None):
        self.hub_url = hub_url.rstrip("/")
        self.public_url = public_url.rstrip("/")
        self.instance_id = instance_id
        self.registry = registry
        self.api_key = api_key
        self.interval = 5.0  # until the hub says otherwise
        self.registered = False
        self.offered: set[str] = set()  # the models the hub was last told of
        self.draining = False
        self.lease: str | None = None  # from the hub at registration; every later call shows it
        self.on_id_taken: Callable[[], None] = lambda: None  # the node stops itself (fleet/node.py)
        self.id_taken_grace = ID_TAKEN_GRACE
        self._taken_since = 0.0
        self._client = httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {token}"} if token else {})

    def models(self) -> list[dict[str, Any]]:
        return [{"id": p.spec.id, "name": p.spec.name, "chat": p.spec.chat, "n_ctx": p.spec.n_ctx,
                 "max_concurrent": p.local.capacity}
                for p in self.registry.entries() if p.local is not None and p.local.routable]

    def load(self) -> dict[str, dict[str, int]]:
        """Each local model's Load, as the heartbeat carries it."""
        return {p.spec.id: Load(p.local.active, p.local.queued, p.local.capacity).as_dict()
                for p in self.registry.entries() if p.local is not None and p.local.routable}

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """A membership call: this instance's id and, once registered, its lease."""
        return await self._client.post(self.hub_url + path, json={
            "instance_id": self.instance_id, **({"lease": self.lease} if self.lease else {}), **body})

    def offer_changed(self) -> bool:
        """A model was loaded or unloaded here since registering (and some model is still served)."""
        now = {m["id"] for m in self.models()}
        return bool(now) and now != self.offered

    async def register(self) -> None:
        models = self.models()
        response = await self._post("/hub/register", {"url": self.public_url, "models": models,
                                                      "api_key": self.api_key, "load": self.load()})
        if response.status_code == 409:  # another live instance has our id: wait for it to expire, or go
            self._taken_since = self._taken_since or time.monotonic()
            if time.monotonic() - self._taken_since > self.id_taken_grace:
                log.error("instance id %s is taken by another live instance at the hub: stopping", self.instance_id)
                self.on_id_taken()
        if response.status_code != 200:
            raise RuntimeError(f"the hub refused registration ({response.status_code}): {response.text[:300]}")
        self._taken_since = 0.0
        self.lease = response.json()["lease"]
        self.interval = float(response.json().get("heartbeat_interval", self.interval))
        self.registered = True
        self.offered = {m["id"] for m in models}
        log.info("registered with hub %s as %s (%s)", self.hub_url, self.instance_id, self.public_url)

    async def run(self) -> None:
        """Waits for the local models, then registers and heartbeats forever (re-registering if the hub
        forgot this instance, retrying with backoff while it is unreachable)."""
        while self.registry.local_state == "loading":
            await asyncio.sleep(0.2)
        backoff = 1.0
        while True:
            try:
                if not self.registered:
                    if self.draining:
                        return  # never join again on the way out
                    await self.register()
                elif self.offer_changed() and not self.draining:
                    await self.register()  # with the lease: the hub replaces what it knew of this instance
                else:
                    response = await self._post("/hub/heartbeat", {"load": self.load(), "draining": self.draining})
                    if response.status_code == 404:  # the hub forgot us (it restarted): join again
                        self.registered = False
                        continue
                    if response.status_code == 403:  # our id was taken over after we went silent
                        self.registered, self.lease = False, None
                        raise RuntimeError("the hub no longer knows our lease")
                backoff = 1.0
                await asyncio.sleep(self.interval)
            except (httpx.HTTPError, RuntimeError) as exc:
                log.warning("hub %s: %s; retrying in %.0f s", self.hub_url, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def drain(self) -> None:
        """Tells the hub to stop sending new requests here; the ones in flight finish."""
        self.draining = True
        if self.registered:
            try:
                await self._post("/hub/drain", {})
            except httpx.HTTPError as exc:
                log.warning("could not tell the hub about the drain: %s", exc)

    async def leave(self) -> None:
        if self.registered:
            try:
                await self._post("/hub/deregister", {})
            except httpx.HTTPError as exc:
                log.warning("could not deregister from the hub: %s", exc)
        await self._client.aclose()
