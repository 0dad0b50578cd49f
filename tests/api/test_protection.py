"""Client protection on a real server: several API keys, a per-key rate limit (429 + Retry-After),
and a request body size limit (413), all in OpenAI's error shape."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.servers import CHAT_MODEL, start_server, stop_server

BODY = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("guarded"), "--model", CHAT_MODEL, "--no-ui",
                       "--api-key", "key-a,key-b", "--rate-limit", "3", "--max-body-bytes", "2048",
                       "--max-upload-bytes", "4096")
    yield srv
    stop_server(srv)


def post(server, key, json=BODY, **kwargs):
    return httpx.post(server.v1 + "/chat/completions", json=json, headers={"Authorization": f"Bearer {key}"},
                      timeout=60, **kwargs)


def test_each_configured_key_works_and_others_are_refused(guarded):
    assert openai.OpenAI(base_url=guarded.v1, api_key="key-b", max_retries=0).models.list().data
    wrong = post(guarded, "key-c")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(guarded.url + "/health").status_code == 200  # health stays open for probes


def test_rate_limit_is_per_key_with_retry_after(guarded):
    statuses = [post(guarded, "key-a").status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
    limited = post(guarded, "key-a")
    error = limited.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert 1 <= int(limited.headers["Retry-After"]) <= 20 and "3 requests per minute" in error["message"]
    with pytest.raises(openai.RateLimitError):
        openai.OpenAI(base_url=guarded.v1, api_key="key-a", max_retries=0).chat.completions.create(**BODY)
    # key-b has its own budget (it spent one in the test above at most)
    assert post(guarded, "key-b").status_code == 200


def test_bodies_over_the_limit_are_413_whether_sized_or_chunked(guarded):
    big = {**BODY, "messages": [{"role": "user", "content": "x" * 4000}]}
    sized = post(guarded, "key-b", json=big)
    assert sized.status_code == 413 and sized.json()["error"]["code"] == "request_too_large"
    assert "2048 bytes" in sized.json()["error"]["message"]

    def chunks():
        yield b'{"model": "' + CHAT_MODEL.encode() + b'", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 400
        yield b'"}]}'

    chunked = httpx.post(guarded.v1 + "/chat/completions", content=chunks(),
                         headers={"Authorization": "Bearer key-b", "Content-Type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "request_too_large"


def test_uploads_have_their_own_limit(guarded):
    auth = {"Authorization": "Bearer key-b"}
    big = httpx.post(guarded.url + "/gradio_api/upload", files={"files": ("a.jpg", b"x" * 5000)}, headers=auth)
    assert big.status_code == 413 and "--max-upload-bytes" in big.json()["error"]["message"]
