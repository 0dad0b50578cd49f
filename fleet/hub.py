"""The hub's side of the fleet: remote instances from configuration or registration, kept honest by
a monitor that probes health and drops instances that fell silent.

Registered instances announce themselves (`register`), heartbeat with their load, announce a drain
(no new requests; the ones in flight finish) and leave (`deregister`). An instance with neither a
heartbeat nor a passing probe for `heartbeat_timeout` seconds is marked gone and gets no traffic.
A successor hub imports the memberships, leases included (`export`, `import_members`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engines.contract import Load
from engines.errors import InvalidRequest
from engines.registry import ModelRegistry, remote_spec
from engines.remote import RemoteEngine, Timeouts
from fleet.config import FleetConfig, InstanceConfig
from fleet.membership import new_lease

log = logging.getLogger(__name__)


class MembershipConflict(InvalidRequest):
    """A registration that would take over an instance it does not own."""

    code = "instance_id_taken"


class LeaseMismatch(InvalidRequest):
    """A heartbeat, drain or deregistration without the lease its registration got."""

    code = "invalid_lease"


def _same(given: str | None, lease: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), lease.encode())


@dataclass
class Member:
    """A registered instance: where it is and which models it serves."""

    instance_id: str
    url: str
    offers: list[dict[str, Any]]  # the models as registered (id, name, chat, n_ctx, max_concurrent)
    api_key: str | None
    lease: str  # the secret every later call of this membership shows
    last_heartbeat: float = field(default_factory=time.monotonic)

    @property
    def models(self) -> list[str]:
        return [offer["id"] for offer in self.offers]


class Hub:
    def __init__(self, registry: ModelRegistry, *, heartbeat_timeout: float = 15.0, probe_interval: float = 5.0,
                 timeouts: Timeouts | None = None):
        self.registry = registry
        self.heartbeat_timeout = heartbeat_timeout
        self.probe_interval = probe_interval
        self.timeouts = timeouts or Timeouts()
        self.members: dict[str, Member] = {}

    @property
    def heartbeat_interval(self) -> float:
        return max(self.heartbeat_timeout / 3, 0.2)

    # -- configured instances --

    def add_configured(self, config: FleetConfig, *, source: str, env: Mapping[str, str] = os.environ) -> None:
        for model_id, instance in config.remote_instances():
            engine = self._engine(model_id, instance, env)
            pool = self.registry.pool(remote_spec(model_id))
            name = _unique(instance.display_name(), pool.instances)
            self.registry.add_remote(model_id, name, engine, source=source, max_concurrent=instance.max_concurrent)

    def _engine(self, model_id: str, instance: InstanceConfig, env: Mapping[str, str]) -> RemoteEngine:
        key = env.get(instance.api_key_env) if instance.api_key_env else None
        if instance.api_key_env and not key:
            log.warning("%s: the env var %s is not set; calling %s without a key",
                        model_id, instance.api_key_env, instance.url)
        timeouts = Timeouts(instance.connect_timeout, instance.first_token_timeout, instance.idle_timeout)
        return RemoteEngine(model_id, instance.url, api_key=key, upstream_model=instance.model, timeouts=timeouts,
                            label=instance.display_name(),
                            headers=instance.headers, probe=instance.probe, continues=instance.continues)

    # -- registration --

    def register(self, instance_id: str, url: str, models: list[dict[str, Any]], *, api_key: str | None = None,
                 load: dict[str, Load] | None = None, lease: str | None = None) -> str:
        """Adds the instance and returns its lease. Another live instance's id, or the name of an instance
        this hub did not get by registration (its own, the fleet file's), cannot be taken over."""
        if not models:
            raise InvalidRequest("Register at least one model.", param="models")
        current = self.members.get(instance_id)
        if current is not None and not self._expired(current) and not _same(lease, current.lease):
            raise MembershipConflict(f"Instance '{instance_id}' is registered and alive; pick another id.")
        for model in models:
            pool = self.registry.entry(model["id"]) if model["id"] in self.registry.ids else None
            taken = pool.instances.get(instance_id) if pool is not None else None
            if taken is not None and taken.source != "registered":
                raise MembershipConflict(f"'{instance_id}' names an instance this hub did not get by registration.")
        self._forget(instance_id)  # a re-registration (or an expired member's id) replaces what was known
        base = url.rstrip("/").removesuffix("/v1") + "/v1"
        for model in models:
            spec = remote_spec(model["id"], name=model.get("name"), n_ctx=model.get("n_ctx") or 0,
                               chat=model.get("chat", True))
            engine = RemoteEngine(model["id"], base, api_key=api_key, timeouts=self.timeouts, label=instance_id,
                                  continues=True)  # it registered: it is this app, which continues answers
            instance = self.registry.add_remote(model["id"], instance_id, engine, source="registered",
                                                max_concurrent=model.get("max_concurrent") or 2, spec=spec)
            instance.n_ctx = model.get("n_ctx") or 0
        member = Member(instance_id, url, models, api_key, lease=lease or new_lease())
        self.members[instance_id] = member
        self.heartbeat(instance_id, member.lease, load)
        log.info("instance %s registered at %s serving %s", instance_id, url, ", ".join(m["id"] for m in models))
        return member.lease

    # -- succession: a new hub takes over the fleet of the one it replaces --

    def export(self) -> list[dict[str, Any]]:
        """Every live membership, leases included (for the hub token's holder only: api/hub.py)."""
        return [{"instance_id": m.instance_id, "url": m.url, "models": m.offers, "api_key": m.api_key,
                 "lease": m.lease, "draining": any(i.state == "draining" for i, _ in self._instances(m))}
                for m in self.members.values() if not self._expired(m)]

    def import_members(self, exported: list[dict[str, Any]]) -> None:
        """Takes over a predecessor's memberships with their leases, so the instances' next heartbeats,
        whichever hub they reach, are answered as usual."""
        for entry in exported:
            self.register(entry["instance_id"], entry["url"], entry["models"], api_key=entry.get("api_key"),
                          lease=entry["lease"])
            if entry.get("draining"):
                self.drain(entry["instance_id"], entry["lease"])

    def _expired(self, member: Member) -> bool:
        """Silent for longer than the heartbeat timeout: no heartbeat, and no health probe that passed
        (during a hub hand-off, heartbeats sent to a shared address reach either hub; probes do not)."""
        probed = max((instance.last_seen for instance, _ in self._instances(member)), default=0.0)
        silent = min(time.monotonic() - member.last_heartbeat, time.time() - probed)
        return silent > self.heartbeat_timeout

    def _member(self, instance_id: str, lease: str) -> Member | None:
        """The member if `lease` is its own; None when unknown; LeaseMismatch when the lease is wrong."""
        member = self.members.get(instance_id)
        if member is not None and not _same(lease, member.lease):
            raise LeaseMismatch(f"That is not the lease of instance '{instance_id}'.")
        return member

    def heartbeat(self, instance_id: str, lease: str, load: dict[str, Load] | None = None,
                  draining: bool = False) -> bool:
        """False when the instance is unknown (it should register again)."""
        member = self._member(instance_id, lease)
        if member is None:
            return False
        member.last_heartbeat = time.monotonic()
        for instance, model_id in self._instances(member):
            instance.last_seen = time.time()
            if load and model_id in load:
                instance.reported = load[model_id]
            if draining:
                instance.state = "draining"
            elif instance.state == "gone":
                instance.state = "healthy"
        return True

    def drain(self, instance_id: str, lease: str) -> bool:
        return self.heartbeat(instance_id, lease, draining=True)

    def deregister(self, instance_id: str, lease: str) -> bool:
        known = self._member(instance_id, lease) is not None
        self._forget(instance_id)
        if known:
            log.info("instance %s left", instance_id)
        return known

    def _instances(self, member: Member):
        for model_id in member.models:
            pool = self.registry.entry(model_id) if model_id in self.registry.ids else None
            if pool is not None and member.instance_id in pool.instances:
                yield pool.instances[member.instance_id], model_id

    def _forget(self, instance_id: str) -> None:
        member = self.members.pop(instance_id, None)
        if member is None:
            return
        for model_id in member.models:
            instance = self.registry.entry(model_id).remove(instance_id)
            self.registry.discard_if_empty(model_id)
            if instance is not None and instance.engine is not None:
                asyncio.get_running_loop().create_task(_close_later(instance.engine, instance))

    # -- monitor --

    def expire(self) -> None:
        for member in self.members.values():
            if self._expired(member):
                for instance, _ in self._instances(member):
                    if instance.state != "gone":
                        log.warning("instance %s missed its heartbeats: gone", member.instance_id)
                        instance.state, instance.error = "gone", "heartbeats stopped"

    async def run(self) -> None:
        """Forever: expire silent members often, probe every pool every `probe_interval` seconds."""
        tick = min(1.0, self.probe_interval, self.heartbeat_timeout / 4)
        next_probe = 0.0
        while True:
            self.expire()
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + self.probe_interval
                await asyncio.gather(*(pool.check() for pool in self.registry.entries()), return_exceptions=True)
            await asyncio.sleep(tick)


async def _close_later(engine, instance) -> None:
    """Closes a removed instance's connections once the requests still running on it are done."""
    while instance.in_flight:
        await asyncio.sleep(0.2)
    await engine.aclose()


def _unique(name: str, taken: Mapping[str, Any]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}#{n}", n + 1
    return candidate
