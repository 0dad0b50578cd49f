"""A small fleet on loopback: two instances configured in a fleet file, a hub in front of them,
and a scripted upstream that hangs after its first token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from tests.support.fleet import INSTANCE_ARGS, TOKEN, hanging_app, instances
from tests.support.servers import CHAT_MODEL, Server, free_port, start_server, stop_server, wait_for


@dataclass
class Fleet:
    hub: Server
    a: Server
    b: Server
    victim_port: int  # the only instance of the alias "victim", started and killed by the tests
    tmp_path: object


@pytest.fixture(scope="module")
def hanging_upstream() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(hanging_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, timeout=10)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, hanging_upstream) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("fleet")
    a = start_server(tmp, *INSTANCE_ARGS, "--instance-id", "a")
    b = start_server(tmp, *INSTANCE_ARGS, "--instance-id", "b")
    victim_port = free_port()
    (tmp / "fleet.yaml").write_text(f"""
models:
  {CHAT_MODEL}:
    instances:
      - {{url: {a.v1}, name: a, continues: true}}
      - {{url: {b.v1}, name: b, continues: true}}
  victim:
    instances:
      - {{url: "http://127.0.0.1:{victim_port}/v1", name: victim, model: {CHAT_MODEL}}}
  hangs:
    instances:
      - {{url: "{hanging_upstream}", name: hangs, probe: none, idle_timeout: 1}}
""")
    hub = start_server(tmp, "--fleet", str(tmp / "fleet.yaml"), "--hub-token", TOKEN, "--hub-allow-private",
                       "--probe-interval", "0.5",
                       "--heartbeat-timeout", "2", "--instance-id", "hub")
    assert wait_for(lambda: all(i["state"] == "healthy" for i in instances(hub).values()))
    yield Fleet(hub, a, b, victim_port, tmp)
    for server in (hub, a, b):
        stop_server(server)
