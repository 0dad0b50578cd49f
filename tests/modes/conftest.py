"""The two embedded models as real, different members, loaded once for the mode tests."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from engines.catalog import find
from engines.errors import Unavailable
from engines.local import LocalEngine
from engines.model_files import resolve_path

CHAT, BASE = "smollm2-135m-instruct", "gemma3-270m"


@pytest.fixture(scope="session")
def engines() -> dict:
    loaded = {}
    for model_id in (CHAT, BASE):
        spec = dataclasses.replace(find(model_id), n_ctx=2048, max_concurrent=2)
        loaded[model_id] = LocalEngine(spec, resolve_path(spec), max_queue=16, queue_timeout=120)
    return loaded


class Broken:
    """An engine that fails before its first token (a fault no real model produces on demand)."""

    model_id = "broken"

    async def stream(self, request):
        raise Unavailable("the model process died")
        yield  # pragma: no cover - makes this an async generator

    def details(self):
        return {}

    async def aclose(self):
        pass


class Hangs(Broken):
    """An engine that never answers."""

    model_id = "hangs"

    async def stream(self, request):
        await asyncio.sleep(3600)
        yield  # pragma: no cover


def lookup_with(engines: dict, **extra):
    everything = {**engines, "broken": Broken(), "hangs": Hangs()}

    def lookup(model_id: str):
        if model_id == "down":  # an instance that cannot be reached
            raise Unavailable("instance 'down' is not reachable")
        return everything[model_id]

    return lookup
