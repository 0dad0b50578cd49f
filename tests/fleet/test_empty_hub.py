"""A hub that hosts nothing itself (`--model none`): an instance joins, and from then on the OpenAI
API, the Chat tab and the Models tab all reach the model through the hub."""

from __future__ import annotations

import httpx
import openai
import pytest
from gradio_client import Client

from tests.support.fleet import INSTANCE_ARGS, TOKEN, instances
from tests.support.servers import CHAT_MODEL, start_server, stop_server, wait_for


@pytest.mark.slow
def test_an_instance_joins_an_empty_hub_and_serves_everything_through_it(tmp_path):
    hub = start_server(tmp_path, "--model", "none", "--hub-token", TOKEN, "--probe-interval", "0.5",
                       "--hub-allow-private")
    member = None
    try:
        health = httpx.get(hub.url + "/health").json()
        assert health == {"status": "degraded", "models": {}}
        missing = httpx.post(hub.v1 + "/chat/completions", json={"model": CHAT_MODEL, "messages": [
            {"role": "user", "content": "hi"}]})
        assert missing.status_code == 404 and "Available models: none" in missing.json()["error"]["message"]

        member = start_server(tmp_path, *INSTANCE_ARGS, "--ctx", "512", "--hub", hub.url, "--hub-token", TOKEN,
                              "--instance-id", "member")
        assert wait_for(lambda: instances(hub).get("member", {}).get("state") == "healthy")
        assert httpx.get(hub.url + "/health").json() == {"status": "ok", "models": {CHAT_MODEL: "ready"}}
        listed = httpx.get(hub.v1 + "/models/" + CHAT_MODEL).json()
        assert listed["context_length"] == 512 and listed["owned_by"] == "remote"  # the instance's, not the catalog's
        too_long = httpx.post(hub.v1 + "/chat/completions", json={"model": CHAT_MODEL, "messages": [
            {"role": "user", "content": "word " * 600}]}, timeout=30)
        assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "context_length_exceeded"
        assert "512" in too_long.json()["error"]["message"] and instances(hub)["member"]["state"] == "healthy"

        reply = openai.OpenAI(base_url=hub.v1, api_key="x", max_retries=0).chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=6)
        assert reply.usage.completion_tokens >= 1
        ui = Client(hub.url + "/", verbose=False)
        answer = ui.predict("Say hi.", [], CHAT_MODEL, "", 0.7, 16, api_name="/chat")
        assert isinstance(answer, str) and answer
        rows = ui.predict(api_name="/models")
        table = rows["data"] if isinstance(rows, dict) else rows
        assert [r[:4] for r in table] == [[CHAT_MODEL, "member", "remote", "healthy"]]

        stop_server(member)  # drains and deregisters: the model it brought leaves with it
        member = None
        assert httpx.get(hub.url + "/health").json() == {"status": "degraded", "models": {}}
        assert not [m for m in httpx.get(hub.v1 + "/models").json()["data"] if m["id"] == CHAT_MODEL]
    finally:
        if member is not None:
            stop_server(member)
        stop_server(hub)
