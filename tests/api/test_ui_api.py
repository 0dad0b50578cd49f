"""Generated UI over REST against the real server."""

from __future__ import annotations

import httpx
import jsonschema
import pytest

from tests.support.servers import CHAT_MODEL


def post(server, path, body):
    return httpx.post(server.v1 + path, json=body, timeout=120)


def test_generate_spec_html_and_actions(server):
    schema = httpx.get(server.v1 + "/ui/schema").json()
    spec = post(server, "/ui/generate", {"model": CHAT_MODEL, "prompt": "a tip calculator", "seed": 3}).json()
    jsonschema.validate(spec["spec"], schema)
    page = post(server, "/ui/generate", {"model": CHAT_MODEL, "kind": "html", "prompt": "a clock",
                                         "max_tokens": 200}).json()
    assert page["html"].lower().startswith(("<!doctype html", "<html"))
    actions = post(server, "/ui/generate", {"model": CHAT_MODEL, "kind": "actions", "seed": 1, "messages": [
        {"role": "user", "content": "What is Python?"}, {"role": "assistant", "content": "A language."}]}).json()
    assert 2 <= len(actions["actions"]) <= 4


def test_event_round_trip(server):
    spec = {"title": "Tip", "components": [{"type": "number", "id": "bill", "label": "Bill"},
                                           {"type": "button", "id": "go", "label": "Compute"}]}
    answer = post(server, "/ui/event", {"model": CHAT_MODEL, "spec": spec, "event": "go", "values": {"bill": 30}})
    assert answer.status_code == 200 and isinstance(answer.json()["reply"], str)


@pytest.mark.parametrize(("path", "body", "status", "param"), [
    ("/ui/generate", {"model": CHAT_MODEL, "kind": "spec"}, 400, "prompt"),
    ("/ui/generate", {"model": CHAT_MODEL, "kind": "actions"}, 400, "messages"),
    ("/ui/generate", {"model": CHAT_MODEL, "kind": "widget", "prompt": "x"}, 400, "kind"),
    ("/ui/generate", {"model": "nope", "prompt": "x"}, 404, None),
    ("/ui/event", {"model": CHAT_MODEL, "spec": {"title": "x", "components": []}, "event": "go"}, 400, "spec"),
])
def test_bad_requests(server, path, body, status, param):
    response = post(server, path, body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
