"""The Models tab: the fleet as it is when the page loads (not as when the UI was built), the load
progress bar, and loading, chatting with and unloading a model without a page reload."""

from __future__ import annotations

import asyncio
import shutil
import time

import httpx
import pytest

from engines.catalog import find
from engines.model_files import resolve_path
from engines.registry import ModelRegistry
from fleet.loader import LoadEvent
from playground import build_playground
from playground.models_tab import progress_html
from tests.support import browser
from tests.support.hub_server import HubServer
from tests.support.scripted import ScriptedEngine, answer
from tests.support.servers import CHAT_MODEL, start_server, stop_server, wait_for


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


def test_progress_bar_words_and_escaping():
    assert progress_html(None) == ""
    downloading = progress_html(LoadEvent("downloading", "m", completed=5_000_000, total=10_000_000, fraction=0.4))
    assert '<progress max="100" value="40">' in downloading and "Downloading 5.0 / 10.0 MB" in downloading
    assert "Loading: weights" in progress_html(LoadEvent("loading", "m", stage="weights", fraction=0.85))
    failed = progress_html(LoadEvent("error", "m", message="<img src=x onerror=alert(1)>"))
    assert "<img" not in failed and "&lt;img" in failed and "<progress" not in failed


# --- loading and unloading from the tab, in a browser ------------------------------------------------

HUB_FILE = "test-org/Tiny-GGUF/tiny-chat.Q4_1.gguf"  # served with SmolLM2's bytes by a local hub server
HUB_MODEL = "tiny-chat.q4_1"


@pytest.mark.slow
@pytest.mark.browser
def test_load_from_the_models_tab_then_chat_with_it_without_a_reload(tmp_path):
    spec = find(CHAT_MODEL)
    # 15 MB/s: the download takes several seconds, so the bar is seen moving
    with HubServer({HUB_FILE: resolve_path(spec)}, rate=15e6) as hub:
        server = start_server(tmp_path, env={"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"),
                                             "HF_HUB_DISABLE_XET": "1"})
        try:
            with browser.launch() as chromium:
                page = browser.open_tab(chromium, server.url, "Models")
                page.locator("#load-reference textarea, #load-reference input").first.fill(f"hf://{HUB_FILE}")
                page.locator("#load-reference-btn").click()
                progress = page.locator("#load-reference-progress .load-progress")
                bar_values = set()
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    status = progress.get_attribute("data-status", timeout=60_000)
                    if status == "downloading":
                        bar_values.add(progress.locator("progress").get_attribute("value"))
                    if status in ("ready", "error"):
                        break
                    time.sleep(0.1)
                assert status == "ready", progress.inner_text()
                assert len(bar_values) >= 2, bar_values  # the bar moved while downloading
                page.screenshot(path=str(tmp_path / "models_tab_loaded.png"))
                shutil.copy(tmp_path / "models_tab_loaded.png", "/tmp/models_tab_loaded.png")
                page.locator("#live-models").get_by_text(HUB_MODEL).first.wait_for(timeout=10_000)

                # the Chat tab's picker knows it without a reload; an answer comes from it
                page.get_by_role("tab", name="Chat").click()
                picker = page.locator("input[aria-label='Model']:visible").first
                picker.click()
                page.get_by_role("option", name=HUB_MODEL).click(timeout=20_000)
                page.locator("#chat-input textarea").fill("Say hello.")
                page.locator("#send-btn").click()
                bot = page.locator("#chatbot .bot-row, #chatbot [data-testid='bot']").last
                bot.wait_for(timeout=60_000)
                assert wait_for(lambda: len(bot.inner_text().strip()) > 0, timeout=60)
                requests = httpx.get(server.url + "/health/details").json()["models"][HUB_MODEL]["instances"]
                assert requests[0]["requests"] >= 1  # the answer came from the loaded model

                # a catalog row: Load, then Unload
                page.get_by_role("tab", name="Models").click()
                page.locator("#load-gemma3-270m").click()
                page.locator("#progress-gemma3-270m .load-progress[data-status='ready']").wait_for(timeout=120_000)
                page.locator("#unload-gemma3-270m").wait_for(timeout=20_000)
                assert "gemma3-270m" in [m["id"] for m in httpx.get(server.url + "/v1/models").json()["data"]]
                page.locator("#unload-gemma3-270m").click()
                page.locator("#load-gemma3-270m").wait_for(timeout=60_000)
                assert "gemma3-270m" not in [m["id"] for m in httpx.get(server.url + "/v1/models").json()["data"]]
        finally:
            stop_server(server)
