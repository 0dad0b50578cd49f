"""Requests built to crash, wedge or confuse the server get a 400 naming the field, and the server
goes on serving. Real app process, real model."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.servers import CHAT_MODEL


def nested(depth: int) -> str:
    """A schema nested `depth` objects deep, as JSON text (too deep for Python's own encoder)."""
    return '{"type": "object", "properties": {"a": ' * depth + '{"type": "string"}' + '}, "required": ["a"]}' * depth


HOSTILE_SCHEMAS = {  # each of these crashed (SIGSEGV), exhausted memory or recursed before the limits
    "maxLength": ({"type": "string", "maxLength": 1_000_000}, "schema.maxLength"),
    "minLength": ({"type": "string", "minLength": 200_000_000}, "schema.minLength"),
    "maxItems": ({"type": "array", "items": {"type": "integer"}, "maxItems": 500_000}, "schema.maxItems"),
    "pattern": ({"type": "string", "pattern": "^a{0,300000}$"}, "schema.pattern"),
    "depth": (nested(3000), None),  # deeper than the JSON parser goes: the body itself is refused
    "depth-200": (nested(200), "schema"),
    "enum": ({"enum": list(range(5000))}, "schema"),
}


def chat(server, **fields) -> httpx.Response:
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Name a city."}], "max_tokens": 8, **fields}
    text = json.dumps(body)
    if isinstance(fields.get("response_format", {}).get("json_schema", {}).get("schema"), str):  # raw JSON text
        text = text.replace(json.dumps(fields["response_format"]["json_schema"]["schema"]),
                            fields["response_format"]["json_schema"]["schema"])
    return httpx.post(server.v1 + "/chat/completions", content=text, timeout=60,
                      headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("name", list(HOSTILE_SCHEMAS))
def test_a_schema_over_the_limits_is_a_400_and_the_server_goes_on(server, name):
    schema, param = HOSTILE_SCHEMAS[name]
    response = chat(server, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param if param is None else error["param"].startswith("response_format.json_schema."
                                                                                   + param), error
    assert chat(server).status_code == 200
    assert httpx.get(server.url + "/health").status_code == 200


def test_a_schema_within_the_limits_still_constrains_the_answer(server):
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 200}}, "required": ["city"]}
    response = chat(server, max_tokens=60,
                    response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"].startswith("{")


@pytest.mark.parametrize(("fields", "param"), [
    ({"stop": ["x" * 300]}, "stop"),
    ({"stop": [str(i) for i in range(17)]}, "stop"),
    ({"tool_choice": "auto"}, None),
    ({"logit_bias": {"notatoken": 1}}, "logit_bias"),
    ({"logit_bias": {"42": 101}}, "logit_bias"),
])
def test_fields_checked_before_anything_runs(server, fields, param):
    response = chat(server, **fields)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_a_lone_surrogate_is_a_400_not_a_500(server):
    lone = "\\ud800"  # JSON allows it; UTF-8 cannot encode it
    for path, body in [("/chat/completions", f'{{"model": "{CHAT_MODEL}", "messages": [{{"role": "user", '
                                               f'"content": "{lone}"}}]}}'),
                       ("/modes/compare", f'{{"question": "{lone}"}}')]:
        response = httpx.post(server.v1 + path, content=body, headers={"Content-Type": "application/json"},
                              timeout=30)
        assert response.status_code == 400 and "not valid Unicode" in response.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/chat/completions"), ("PUT", "/v1/completions"),
                                               ("GET", "/v1/modes/council"), ("DELETE", "/v1/models")])
def test_a_wrong_method_is_a_405_in_openai_shape(server, method, path):
    response = httpx.request(method, server.url + path, timeout=10)
    assert response.status_code == 405 and response.headers["allow"]
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
