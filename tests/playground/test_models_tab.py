"""The Models tab shows the fleet as it is when the page loads, not as it was when the UI was built."""

from __future__ import annotations

import asyncio

from engines.catalog import find
from engines.registry import ModelRegistry
from playground import build_playground
from tests.support.scripted import ScriptedEngine, answer
from tests.support.servers import CHAT_MODEL


def on_page_load(blocks, elem_id: str):
    """What the page's load events put into the component `elem_id`, computed now (as a page load would)."""
    for fn in blocks.fns.values():
        ids = [getattr(output, "elem_id", None) for output in fn.outputs]
        if any(event == "load" for _, event in fn.targets) and elem_id in ids and not fn.inputs:
            return fn.fn()[ids.index(elem_id)]
    raise AssertionError(f"no page-load event updates #{elem_id}")


def test_a_page_opened_after_loading_shows_the_model_online():
    spec = find(CHAT_MODEL)
    registry = ModelRegistry()
    registry.add(spec)  # still loading while the UI is built, as at every start
    blocks = build_playground(registry)
    asyncio.run(registry.load(spec, lambda: ScriptedEngine(answer(), model_id=CHAT_MODEL)))
    assert on_page_load(blocks, "fleet-summary").startswith("**1/1 models online**")
    rows = on_page_load(blocks, "live-models")
    assert [(row[0], row[3]) for row in rows] == [(CHAT_MODEL, "healthy")]
