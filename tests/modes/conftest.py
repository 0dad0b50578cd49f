"""The two embedded models as real, different members, loaded once for the mode tests."""

from __future__ import annotations

import dataclasses

import pytest

from engines.catalog import find
from engines.errors import Unavailable
from engines.local import LocalEngine
from engines.model_files import resolve_path
from tests.support.scripted import ScriptedEngine, answer
from tests.support.servers import BASE_MODEL, CHAT_MODEL


@pytest.fixture(scope="session")
def engines() -> dict:
    loaded = {}
    for model_id in (CHAT_MODEL, BASE_MODEL):
        spec = dataclasses.replace(find(model_id), n_ctx=2048, max_concurrent=2)
        loaded[model_id] = LocalEngine(spec, resolve_path(spec), max_queue=16, queue_timeout=120)
    return loaded


@pytest.fixture(scope="session")
def lookup(engines: dict):
    """model id -> engine: the real models, one that fails, one that hangs, two scripted moderators and
    "down" (unreachable)."""
    everything = {**engines, "broken": ScriptedEngine(model_id="broken", fault=Unavailable("the model process died")),
                  "hangs": ScriptedEngine(model_id="hangs", hang=True),
                  # moderators whose verdict is known in advance (a real model's is not)
                  "converged": ScriptedEngine(answer('{"converged": true}'), model_id="converged"),
                  "not-converged": ScriptedEngine(answer('{"converged": false}'), model_id="not-converged")}

    def lookup(model_id: str):
        if model_id == "down":  # an instance that cannot be reached
            raise Unavailable("instance 'down' is not reachable")
        return everything[model_id]

    return lookup
