"""An instance SIGKILLed mid-answer behind a hub: the hub continues the same stream on another
instance, and the client sees one uninterrupted answer — the very text (greedy or seeded) it would
have got had nothing happened, one id, the whole usage. Opting out ends the stream with the error.

Every instance here reads each prompt whole, as the continuing one does (a prompt read after a cached
prefix differs in the last digits of its arithmetic): fresh instances, and a separate one for the
reference answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.support.fleet import INSTANCE_ARGS, TOKEN, instances
from tests.support.servers import CHAT_MODEL, Server, samples, start_server, stop_server, total, wait_for


def story(about: str) -> list[dict]:
    return [{"role": "user", "content": f"Tell a story about {about}."}]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Iterator[Server]:
    """Answers each question once, uncached: what an uninterrupted stream would have said."""
    server = start_server(tmp_path_factory.mktemp("reference"), *INSTANCE_ARGS)
    yield server
    stop_server(server)


@dataclass
class Fleet:
    hub: Server
    tmp_path: object
    members: dict[str, Server] = field(default_factory=dict)

    def join(self, name: str) -> None:
        self.members[name] = start_server(self.tmp_path, *INSTANCE_ARGS, "--hub", self.hub.url, "--hub-token", TOKEN,
                                          "--instance-id", name)

    def healthy(self) -> set[str]:
        return {name for name, i in instances(self.hub).items() if i["state"] == "healthy"}


@pytest.fixture
def fleet(tmp_path) -> Iterator[Fleet]:
    hub = start_server(tmp_path, "--model", "none", "--hub-token", TOKEN, "--hub-allow-private", "--no-ui",
                       "--probe-interval", "0.5", "--heartbeat-timeout", "3", "--instance-id", "hub")
    fleet = Fleet(hub, tmp_path)
    try:
        fleet.join("r1")
        fleet.join("r2")
        assert wait_for(lambda: fleet.healthy() == {"r1", "r2"}, timeout=30)
        yield fleet
    finally:
        for member in fleet.members.values():
            stop_server(member)
        stop_server(hub)


def stream_and_kill(fleet: Fleet, body: dict, kill_after: int) -> tuple[list[dict], str]:
    """Streams `body` through the hub and SIGKILLs the instance serving it after `kill_after` chunks."""
    events, victim = [], ""
    with httpx.stream("POST", fleet.hub.v1 + "/chat/completions", json={**body, "stream": True}, timeout=120) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            events.append(json.loads(line[6:]))
            if len(events) == kill_after:
                victim = next(name for name, i in instances(fleet.hub).items() if i["active"])
                fleet.members[victim].process.kill()  # SIGKILL: no drain, the connection just breaks
    return events, victim


def text_of(events: list[dict]) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))


POEM = {"type": "json_schema", "json_schema": {"name": "poem", "schema": {
    "type": "object", "required": ["title", "lines"],
    "properties": {"title": {"type": "string"},
                   "lines": {"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 4}}}}}


@pytest.mark.parametrize("sampling", [
    {"temperature": 0, "ignore_eos": True},
    {"temperature": 0.9, "seed": 11, "ignore_eos": True},
    {"temperature": 0.9, "seed": 5, "response_format": POEM},  # continued token for token: ids come along
], ids=["greedy", "seeded", "schema"])
def test_a_stream_whose_instance_dies_continues_on_another_exactly(fleet, reference, sampling):
    body = {"model": CHAT_MODEL, "messages": story(f"a lighthouse keeper ({sorted(sampling)})"), "max_tokens": 90,
            **sampling}
    reference = httpx.post(reference.v1 + "/chat/completions", json=body, timeout=120).json()
    before = samples(fleet.hub)

    events, victim = stream_and_kill(fleet, {**body, "stream_options": {"include_usage": True}}, kill_after=8)

    assert victim and all("error" not in e for e in events), [e for e in events if "error" in e]
    assert text_of(events) == reference["choices"][0]["message"]["content"]
    assert {e["id"] for e in events} == {events[0]["id"]}  # one stream
    finish = [e["choices"][0]["finish_reason"] for e in events if e.get("choices")][-1]
    assert finish == reference["choices"][0]["finish_reason"]
    assert events[-1]["usage"]["completion_tokens"] == reference["usage"]["completion_tokens"]
    assert events[-1]["usage"]["prompt_tokens"] == reference["usage"]["prompt_tokens"]
    resumed = total(samples(fleet.hub), "playground_requests_total", instance=victim, status="resumed")
    assert resumed - total(before, "playground_requests_total", instance=victim, status="resumed") == 1


def test_opting_out_of_resume_ends_the_stream_with_the_error(fleet):
    body = {"model": CHAT_MODEL, "messages": story("a sailor"), "max_tokens": 90, "ignore_eos": True, "resume": False}
    events, victim = stream_and_kill(fleet, body, kill_after=6)
    assert victim and "error" in events[-1] and events[-1]["error"]["type"] == "server_error"
    assert victim in events[-1]["error"]["message"] and len(text_of(events)) > 0
