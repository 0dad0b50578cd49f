"""One front door for every surface (api/access.py), on a real server with a key, the UI and a token
budget: the OpenAI routes, the Gradio API (named endpoints, queue/join, call/*, uploads), the browser
UI behind a login page, what a caller without a key can still see, and work counted in tokens."""

from __future__ import annotations

import httpx
import pytest
from gradio_client import Client

from tests.support import browser
from tests.support.servers import CHAT_MODEL, start_server, stop_server

KEY, THRIFTY_KEY = "s3cret-key", "another-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
BUDGET = 120  # tokens per minute per key: a 200-token answer spends more than a minute's worth


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("locked"), "--model", CHAT_MODEL, "--api-key", f"{KEY},{THRIFTY_KEY}",
                       "--token-budget", str(BUDGET))
    yield srv
    stop_server(srv)


pytestmark = pytest.mark.slow


def test_every_gradio_surface_needs_the_key(locked):
    with pytest.raises(Exception):  # noqa: B017 - the client cannot even read the config
        Client(locked.url + "/", verbose=False)
    for path, body in [("/gradio_api/call/chat", {"data": ["hi", [], CHAT_MODEL, "", 0.7, 8]}),
                       ("/gradio_api/queue/join", {"data": ["hi"], "fn_index": 0, "session_hash": "x"}),
                       ("/gradio_api/run/chat", {"data": ["hi", [], CHAT_MODEL, "", 0.7, 8]})]:
        refused = httpx.post(locked.url + path, json=body, timeout=30)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key", path
    upload = httpx.post(locked.url + "/gradio_api/upload", files={"files": ("a.txt", b"x")}, timeout=30)
    assert upload.status_code == 401
    assert httpx.get(locked.url + "/config", timeout=30).status_code == 401
    page = httpx.get(locked.url + "/", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_gradio_client_with_the_key_works(locked):
    client = Client(locked.url + "/", verbose=False, headers=AUTH)
    answer = client.predict("Say hi.", [], CHAT_MODEL, "", 0.0, 4, api_name="/chat")
    assert isinstance(answer, str) and answer


def test_a_caller_without_a_key_learns_nothing_about_the_topology(locked):
    open_details = httpx.get(locked.url + "/health/details", timeout=30).json()
    assert set(open_details) == {"status", "version", "models"}
    assert open_details["models"] == {CHAT_MODEL: {"state": "ready"}} and ".gguf" not in str(open_details)
    full = httpx.get(locked.url + "/health/details", headers=AUTH, timeout=30).json()
    assert ".gguf" in str(full) and full["models"][CHAT_MODEL]["instances"]
    assert httpx.get(locked.url + "/metrics", timeout=30).status_code == 401
    assert httpx.get(locked.url + "/metrics", headers=AUTH, timeout=30).status_code == 200
    assert httpx.get(locked.url + "/health", timeout=30).status_code == 200
    assert httpx.get(locked.url + "/api/badge/system", timeout=30).json()["schemaVersion"] == 1


@pytest.mark.browser
def test_the_browser_asks_for_the_key_once_then_the_ui_works(locked):
    with browser.launch() as chromium:
        page = chromium.new_page()
        page.goto(locked.url + "/", wait_until="load")
        assert "/login" in page.url
        page.locator("#key").fill("wrong")
        page.get_by_role("button", name="Enter").click()
        page.get_by_text("That key is not valid").wait_for(timeout=10_000)
        page.locator("#key").fill(KEY)
        page.get_by_role("button", name="Enter").click()
        page.locator("#chat-input textarea").wait_for(timeout=60_000)
        page.locator("#chat-input textarea").fill("Say hi.")
        page.locator("#chat-input textarea").press("Enter")
        page.locator("#chatbot .bot-row, #chatbot [data-testid='bot']").last.wait_for(timeout=60_000)
        page.reload(wait_until="load")  # the session cookie keeps it signed in
        page.locator("#chat-input textarea").wait_for(timeout=60_000)


def test_the_token_budget_counts_tokens_not_requests_on_every_surface(locked):
    """Tokens are spent as they stream (far faster than the bucket refills), so the second request of
    this key already finds its budget gone; the UI draws on the same budget."""
    thrifty = {"Authorization": f"Bearer {THRIFTY_KEY}"}
    long = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Tell a story."}], "max_tokens": 200,
            "ignore_eos": True}
    first = httpx.post(locked.v1 + "/chat/completions", json=long, headers=thrifty, timeout=120)
    assert first.status_code == 200 and first.json()["usage"]["completion_tokens"] == 200
    second = httpx.post(locked.v1 + "/chat/completions", json={**long, "max_tokens": 1}, headers=thrifty, timeout=60)
    assert second.status_code == 429, second.text
    assert "Token budget" in second.json()["error"]["message"] and int(second.headers["Retry-After"]) >= 1
    client = Client(locked.url + "/", verbose=False, headers=thrifty)
    with pytest.raises(Exception, match="Token budget"):
        client.predict("Say hi.", [], CHAT_MODEL, "", 0.0, 4, api_name="/chat")
    assert httpx.post(locked.v1 + "/chat/completions", json={**long, "max_tokens": 1}, headers=AUTH,
                      timeout=60).status_code == 200  # another key has its own budget
