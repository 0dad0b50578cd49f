"""Bad requests get the right status and an OpenAI-shaped error body."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.servers import CHAT_MODEL, start_server, stop_server

HELLO = [{"role": "user", "content": "hi"}]


def post(server, body, path="/chat/completions", headers=None):
    if isinstance(body, bytes):
        return httpx.post(server.v1 + path, content=body, timeout=60,
                          headers={"content-type": "application/json", **(headers or {})})
    return httpx.post(server.v1 + path, json=body, headers=headers, timeout=60)


def assert_openai_error(response, status, code=None, param=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


def test_malformed_json_is_400(server):
    assert_openai_error(post(server, b'{"model": "x", "messages": [}'), 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": CHAT_MODEL, "messages": "hi"}, "messages"),
        ({"model": CHAT_MODEL, "messages": HELLO, "max_tokens": "ten"}, "max_tokens"),
        ({"model": CHAT_MODEL, "messages": HELLO, "temperature": "hot"}, "temperature"),
        ({"model": CHAT_MODEL, "messages": HELLO, "temperature": 7}, "temperature"),
        ({"model": CHAT_MODEL, "messages": HELLO, "max_tokens": 0}, "max_tokens"),
        ({"model": CHAT_MODEL, "messages": HELLO, "stream": "yes"}, "stream"),
        ({"model": CHAT_MODEL, "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"model": CHAT_MODEL}, "messages"),
        ({"model": CHAT_MODEL, "messages": []}, "messages"),
        ({"messages": HELLO}, "model"),
        ({"model": CHAT_MODEL, "messages": HELLO, "response_format": {"type": "json_schema"}}, "response_format"),
    ],
)
def test_wrong_types_and_values_are_400_naming_the_field(server, body, param):
    error = assert_openai_error(post(server, body), 400)
    assert error["param"] == param, error


def test_n_other_than_one_is_400(server):
    error = assert_openai_error(post(server, {"model": CHAT_MODEL, "messages": HELLO, "n": 2}), 400, param="n")
    assert "n=1" in error["message"]


def test_unknown_fields_are_ignored(server):
    response = post(server, {"model": CHAT_MODEL, "messages": HELLO, "max_tokens": 3, "frobnicate": True,
                             "logit_bias": {}, "user": "u1"})
    assert response.status_code == 200


def test_unknown_model_is_404_and_lists_available_models(server):
    error = assert_openai_error(post(server, {"model": "gpt-9", "messages": HELLO}), 404, code="model_not_found")
    assert CHAT_MODEL in error["message"]
    assert_openai_error(httpx.get(server.v1 + "/models/gpt-9"), 404)


def test_openai_client_raises_typed_errors(server):
    client = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=HELLO)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=CHAT_MODEL, messages=HELLO, n=3)


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_longer_than_context_is_400_context_length_exceeded(server, stream):
    long_text = "word " * 5000  # SmolLM2 runs with a 2048-token context
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": long_text}], "stream": stream}
    error = assert_openai_error(post(server, body), 400, code="context_length_exceeded")
    assert "2048" in error["message"]


def test_completion_prompt_over_context_is_400(server):
    body = {"model": "gemma3-270m", "prompt": "word " * 5000}
    assert_openai_error(post(server, body, "/completions"), 400, code="context_length_exceeded")


@pytest.mark.slow
def test_api_key_is_enforced_when_configured(tmp_path):
    keyed = start_server(tmp_path, "--model", CHAT_MODEL, "--no-ui", "--api-key", "s3cret",
                         "--max-concurrent", "1")
    try:
        assert_openai_error(post(keyed, {"model": CHAT_MODEL, "messages": HELLO}), 401, code="invalid_api_key")
        wrong = post(keyed, {"model": CHAT_MODEL, "messages": HELLO}, headers={"Authorization": "Bearer nope"})
        assert_openai_error(wrong, 401, code="invalid_api_key")
        assert_openai_error(httpx.get(keyed.v1 + "/models"), 401)
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=keyed.v1, api_key="bad", max_retries=0).models.list()
        good = openai.OpenAI(base_url=keyed.v1, api_key="s3cret")
        assert good.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=3).choices
        assert httpx.get(keyed.url + "/health").status_code == 200  # probes need no key
    finally:
        stop_server(keyed)
