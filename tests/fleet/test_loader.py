"""The run-time model loader's pure parts: references, the memory check, who may manage models, the
registry's unload, and jobs watched by several callers (a real load of the embedded model)."""

from __future__ import annotations

import asyncio
import time

import pytest

from engines import catalog
from engines.contract import Chunk, GenerationRequest
from engines.errors import InsufficientMemory, InvalidRequest, UnknownModel
from engines.model_files import spec_for
from engines.personas import Persona
from engines.registry import ModelRegistry
from fleet.loader import ModelLoader, available_bytes, hosted_spec, may_manage, needed_bytes
from settings import Settings
from tests.support.scripted import ScriptedEngine, answer
from tests.support.servers import CHAT_MODEL


def test_hub_file_references():
    spec = spec_for("hf://unsloth/Qwen3-4B-GGUF/quants/Qwen3-4B-Q4_K_M.gguf")
    assert (spec.id, spec.hf_repo, spec.hf_file) == ("qwen3-4b-q4_k_m", "unsloth/Qwen3-4B-GGUF",
                                                    "quants/Qwen3-4B-Q4_K_M.gguf")
    for bad in ("hf://only-repo/file.gguf", "hf://a/b/../c.gguf", "hf://a/b/c.bin", "hf://a/b/c d.gguf"):
        with pytest.raises(UnknownModel, match="hf://owner/repo/file.gguf"):
            spec_for(bad)
    with pytest.raises(InvalidRequest, match="Name a model"):
        hosted_spec("  ", Settings())
    assert hosted_spec(CHAT_MODEL, Settings(ctx=1024)).n_ctx == 1024  # the settings' overrides apply


def test_memory_check_names_what_is_needed_and_what_is_free():
    loader = ModelLoader(ModelRegistry(), Settings())
    loader.check_memory(catalog.find(CHAT_MODEL), 98_000_000)  # 0.37 GB fits any machine running this
    with pytest.raises(InsufficientMemory, match=r"needs about .* GB of memory .* this machine has .* GB free"):
        loader.check_memory(catalog.find("gpt-oss-20b"), available_bytes())  # weights alone use it all
    limited = ModelLoader(ModelRegistry(), Settings(memory_limit=0.3))
    with pytest.raises(InsufficientMemory, match="--memory-limit 0.3 GB leaves 0.30 GB"):
        limited.check_memory(catalog.find(CHAT_MODEL), 98_000_000)
    assert needed_bytes(10**9) == 1_200_000_000 + 256_000_000
    limited.check_memory(catalog.find(CHAT_MODEL), None)  # size unknown: checked after the download


def test_only_key_holders_or_this_machine_may_manage_models():
    assert may_manage(keys_set=True, client_host="203.0.113.9", forwarded=True)  # the door checked the key
    assert may_manage(keys_set=False, client_host="127.0.0.1", forwarded=False)
    assert not may_manage(keys_set=False, client_host="127.0.0.1", forwarded=True)  # a tunnel on this machine
    assert not may_manage(keys_set=False, client_host="203.0.113.9", forwarded=False)
    assert not may_manage(keys_set=False, client_host=None, forwarded=False)


def test_unload_drains_and_takes_the_models_personas_along():
    async def scenario():
        registry = ModelRegistry()
        engine = ScriptedEngine([Chunk(text="hel")], model_id=CHAT_MODEL, hang=True)  # never finishes
        registry.add(catalog.find(CHAT_MODEL), engine)
        registry.add_persona(Persona(id="critic", name="Critic", system="Be critical."))
        pool = registry.entry(CHAT_MODEL)

        async def ask():
            async for _ in registry.get(CHAT_MODEL).stream(GenerationRequest(messages=[])):
                pass

        running = asyncio.create_task(ask())  # an answer that never ends
        await asyncio.sleep(0.05)
        assert pool.local.in_flight == 1
        started = time.monotonic()
        unloading = asyncio.create_task(registry.remove_local(CHAT_MODEL, drain_timeout=0.3))
        await asyncio.sleep(0.05)
        assert pool.local.state == "draining" and not pool.local.routable  # no new requests meanwhile
        await unloading
        assert time.monotonic() - started >= 0.3  # it waited for the answer in flight, up to the limit
        running.cancel()
        assert CHAT_MODEL not in registry.ids and "critic" not in registry.personas
        registry.add(catalog.find(CHAT_MODEL), ScriptedEngine(answer("again"), model_id=CHAT_MODEL))
        assert "critic" in registry.personas  # back with its model
        with pytest.raises(UnknownModel):
            await registry.remove_local("nope")

    asyncio.run(scenario())


@pytest.mark.slow
def test_two_watchers_follow_one_real_load():
    async def scenario():
        registry = ModelRegistry()
        loader = ModelLoader(registry, Settings(threads=1))
        job = await loader.start("gemma3-270m")
        assert await loader.start("gemma3-270m") is job  # a second load follows the first
        seen = await asyncio.gather(*(collect(loader, job) for _ in range(2)))
        for events in seen:
            assert events[-1].status == "ready" and events[-1].fraction == 1.0
            fractions = [e.fraction for e in events]
            assert fractions == sorted(fractions)  # the bar only moves forward
        assert "gemma3-270m" in registry.ids and registry.entry("gemma3-270m").state == "ready"
        again = await loader.start("gemma3-270m")
        assert again is not job and "already hosted" in again.last.message
        await loader.unload("gemma3-270m")
        assert "gemma3-270m" not in registry.ids

    async def collect(loader, job):
        return [event async for event in loader.watch(job)]

    asyncio.run(scenario())
