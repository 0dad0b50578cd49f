"""The Generated UI tab in a real browser: every component type renders, a button's event reaches
the model, and an HTML artifact's scripts run but cannot touch the page or the API."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from gradio_client import Client

from tests.support import browser
from tests.support.servers import CHAT_MODEL

EVERY_COMPONENT = {"title": "All parts", "components": [
    {"type": "markdown", "text": "Hello **world**"},
    {"type": "row", "children": [{"type": "textbox", "id": "name", "label": "Name", "value": "Ada"},
                                 {"type": "number", "id": "age", "label": "Age", "value": 36}]},
    {"type": "column", "children": [
        {"type": "slider", "id": "tip", "label": "Tip", "minimum": 0, "maximum": 30, "value": 15},
        {"type": "dropdown", "id": "planet", "label": "Planet", "choices": ["Mars", "Venus"], "value": "Mars"}]},
    {"type": "radio", "id": "size", "label": "Size", "choices": ["Small", "Large"]},
    {"type": "checkbox", "id": "agree", "label": "Agree", "value": True},
    {"type": "table", "headers": ["col_a", "col_b"], "rows": [["cell_1", "cell_2"]]},
    {"type": "button", "id": "submit", "label": "Submit"}]}

HOSTILE_PAGE = """<!doctype html><html><head></head><body><p id="me">artifact</p><script>
const results = {};
try { results.parent = parent.document.title; } catch (e) { results.parent = "blocked"; }
try { top.document.body.innerHTML = "pwned"; results.write = "wrote"; } catch (e) { results.write = "blocked"; }
try { results.cookie = document.cookie; } catch (e) { results.cookie = "blocked"; }
fetch("/v1/models").then(() => { results.fetch = "reached"; }, () => { results.fetch = "blocked"; })
  .finally(() => playground.send("probe", JSON.stringify(results)));
</script></body></html>"""


@pytest.fixture(scope="module")
def page(server):
    with browser.launch() as chromium:
        page = browser.open_tab(chromium, server.url, "Generated UI", height=1400)
        page.get_by_text("Try a spec or a page by hand").click()
        yield page


def wait_until(predicate, seconds=60.0):
    """True as soon as `predicate` holds (checked once more it might not: the re-rendered controls of an
    answered event can put the reply back into "processing" for a moment)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.browser
def test_every_component_type_renders_and_a_button_reaches_the_model(page):
    page.locator("#genui-spec-json .cm-content").fill(json.dumps(EVERY_COMPONENT))
    page.locator("#genui-load").click()
    page.locator("#genui-title").wait_for(timeout=30_000)
    for elem_id in ("name", "age", "tip", "planet", "size", "agree", "submit"):
        assert page.locator(f"#genui-{elem_id}").count() == 1, elem_id
    assert page.locator("#genui-name input, #genui-name textarea").first.input_value() == "Ada"
    assert "cell_2" in page.locator(".genui-table").inner_text()
    assert page.get_by_text("Hello world").count() == 1  # markdown rendered, not shown as source
    page.locator("#genui-submit").click()
    reply = page.locator("#genui-reply")
    # Any reply proves the press reached the model (unseeded, it may be as short as "Submitted.").
    # The model may rewrite the whole spec under a grammar: on two busy cores that took up to 60 s.
    replied = wait_until(lambda: reply.inner_text().strip() and "processing" not in reply.inner_text(), 300)
    assert replied, f"no reply: {reply.inner_text()!r}; toasts: {page.locator('.toast-body').all_inner_texts()}"


@pytest.mark.browser
def test_an_invalid_spec_is_reported_and_nothing_breaks(page):
    page.locator("#genui-spec-json .cm-content").fill('{"title": "x", "components": [{"type": "video"}]}')
    page.locator("#genui-load").click()
    toast = page.get_by_text("Cannot render this spec")
    toast.first.wait_for(timeout=20_000)
    assert page.locator("#genui-generate").is_enabled()


@pytest.mark.browser
def test_artifact_scripts_run_but_cannot_reach_the_page_or_the_api(page):
    page.locator("#genui-html .cm-content").fill(HOSTILE_PAGE)
    page.locator("#genui-show").click()
    frame = page.frame_locator("#genui-artifact iframe.playground-artifact")
    frame.locator("#me").wait_for(timeout=20_000)  # the artifact rendered and its scripts run
    events = page.locator("#genui-events")
    assert wait_until(lambda: "probe" in events.inner_text(), 30)
    shown = events.inner_text().replace("\n", "")
    for probe in ("parent", "write", "cookie", "fetch"):  # the artifact reports what it could reach
        assert f'"{probe}":"blocked"' in shown, shown
    assert page.locator("#genui-generate").is_visible() and page.evaluate("document.body.innerText.trim()") != "pwned"
    sandbox = page.locator("#genui-artifact iframe").get_attribute("sandbox")
    assert sandbox == "allow-scripts"


def test_gradio_client_generates_a_spec_and_sends_an_event(server):
    client = Client(server.url + "/", verbose=False)
    result = client.predict("a tip calculator", CHAT_MODEL, "controls", api_name="/generate_ui")
    spec = result["spec"]
    assert spec["components"] and spec["title"]
    answer = client.predict(EVERY_COMPONENT, "submit", {"tip": 20}, CHAT_MODEL, api_name="/ui_event")
    assert isinstance(answer["reply"], str)
    with pytest.raises(Exception, match="Describe the interface"):
        client.predict("  ", CHAT_MODEL, "controls", api_name="/generate_ui")


PHONES_HOME = """<img src="{beacon}/img?{tag}"><link rel="stylesheet" href="{beacon}/css?{tag}">
<script>fetch("{beacon}/fetch?{tag}").catch(() => 0); fetch("/v1/models?{tag}").catch(() => 0);
new Image().src = "/same-origin-img?{tag}";</script><p id="hostile-{tag}">{tag}</p>"""
WRAPPINGS = {  # where a naive hardening would put the policy somewhere the browser ignores it
    "header-first": "<!doctype html><html><header>top</header><head><title>t</title></head><body>{body}</body></html>",
    "commented-head": "<!-- <head> --><html><body>{body}</body></html>",
    "no-head": "{body}",
}


@pytest.fixture(scope="module")
def beacon():
    """A server that records every request: anything reaching it left an artifact."""
    hits: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    recorder = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{recorder.server_port}", hits
    recorder.shutdown()


@pytest.mark.browser
@pytest.mark.parametrize("wrapping", list(WRAPPINGS))
def test_no_request_leaves_an_artifact_however_the_page_is_written(page, server, beacon, wrapping):
    """Judged where requests would arrive (Chromium reports some that its CSP then stops)."""
    url, hits = beacon
    page.locator("#genui-html .cm-content").fill(WRAPPINGS[wrapping].format(body=PHONES_HOME.format(
        beacon=url, tag=wrapping)))
    page.locator("#genui-show").click()
    frame = page.frame_locator("#genui-artifact iframe.playground-artifact")
    frame.locator(f"#hostile-{wrapping}").wait_for(timeout=20_000)  # rendered, its scripts ran
    time.sleep(1.5)
    assert [hit for hit in hits if wrapping in hit] == []
    assert [line for line in server.log().splitlines() if f"?{wrapping}" in line] == []  # nor at the app
