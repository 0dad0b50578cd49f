"""A hub in front of real `app.py` instances on loopback, driven by the official openai client:
balancing, failover, a stream cut mid-way, cool-down and return, metrics, badges, the Models tab."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai

from tests.support.fleet import INSTANCE_ARGS, instances
from tests.support.servers import CHAT_MODEL, samples, start_server, stop_server, total, wait_for

HELLO = [{"role": "user", "content": "Say hello."}]


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0, timeout=120)


def test_load_spreads_and_metrics_count_the_traffic(fleet):
    before, per_instance = samples(fleet.hub), {n: i["requests"] for n, i in instances(fleet.hub).items()}
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda n: client(fleet.hub).chat.completions.create(
            model=CHAT_MODEL, messages=HELLO, max_tokens=12, seed=n), range(8)))
    assert all(r.choices[0].finish_reason in ("stop", "length") for r in replies)
    served = {n: i["requests"] - per_instance[n] for n, i in instances(fleet.hub).items()}
    assert served["a"] >= 2 and served["b"] >= 2 and sum(served.values()) == 8, served

    after = samples(fleet.hub)
    ok = total(after, "playground_requests_total", model=CHAT_MODEL, status="ok") - total(
        before, "playground_requests_total", model=CHAT_MODEL, status="ok")
    tokens = total(after, "playground_tokens_generated_total", model=CHAT_MODEL) - total(
        before, "playground_tokens_generated_total", model=CHAT_MODEL)
    ttft = total(after, "playground_time_to_first_token_seconds_count", model=CHAT_MODEL) - total(
        before, "playground_time_to_first_token_seconds_count", model=CHAT_MODEL)
    assert ok == 8 and ttft == 8
    assert tokens == sum(r.usage.completion_tokens for r in replies)
    for name in ("a", "b"):
        assert ("playground_queue_depth", (("instance", name), ("model", CHAT_MODEL))) in after
        assert after[("playground_instance_up", (("instance", name), ("model", CHAT_MODEL)))] == 1


def test_streams_through_the_hub_match_the_openai_format(fleet):
    stream = client(fleet.hub).chat.completions.create(
        model=CHAT_MODEL, messages=HELLO, max_tokens=10, stream=True, stream_options={"include_usage": True},
        extra_body={"ignore_eos": True})  # unseeded, the answer ends before 10 tokens in ~4% of runs (measured)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage.completion_tokens == 10
    done = client(fleet.hub).completions.create(model=CHAT_MODEL, prompt="The sky is", max_tokens=5)
    assert done.usage.completion_tokens == 5 and done.choices[0].finish_reason == "length"


def test_logprobs_sampling_controls_and_the_tokenizer_pass_through_the_hub(fleet):
    hub, direct = client(fleet.hub), client(fleet.a)
    ask = {"model": CHAT_MODEL, "messages": HELLO, "max_tokens": 6, "temperature": 0, "logprobs": True,
           "top_logprobs": 2, "frequency_penalty": 0.5, "extra_body": {"top_k": 10}}
    through, alone = hub.chat.completions.create(**ask), direct.chat.completions.create(**ask)
    assert through.choices[0].message.content == alone.choices[0].message.content
    tokens = [[e.token for e in reply.choices[0].logprobs.content] for reply in (through, alone)]
    assert tokens[0] == tokens[1]
    assert all(len(e.top_logprobs) == 2 for e in through.choices[0].logprobs.content)
    echo = hub.completions.create(model=CHAT_MODEL, prompt="The sky is", max_tokens=2, temperature=0, logprobs=1,
                                  echo=True)
    assert echo.choices[0].text.startswith("The sky is") and echo.choices[0].logprobs.token_logprobs[0] is None
    text = {"content": "Hello, hub!"}
    assert httpx.post(fleet.hub.url + "/tokenize", json=text).json()["tokens"] == \
        httpx.post(fleet.a.url + "/tokenize", json=text).json()["tokens"]
    info = httpx.get(fleet.hub.url + "/tokenizer_info", params={"model": CHAT_MODEL}).json()
    assert info["chat_template"] and info["model"] == CHAT_MODEL


def test_tool_calls_pass_through_the_hub_streamed_and_not(fleet):
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    ask = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Weather in Oslo?"}], "tools": [tool],
           "tool_choice": "required", "parallel_tool_calls": False, "max_tokens": 40, "temperature": 0}
    through, alone = client(fleet.hub).chat.completions.create(**ask), client(fleet.a).chat.completions.create(**ask)
    assert through.choices[0].finish_reason == "tool_calls"
    # Compared as JSON: the instance the hub picks may hold another cached prefix, which can move greedy
    # whitespace inside the arguments (the last bits of a prompt read in other pieces).
    assert [(c.function.name, json.loads(c.function.arguments)) for c in through.choices[0].message.tool_calls] == \
        [(c.function.name, json.loads(c.function.arguments)) for c in alone.choices[0].message.tool_calls]
    streamed = client(fleet.hub).chat.completions.create(**ask, stream=True)
    deltas = [d for c in streamed if c.choices for d in c.choices[0].delta.tool_calls or ()]
    assert deltas[0].id and deltas[0].function.name == "get_weather"
    arguments = json.loads(alone.choices[0].message.tool_calls[0].function.arguments)
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == arguments


def test_a_stream_whose_instance_dies_ends_with_an_error_event(fleet):
    victim = start_server(fleet.tmp_path, *INSTANCE_ARGS, port=fleet.victim_port)
    try:
        assert wait_for(lambda: instances(fleet.hub, "victim")["victim"]["state"] == "healthy")
        body = {"model": "victim", "messages": HELLO, "max_tokens": 400, "ignore_eos": True, "stream": True}
        events = []
        with httpx.stream("POST", fleet.hub.v1 + "/chat/completions", json=body, timeout=60) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:])
                    if len(events) == 5:
                        victim.process.kill()  # SIGKILL: no drain, the connection just breaks
    finally:
        stop_server(victim)
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["type"] == "server_error" and "broke" in error["message"]
    assert "victim" in error["message"] and "127.0.0.1" not in error["message"]  # an instance id, never its URL
    text_chunks = [json.loads(e) for e in events[:-2]]
    assert all("error" not in c for c in text_chunks) and len(text_chunks) >= 5
    assert not any(c["choices"][0]["finish_reason"] for c in text_chunks)  # never looks like a normal end


def test_a_cooled_down_instance_returns_once_healthy(fleet):
    """The victim is down now (previous test, or never started): requests get a clear 503 naming it;
    started again on the same port, the probes bring it back."""
    assert wait_for(lambda: instances(fleet.hub, "victim")["victim"]["state"] == "cooling")
    down = httpx.post(fleet.hub.v1 + "/chat/completions", json={"model": "victim", "messages": HELLO})
    assert down.status_code == 503 and "victim cooling" in down.json()["error"]["message"]
    assert "127.0.0.1" not in down.json()["error"]["message"] and "http" not in down.json()["error"]["message"]
    assert total(samples(fleet.hub), "playground_requests_total", model="victim", status="no_instance") >= 1
    assert httpx.get(fleet.hub.url + "/api/badge/model/victim").json()["message"] == "offline"
    victim = start_server(fleet.tmp_path, *INSTANCE_ARGS, port=fleet.victim_port)
    try:
        assert wait_for(lambda: instances(fleet.hub, "victim")["victim"]["state"] == "healthy")
        reply = client(fleet.hub).chat.completions.create(model="victim", messages=HELLO, max_tokens=4)
        assert reply.usage.completion_tokens == 4
    finally:
        stop_server(victim)


def test_killing_an_instance_under_load_loses_no_request_that_had_not_started(fleet):
    """Steady streaming load on three instances; one is killed (SIGKILL) half-way. Requests that had
    not started streaming move to the others; only ones already streaming on it may end in error."""
    victim = start_server(fleet.tmp_path, *INSTANCE_ARGS, "--hub", fleet.hub.url, "--hub-token", "fleet-secret",
                          "--instance-id", "doomed")
    assert wait_for(lambda: instances(fleet.hub).get("doomed", {}).get("state") == "healthy")
    outcomes: list[str] = []
    stop = threading.Event()

    def worker(seed: int):
        while not stop.is_set():
            started = False
            try:
                stream = client(fleet.hub).chat.completions.create(
                    model=CHAT_MODEL, messages=HELLO, max_tokens=24, stream=True, seed=seed,
                    extra_body={"ignore_eos": True})
                for chunk in stream:
                    started = started or bool(chunk.choices and chunk.choices[0].delta.content)
                outcomes.append("ok")
            except openai.APIError as exc:
                outcomes.append(f"{'after' if started else 'before'} first token: {exc}")
            except Exception as exc:  # anything else is a failure of the test's own making: show it
                outcomes.append(f"before first token (unexpected): {exc!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    assert instances(fleet.hub)["doomed"]["requests"] > 0  # it had its share of the load
    victim.process.kill()
    killed_at = len(outcomes)
    time.sleep(5)
    stop.set()
    for thread in threads:
        thread.join(60)
    stop_server(victim)
    print(f"\nfailover: {len(outcomes)} requests, {outcomes.count('ok')} succeeded, killed after {killed_at};"
          f" failures: {[o for o in outcomes if o != 'ok']}")
    assert len(outcomes) - killed_at >= 4  # traffic went on after the kill
    assert not [o for o in outcomes if o.startswith("before")]
    assert len([o for o in outcomes if o.startswith("after")]) <= 2  # at most its two slots were streaming
    assert instances(fleet.hub)["doomed"]["state"] in ("cooling", "gone")


def test_registration_heartbeat_timeout_and_drain(fleet):
    refused = httpx.post(fleet.hub.url + "/hub/register", headers={"Authorization": "Bearer wrong"},
                         json={"instance_id": "x", "url": "http://127.0.0.1:1", "models": [{"id": CHAT_MODEL}]})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_hub_token"
    plain = httpx.post(fleet.a.url + "/hub/register", json={})
    assert plain.status_code == 403 and "--hub-token" in plain.json()["error"]["message"]

    joiner = start_server(fleet.tmp_path, *INSTANCE_ARGS, "--hub", fleet.hub.url, "--hub-token", "fleet-secret",
                          "--instance-id", "joiner")
    try:
        assert wait_for(lambda: instances(fleet.hub).get("joiner", {}).get("state") == "healthy")
        assert instances(fleet.hub)["joiner"]["source"] == "registered"
        listed = httpx.get(fleet.hub.url + "/health/details").json()["registered_instances"]
        assert {"instance_id": "joiner", "url": joiner.url, "models": [CHAT_MODEL]} in listed

        # A model loaded on the instance at run time reaches the hub (registered again, with its lease);
        # unloading it takes it back out.
        def offered() -> list[str]:
            members = httpx.get(fleet.hub.url + "/health/details").json()["registered_instances"]
            return next((m["models"] for m in members if m["instance_id"] == "joiner"), [])

        loaded = httpx.post(joiner.url + "/models/load", json={"model": "gemma3-270m"}, timeout=120)
        assert loaded.status_code == 200 and loaded.json()["status"] == "ready"
        assert wait_for(lambda: sorted(offered()) == sorted([CHAT_MODEL, "gemma3-270m"]), timeout=15)
        assert instances(fleet.hub, "gemma3-270m")["joiner"]["state"] == "healthy"
        assert httpx.post(joiner.url + "/models/unload", json={"model": "gemma3-270m"}, timeout=60).status_code == 200
        assert wait_for(lambda: offered() == [CHAT_MODEL], timeout=15)

        os.kill(joiner.process.pid, signal.SIGSTOP)  # frozen: heartbeats stop
        assert wait_for(lambda: instances(fleet.hub)["joiner"]["state"] == "gone", timeout=10)
        os.kill(joiner.process.pid, signal.SIGCONT)
        assert wait_for(lambda: instances(fleet.hub)["joiner"]["state"] == "healthy", timeout=10)

        # Drain: a stream in flight on the instance finishes; the hub stops routing there at once.
        body = {"model": CHAT_MODEL, "messages": HELLO, "max_tokens": 120, "ignore_eos": True, "stream": True,
                "stream_options": {"include_usage": True}}
        events, seen_draining = [], False
        with httpx.stream("POST", joiner.v1 + "/chat/completions", json=body, timeout=60) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:])
                    if len(events) == 3:
                        joiner.process.terminate()
                    if len(events) == 40:
                        seen_draining = instances(fleet.hub).get("joiner", {}).get("state") == "draining"
        assert seen_draining
        assert events[-1] == "[DONE]" and json.loads(events[-3])["choices"][0]["finish_reason"] == "length"
        assert json.loads(events[-2])["usage"]["completion_tokens"] == 120  # the whole answer, not cut short
        assert joiner.process.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
        assert "joiner" not in instances(fleet.hub)  # deregistered once the stream was done
    finally:
        stop_server(joiner)


def test_a_hang_after_the_first_token_ends_with_an_error_after_the_idle_limit(fleet):
    started = time.monotonic()
    stream = client(fleet.hub).chat.completions.create(model="hangs", messages=HELLO, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.content in ("", "Once")
    try:
        text = [c.choices[0].delta.content for c in stream if c.choices]
        raise AssertionError(f"expected an error event, got {text}")
    except openai.APIError as exc:
        assert "sent no next token within 1 s" in str(exc)
    assert time.monotonic() - started < 10


def test_badges_and_health_details(fleet):
    system = httpx.get(fleet.hub.url + "/api/badge/system").json()
    assert system["schemaVersion"] == 1 and system["label"] == "API Status"
    assert system["message"].endswith("online") and system["color"] in ("brightgreen", "yellow")
    model = httpx.get(fleet.hub.url + f"/api/badge/model/{CHAT_MODEL}").json()
    assert model == {"schemaVersion": 1, "label": "SmolLM2 135M Instruct", "message": "online (2/2)",
                     "color": "brightgreen", "isError": False} or model["message"].startswith("online")
    unknown = httpx.get(fleet.hub.url + "/api/badge/model/nope").json()
    assert unknown["schemaVersion"] == 1 and unknown["isError"] is True
    a = instances(fleet.hub)["a"]
    for field in ("state", "active", "queued", "max_concurrent", "latency_ms", "tokens_per_second", "url"):
        assert field in a, field
    assert a["requests"] > 0 and a["latency_ms"] > 0 and a["tokens_per_second"] > 0


def test_models_tab_shows_the_fleet(fleet):
    from gradio_client import Client

    rows = Client(fleet.hub.url + "/", verbose=False).predict(api_name="/models")
    table = rows["data"] if isinstance(rows, dict) else rows
    by_instance = {(r[0], r[1]): r for r in table}
    assert by_instance[(CHAT_MODEL, "a")][3] == "healthy" and by_instance[(CHAT_MODEL, "b")][2] == "remote"
    assert ("hangs", "hangs") in by_instance


def test_membership_needs_its_lease_and_cannot_take_over_an_instance(fleet):
    token = {"Authorization": "Bearer fleet-secret"}
    offer = {"url": fleet.a.url, "models": [{"id": CHAT_MODEL}]}
    taken = httpx.post(fleet.hub.url + "/hub/register", headers=token, json={"instance_id": "a", **offer})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "instance_id_taken"  # the fleet file's
    metadata = httpx.post(fleet.hub.url + "/hub/register", headers=token,
                          json={"instance_id": "m", "url": "http://169.254.169.254/latest", "models": [{"id": "x"}]})
    assert metadata.status_code == 400 and metadata.json()["error"]["param"] == "url"
    joined = httpx.post(fleet.hub.url + "/hub/register", headers=token, json={"instance_id": "twin", **offer})
    lease = joined.json()["lease"]
    try:
        for path in ("/hub/heartbeat", "/hub/drain", "/hub/deregister"):
            forged = httpx.post(fleet.hub.url + path, headers=token, json={"instance_id": "twin", "lease": "guess"})
            assert forged.status_code == 403 and forged.json()["error"]["code"] == "invalid_lease", path
        assert instances(fleet.hub)["twin"]["state"] == "healthy"
        again = httpx.post(fleet.hub.url + "/hub/register", headers=token, json={"instance_id": "twin", **offer})
        assert again.status_code == 409  # alive, and no lease shown
    finally:
        left = httpx.post(fleet.hub.url + "/hub/deregister", headers=token,
                          json={"instance_id": "twin", "lease": lease})
        assert left.status_code == 200 and "twin" not in instances(fleet.hub)


def test_an_instance_registered_at_the_hubs_own_url_cannot_loop(fleet):
    token = {"Authorization": "Bearer fleet-secret"}
    mirror = httpx.post(fleet.hub.url + "/hub/register", headers=token, json={
        "instance_id": "mirror", "url": fleet.hub.url, "models": [{"id": "mirror-model"}]})
    lease = mirror.json()["lease"]
    try:
        started = time.monotonic()
        looped = httpx.post(fleet.hub.v1 + "/chat/completions", timeout=60,
                            json={"model": "mirror-model", "messages": HELLO, "max_tokens": 4})
        assert looped.status_code == 503 and "loop" in looped.json()["error"]["message"]
        assert time.monotonic() - started < 30 and httpx.get(fleet.hub.url + "/health").status_code == 200
    finally:
        httpx.post(fleet.hub.url + "/hub/deregister", headers=token, json={"instance_id": "mirror", "lease": lease})
