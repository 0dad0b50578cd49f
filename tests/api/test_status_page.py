"""The public status page (api/status.py): open like /health, a strict Content-Security-Policy, no data
of its own — what it shows comes from /health/details and /api/badge/system, redacted for a caller
without a key — and, in headless Chromium, a page that redraws itself and shows hostile names as text.

The fleet here is a real instance with keys set plus a registered member whose model id and instance
id are markup (registrations are untrusted input on a public hub) and whose URL answers nothing."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from api import create_api
from engines.registry import ModelRegistry
from fleet.hub import Hub
from fleet.node import Node
from settings import Settings
from tests.support import ROOT, browser
from tests.support.servers import CHAT_MODEL, free_port, start_server, stop_server, wait_for

KEY, HUB_TOKEN = "status-key", "status-hub-token"
AUTH = {"Authorization": f"Bearer {KEY}"}
HOSTILE_MODEL = '<img src=x onerror="window.pwned=1">'
MEMBER = "secret-runner-7<script>window.pwned=2</script>"
SCREENSHOT, PUBLIC_SCREENSHOT = Path("/tmp/status_page.png"), Path("/tmp/status_page_public.png")
STATUS_JS = ROOT / "api" / "status_page" / "status.js"


class Markup(HTMLParser):
    """Every start tag with its attributes, and whether any <script>/<style> carries inline text."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.inline = False
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._open = tag

    def handle_data(self, data):
        self.inline |= self._open in ("script", "style") and bool(data.strip())

    def handle_endtag(self, tag):
        self._open = None


def page_fetches() -> list[str]:
    """The paths the page's script reads its figures from, as the script itself names them."""
    return re.findall(r'fetchJson\("(/[^"]+)"\)', STATUS_JS.read_text())


# -- quick tier: the real FastAPI core in-process, keys set, no model --

def test_page_and_its_files_are_open_with_a_strict_policy():
    settings = Settings(models=[], api_keys=[KEY])
    registry = ModelRegistry()
    app = create_api(settings, Node("test", registry, Hub(registry), settings))

    async def get(path: str, **headers) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.get(path, headers=headers)

    page = asyncio.run(get("/status", accept="text/html"))  # a browser without a key is not sent to /login
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in page.headers["content-security-policy"]
    markup = Markup()
    markup.feed(page.text)
    assert not markup.inline and not any("style" in attrs or any(a.startswith("on") for a in attrs)
                                         for _, attrs in markup.tags)  # nothing the policy would have to allow
    scripts = [attrs["src"] for tag, attrs in markup.tags if tag == "script"]
    sheets = [attrs["href"] for tag, attrs in markup.tags if tag == "link" and attrs.get("rel") == "stylesheet"]
    assert scripts == ["/status.js"] and sheets == ["/status.css"]
    for path, media in [("/status.js", "text/javascript"), ("/status.css", "text/css")]:
        answer = asyncio.run(get(path))
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(media), path
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert set(page_fetches()) == {"/health/details", "/api/badge/system"}
    assert asyncio.run(get("/health/details")).json().keys() == {"status", "version", "models"}  # what it reads


# -- a real server with keys, the UI mounted, and a hostile registered member --

@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("status"), "--model", CHAT_MODEL, "--api-key", KEY,
                       "--hub-token", HUB_TOKEN, "--hub-allow-private")
    silent = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the member is listed, never healthy
    registered = httpx.post(srv.url + "/hub/register", headers={"Authorization": f"Bearer {HUB_TOKEN}"}, timeout=30,
                            json={"instance_id": MEMBER, "url": silent, "models": [{"id": HOSTILE_MODEL}]})
    assert registered.status_code == 200, registered.text
    yield srv, silent
    stop_server(srv)


@pytest.mark.slow
def test_the_page_is_served_before_the_ui_and_without_a_key(fleet):
    srv, _ = fleet
    page = httpx.get(srv.url + "/status", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200 and "/status.js" in page.text and "gradio" not in page.text.lower()
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(srv.url + "/", headers={"Accept": "text/html"}, timeout=30).status_code == 303  # UI: login


@pytest.mark.slow
def test_what_the_page_reads_without_a_key_names_no_instance(fleet):
    srv, silent = fleet
    port = silent.rsplit(":", 1)[1]
    for path in page_fetches():
        public = httpx.get(srv.url + path, timeout=30)
        assert public.status_code == 200, path
        for secret in ("secret-runner-7", port, ".gguf", '"instances"', "instance_id"):
            assert secret not in public.text, (path, secret)
    models = httpx.get(srv.url + "/health/details", timeout=30).json()["models"]
    assert set(models) == {CHAT_MODEL, HOSTILE_MODEL} and models[CHAT_MODEL] == {"state": "ready"}
    full = httpx.get(srv.url + "/health/details", headers=AUTH, timeout=30).text
    assert "secret-runner-7" in full and port in full and ".gguf" in full  # the same reads with a key say it all


def _badge_matches(page, srv) -> bool:
    badge = httpx.get(srv.url + "/api/badge/system", timeout=30).json()
    shown = page.locator("#badge .message").text_content()
    return shown == badge["message"] and page.locator("#badge").get_attribute("data-color") == badge["color"]


def _speed_matches(row, srv) -> bool:
    details = httpx.get(srv.url + "/health/details", headers=AUTH, timeout=30).json()
    local = next(i for i in details["models"][CHAT_MODEL]["instances"] if i["kind"] == "local")
    speed = local["tokens_per_second"]  # 0 until an answer is measured: the page says "—"
    shown = row.locator('td[data-column="tokens/s"]').text_content()
    return shown == "—" if not speed else shown != "—" and float(shown) == speed


@pytest.mark.browser
def test_a_visitor_without_a_key_sees_states_only(fleet):
    srv, silent = fleet
    with browser.launch() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        responses = []  # what the page's script fetched (read after: no page calls inside an event handler)
        page.on("response", lambda response: responses.append(response) if "/status" not in response.url else None)
        refused = []  # anything of the page's own that its policy blocked
        page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
                else None)
        page.goto(srv.url + "/status", wait_until="load")
        chat = page.locator(f'section.model[data-model="{CHAT_MODEL}"]')
        chat.locator(".state").get_by_text("ready", exact=True).wait_for(timeout=30_000)
        assert page.locator("tr[data-instance]").count() == 0 and page.locator("#redacted").is_visible()
        assert wait_for(lambda: _badge_matches(page, srv), timeout=15)
        # the hostile model id is a heading's text: no element made of it, nothing run
        assert page.locator("section.model h2").get_by_text(HOSTILE_MODEL, exact=True).count() == 1
        assert page.locator("img").count() == 0 and page.evaluate("window.pwned") is None
        bodies = [response.text() for response in responses]
        assert bodies and not any("secret-runner-7" in body or silent in body for body in bodies)
        assert "secret-runner-7" not in page.content() and refused == []
        page.screenshot(path=str(PUBLIC_SCREENSHOT), full_page=True)


@pytest.mark.browser
def test_a_signed_in_visitor_sees_instances_and_the_page_keeps_up(fleet):
    srv, silent = fleet
    with browser.launch() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(srv.url + "/login?next=/status", wait_until="load")
        page.locator("#key").fill(KEY)
        page.get_by_role("button", name="Enter").click()
        page.wait_for_url("**/status")
        local = page.locator(f'section.model[data-model="{CHAT_MODEL}"] tr[data-instance]')
        local.first.wait_for(timeout=30_000)
        member = page.locator("tr[data-instance]").filter(has_text="secret-runner-7")
        member.wait_for(timeout=30_000)
        assert member.locator('td[data-column="instance"]').text_content() == MEMBER  # markup shown as text
        assert page.locator("img, script:not([src])").count() == 0 and page.evaluate("window.pwned") is None
        assert "version" in page.locator("#summary").text_content() and "up " in page.locator("#summary").text_content()

        requests = local.first.locator('td[data-column="requests"]')
        before, updated = int(requests.text_content()), page.locator("#updated").text_content()
        assert re.fullmatch(r"updated \d\d:\d\d:\d\d", updated)
        answer = httpx.post(srv.url + "/v1/chat/completions", headers=AUTH, timeout=120, json={
            "model": CHAT_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Count from 1 to 10."}]})
        assert answer.status_code == 200
        # no reload: the page's own refresh brings the new request in
        assert wait_for(lambda: int(requests.text_content()) == before + 1, timeout=20)
        assert page.locator("#updated").text_content() != updated
        assert wait_for(lambda: _speed_matches(local.first, srv), timeout=15)
        assert wait_for(lambda: _badge_matches(page, srv), timeout=15)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
