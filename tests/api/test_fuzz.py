"""Fuzzing the real server: schemathesis generates requests for every route of /openapi.json (valid
and invalid), and hypothesis builds random JSON schemas for response_format. Never a 5xx, never a
crash: the server answers /health afterwards. Generations are capped at a few tokens so that the run
tests the request handling, not the model's speed."""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.support.servers import CHAT_MODEL

pytestmark = pytest.mark.slow
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


def short(body):
    """The generated body, with every generation it may start cut to a few tokens."""
    if isinstance(body, dict):
        for field in TOKEN_FIELDS:
            if isinstance(body.get(field), int) and not isinstance(body.get(field), bool):
                body[field] = min(body[field], 4)
        if "messages" in body or "prompt" in body or "question" in body:
            body.setdefault("max_tokens", 4)
        if isinstance(body.get("rounds"), int):
            body["rounds"] = 1
        body.pop("ignore_eos", None)
    return body


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_to_any_route_is_a_server_error(case, server):
    case.body = short(case.body)
    case.call_and_validate(base_url=server.url, checks=[not_a_server_error], timeout=120)


KEYWORDS = {
    "maxLength": st.integers(-5, 400_000), "minLength": st.integers(-5, 300_000_000),
    "maxItems": st.integers(-5, 600_000), "minItems": st.integers(-5, 10_000),
    "pattern": st.sampled_from(["^a{0,300000}$", "^[a-z]{2,5}$", "(", "\\d+", "^a{2}b{1000}$", ""]),
    "enum": st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=300),
    "minimum": st.integers(), "maximum": st.integers(), "format": st.sampled_from(["date", "email", "uuid", "??"]),
    "required": st.lists(st.text(max_size=4), max_size=3), "additionalProperties": st.booleans(),
    "type": st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array", "nonsense"]),
}


def schemas() -> st.SearchStrategy:
    leaf = st.fixed_dictionaries({}, optional=KEYWORDS)
    return st.recursive(leaf, lambda inner: st.one_of(
        st.builds(lambda props: {"type": "object", "properties": props}, st.dictionaries(st.text(max_size=4), inner,
                                                                                         max_size=4)),
        st.builds(lambda items: {"type": "array", "items": items}, inner),
        st.builds(lambda options: {"anyOf": options}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda ref: {"$ref": ref, "$defs": {"a": {"type": "string"}}},
                  st.sampled_from(["#/$defs/a", "#/$defs/missing", "http://example.com/x"]))), max_leaves=12)


@given(schemas())
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_json_schemas_never_crash_the_server(server, random_schema):
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Answer."}], "max_tokens": 4,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": random_schema}}}
    response = httpx.post(server.v1 + "/chat/completions", content=json.dumps(body),
                          headers={"Content-Type": "application/json"}, timeout=120)
    assert response.status_code < 500, (random_schema, response.text)
    assert httpx.get(server.url + "/health", timeout=30).status_code == 200
