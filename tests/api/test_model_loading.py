"""Models at run time over the API: POST /models/load (a download from a local server speaking the hub's
file API, progress as SSE, resume, HF_TOKEN, the cache), POST /models/unload (drained first), the memory
refusal, and who may call them."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from openai import OpenAI

from engines import catalog
from engines.model_files import resolve_path
from tests.support.hub_server import HubServer
from tests.support.servers import start_server, stop_server

pytestmark = pytest.mark.slow

SMOLLM2 = resolve_path(catalog.find("smollm2-135m-instruct"))
HUB_FILE = "test-org/Tiny-GGUF/tiny-chat.Q4_1.gguf"  # served with SmolLM2's bytes
HUB_MODEL = "tiny-chat.q4_1"  # the id the app gives hf://test-org/Tiny-GGUF/tiny-chat.Q4_1.gguf
KEY = "sk-load-test"


def sse_events(response: httpx.Response) -> list[dict]:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line[6:]))
    return events


@pytest.fixture
def hub():
    # 40 MB/s: the ~100 MB file takes a few seconds, so progress has steps to show; the first download
    # is cut halfway and the token is required, so resume and HF_TOKEN are exercised on every load.
    with HubServer({HUB_FILE: SMOLLM2}, token="hf_test_token", rate=40e6, cut_first=True) as server:
        yield server


def start_app(tmp_path, hub: HubServer, *args: str):
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": "hf_test_token",
           "HF_HUB_DISABLE_XET": "1"}
    return start_server(tmp_path, "--api-key", KEY, *args, env=env)


def test_load_from_the_hub_with_progress_then_chat_then_unload(tmp_path, hub):
    server = start_app(tmp_path, hub)
    try:
        auth = {"Authorization": f"Bearer {KEY}"}
        started = time.monotonic()
        with httpx.stream("POST", server.url + "/models/load", headers=auth, timeout=120,
                          json={"model": f"hf://{HUB_FILE}", "stream": True}) as response:
            assert response.status_code == 200
            events = sse_events(response)
        load_seconds = time.monotonic() - started
        statuses = [e["status"] for e in events]
        assert statuses[0] == "checking" and statuses[-1] == "ready", statuses
        downloading = [e for e in events if e["status"] == "downloading"]
        assert len(downloading) >= 3  # bytes arrive over time
        assert downloading[-1]["completed"] == downloading[-1]["total"] == SMOLLM2.stat().st_size
        assert {e.get("stage") for e in events if e["status"] == "loading"} >= {"weights", "context", "warm-up"}
        fractions = [e["fraction"] for e in events]
        assert fractions[-1] == 1.0 and max(fractions[:-1]) < 1.0
        print(f"\nloaded {HUB_MODEL} from the local hub server in {load_seconds:.2f} s "
              f"({len(downloading)} progress events)")

        # huggingface-hub resumed the cut download with a Range request, showing the token each time
        downloads = hub.downloads()
        assert len(downloads) >= 2 and any(h.get("range", "").startswith("bytes=") for h in downloads[1:])
        assert all(h.get("authorization") == "Bearer hf_test_token" for h in downloads)

        client = OpenAI(base_url=server.url + "/v1", api_key=KEY)
        assert HUB_MODEL in [m.id for m in client.models.list().data]
        answer = client.chat.completions.create(model=HUB_MODEL, max_tokens=8, temperature=0,
                                                messages=[{"role": "user", "content": "Say hi"}])
        assert answer.choices[0].message.content.strip()

        # loading again is a no-op; unloading drains and forgets it; loading once more reads the cache
        again = httpx.post(server.url + "/models/load", headers=auth, json={"model": f"hf://{HUB_FILE}"}, timeout=60)
        assert again.status_code == 200 and "already hosted" in again.json()["message"]
        gone = httpx.post(server.url + "/models/unload", headers=auth, json={"model": HUB_MODEL}, timeout=60)
        assert gone.status_code == 200 and gone.json()["status"] == "unloaded"
        assert HUB_MODEL not in [m.id for m in client.models.list().data]
        assert httpx.get(server.url + "/health").status_code == 200  # the start's model still serves
        gets = len(hub.downloads())
        reloaded = httpx.post(server.url + "/models/load", headers=auth, json={"model": f"hf://{HUB_FILE}"},
                              timeout=120)
        assert reloaded.status_code == 200 and reloaded.json()["status"] == "ready"
        assert len(hub.downloads()) == gets  # from huggingface-hub's cache, no new download
    finally:
        stop_server(server)


def test_unload_waits_for_the_answer_in_flight(tmp_path, hub):
    server = start_app(tmp_path, hub, "--model", "smollm2-135m-instruct", "--model", "gemma3-270m")
    try:
        auth = {"Authorization": f"Bearer {KEY}"}
        client = OpenAI(base_url=server.url + "/v1", api_key=KEY)
        stream = client.chat.completions.create(model="gemma3-270m", max_tokens=120, stream=True, temperature=0,
                                                messages=[{"role": "user", "content": "Count to fifty."}],
                                                extra_body={"ignore_eos": True})
        first = next(iter(stream))
        unloading = httpx.post(server.url + "/models/unload", headers=auth, json={"model": "gemma3-270m"},
                               timeout=120)
        rest = list(stream)  # the stream in flight finished: the unload waited for it
        assert first and rest[-1].choices[0].finish_reason == "length"
        assert unloading.status_code == 200
        refused = httpx.post(server.url + "/v1/chat/completions", headers=auth, timeout=30,
                             json={"model": "gemma3-270m", "messages": [{"role": "user", "content": "hi"}]})
        assert refused.status_code == 404 and "does not exist" in refused.json()["error"]["message"]
        # the catalog model loads again by its id (embedded: nothing to download)
        back = httpx.post(server.url + "/models/load", headers=auth, json={"model": "gemma3-270m"}, timeout=120)
        assert back.status_code == 200 and back.json()["status"] == "ready"
    finally:
        stop_server(server)


def test_refusals(tmp_path, hub):
    # 0.3 GB for every model here: SmolLM2 (~0.2 GB measured) leaves too little for another one
    server = start_app(tmp_path, hub, "--memory-limit", "0.3")
    try:
        auth = {"Authorization": f"Bearer {KEY}"}

        def load(model, headers=auth):
            return httpx.post(server.url + "/models/load", headers=headers, json={"model": model}, timeout=60)

        too_big = load(f"hf://{HUB_FILE}")
        assert too_big.status_code == 507, too_big.text
        error = too_big.json()["error"]
        assert error["code"] == "insufficient_memory" and "--memory-limit 0.3 GB leaves" in error["message"]
        assert hub.downloads() == []  # refused before downloading anything
        assert load("gpt-oss-20b").json()["error"]["code"] == "insufficient_memory"  # 12 GB, from the catalog

        # the hub's own errors, in words (size unknown, so the download itself finds out)
        missing = load("hf://test-org/Tiny-GGUF/missing.gguf")
        assert missing.status_code == 503 and "has no file missing.gguf" in missing.json()["error"]["message"]
        with httpx.stream("POST", server.url + "/models/load", headers=auth, timeout=60,
                          json={"model": "hf://test-org/Nope/x.gguf", "stream": True}) as response:
            events = sse_events(response)
        assert events[-1]["status"] == "error" and "not found on the hub" in events[-1]["message"]
        assert load("no-such-model").status_code == 404
        assert load("hf://bad").status_code == 404
        assert load("").status_code == 400
        assert load("smollm2-135m-instruct").json()["status"] == "ready"  # already hosted: nothing to do
        assert load("gemma3-270m", headers={}).status_code == 401  # keys set: a key is needed
        unknown = httpx.post(server.url + "/models/unload", headers=auth, json={"model": "nope"}, timeout=30)
        assert unknown.status_code == 404
    finally:
        stop_server(server)


def test_without_keys_only_this_machine_may_load(tmp_path):
    server = start_server(tmp_path)
    try:
        forwarded = httpx.post(server.url + "/models/unload", json={"model": "smollm2-135m-instruct"},
                               headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30)
        assert forwarded.status_code == 403 and forwarded.json()["error"]["type"] == "permission_error"
        assert httpx.get(server.url + "/health").json()["models"] == {"smollm2-135m-instruct": "ready"}
    finally:
        stop_server(server)
