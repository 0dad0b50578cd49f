"""Hub membership that cannot be hijacked: leases, ids that cannot be taken over, URLs a hub refuses.
In process (the real Hub and registry); the same over HTTP, with real instances: tests/fleet/test_hub.py."""

from __future__ import annotations

import asyncio

import pytest

from engines.catalog import find
from engines.contract import Load
from engines.pool import Instance, Pool
from engines.registry import ModelRegistry
from fleet.hub import Hub, LeaseMismatch, MembershipConflict
from fleet.membership import BadInstanceURL, check_url
from tests.support.scripted import ScriptedEngine, answer
from tests.support.servers import CHAT_MODEL

OFFER = [{"id": CHAT_MODEL, "max_concurrent": 2}]


def run(work):
    async def main():
        return work()
    return asyncio.run(main())  # registration closes replaced engines on the running loop


@pytest.fixture
def hub() -> Hub:
    registry = ModelRegistry()
    registry.add(find(CHAT_MODEL), ScriptedEngine(answer(), model_id=CHAT_MODEL))  # the hub's own "local"
    return Hub(registry, heartbeat_timeout=15)


def test_only_the_lease_holder_can_heartbeat_drain_or_leave(hub):
    lease = run(lambda: hub.register("a", "http://127.0.0.1:8001", OFFER))
    assert hub.heartbeat("a", lease)
    for call in (lambda: hub.heartbeat("a", "guess"), lambda: hub.drain("a", "guess"),
                 lambda: hub.deregister("a", "guess")):
        with pytest.raises(LeaseMismatch):
            run(call)
    assert hub.registry.entry(CHAT_MODEL).instances["a"].state == "healthy"
    assert hub.drain("a", lease) and hub.registry.entry(CHAT_MODEL).instances["a"].state == "draining"
    assert run(lambda: hub.deregister("a", lease)) and "a" not in hub.members


def test_ids_cannot_be_taken_over(hub):
    lease = run(lambda: hub.register("a", "http://127.0.0.1:8001", OFFER))
    with pytest.raises(MembershipConflict):  # a live member, without its lease
        run(lambda: hub.register("a", "http://127.0.0.1:9999", OFFER))
    assert run(lambda: hub.register("a", "http://127.0.0.1:8002", OFFER, lease=lease)) == lease  # its own
    with pytest.raises(MembershipConflict):  # the hub's own model instance
        run(lambda: hub.register("local", "http://127.0.0.1:9999", OFFER))
    hub.members["a"].last_heartbeat -= 60  # gone silent (no heartbeat, no passing probe): its id is free again
    for pool in hub.registry.entries():
        pool.instances["a"].last_seen -= 60
    assert run(lambda: hub.register("a", "http://127.0.0.1:8003", OFFER)) != lease


@pytest.mark.parametrize(("url", "private", "why"), [
    ("http://169.254.169.254/latest/meta-data", True, "169.254.169.254"),
    ("http://metadata.google.internal/", True, "metadata"),
    ("http://127.0.0.1:8000", False, "--hub-allow-private"),
    ("http://10.1.2.3:8000", False, "private address"),
    ("http://0.0.0.0:8000", True, "never calls"),
    ("http://user:pass@127.0.0.1:8000", True, "user or password"),
    ("http://127.0.0.1:8000/#frag", True, "fragment"),
    ("file:///etc/passwd", True, "http"),
    ("http://127.0.0.1:8000", True, None),
])
def test_instance_urls_a_hub_refuses(url, private, why):
    if why is None:
        check_url(url, allow_private=private)
        return
    with pytest.raises(BadInstanceURL, match=why.replace(".", r"\.")):
        check_url(url, allow_private=private)


def test_a_registered_instance_is_trusted_with_twice_what_it_has_shown():
    pool = Pool(find(CHAT_MODEL))
    stranger = pool.add(Instance("x", ScriptedEngine(answer()), kind="remote", source="registered"))
    stranger.reported = Load(max_concurrent=1000)
    assert stranger.capacity == 2
    stranger.proven = 5
    assert stranger.capacity == 10
    configured = pool.add(Instance("y", ScriptedEngine(answer()), kind="remote", source="fleet"))
    configured.reported = Load(max_concurrent=1000)
    assert configured.capacity == 1000  # the operator's own fleet file is trusted


def test_a_keyed_hub_shows_its_fleet_to_the_registration_token_for_hand_overs():
    from fastapi.testclient import TestClient

    from api import create_api
    from fleet.node import Node
    from settings import Settings

    registry = ModelRegistry()
    registry.add(find(CHAT_MODEL), ScriptedEngine(answer(), model_id=CHAT_MODEL))
    settings = Settings(models=[], api_keys=["client-key"], hub_token="fleet-token")
    client = TestClient(create_api(settings, Node("hub", registry, Hub(registry), settings)))

    def details(token: str | None) -> dict:
        return client.get("/health/details", headers={"Authorization": f"Bearer {token}"} if token else {}).json()

    assert "instances" not in str(details(None)) and "instances" not in str(details("guess"))
    assert details("fleet-token")["models"][CHAT_MODEL]["instances"]  # what fleet/lifetime.py reads
    assert details("client-key")["models"][CHAT_MODEL]["instances"]
