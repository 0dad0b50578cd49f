"""Modes over REST (/v1/modes/{mode}) and through the OpenAI alias, against the real server."""

from __future__ import annotations

import json

import httpx
import pytest
from openai import OpenAI

from engines.personas import DEFAULT_PANEL
from tests.support.servers import BASE_MODEL, CHAT_MODEL

MEMBERS = [CHAT_MODEL, BASE_MODEL]


def test_rest_mode_returns_one_json_result(server):
    response = httpx.post(server.v1 + "/modes/compare", timeout=120, json={
        "question": "Name a planet.", "members": MEMBERS, "max_tokens": 16})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["mode"] == "compare" and result["final"]["text"]
    assert {t["member"] for t in result["turns"]} == set(MEMBERS) and result["duration_ms"] > 0


def test_rest_mode_streams_typed_events(server):
    with httpx.stream("POST", server.v1 + "/modes/council", timeout=120, json={
            "question": "Name a planet.", "members": MEMBERS, "max_tokens": 24, "stream": True}) as response:
        lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    events = [json.loads(line) for line in lines[:-1]]
    types = [e["type"] for e in events]
    assert types[0] == "mode_start" and types[-1] == "mode_done" and "final" in types
    assert [e["stage"] for e in events if e["type"] == "stage_start"] == ["answers", "rankings", "final"]
    assert any(e["type"] == "token" and e["role"] == "chairman" for e in events)


def test_rest_default_members_are_the_persona_panel_and_history_is_taken(server):
    history = [{"role": "user", "content": "Name a planet."}, {"role": "assistant", "content": "Mars."}]
    with httpx.stream("POST", server.v1 + "/modes/compare", timeout=120, json={
            "question": "Is it bigger than Earth?", "history": history, "max_tokens": 12, "stream": True}) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    start = events[0]["data"]
    assert start["members"] == [p.id for p in DEFAULT_PANEL] and start["history_messages"] == 2
    assert {e["member"] for e in events if e["type"] == "member_done"} == set(start["members"])


def test_openai_client_runs_the_agent_with_its_tool_steps(server):
    client = OpenAI(base_url=server.v1, api_key="x", max_retries=0, timeout=300)
    reply = client.chat.completions.create(
        model="agent", messages=[{"role": "user", "content": "Use the calculator: what is 37 * 91?"}], temperature=0,
        max_tokens=96, extra_body={"mode_options": {"members": [CHAT_MODEL, "teacher"]}})
    steps = reply.model_extra["mode"]["tool_calls"]
    assert reply.choices[0].message.content and steps and steps[0]["name"] == "calculator"
    assert steps[0]["result"] == "3367" and not steps[0]["error"]


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/modes/nope", {"question": "x"}, 404, "mode_not_found"),
    ("/modes/council", {"question": "x", "members": ["zz"]}, 404, "model_not_found"),
    ("/modes/council", {"question": "x", "lead": "zz"}, 404, "model_not_found"),
    ("/modes/debate", {"question": "x", "rounds": 99}, 400, "invalid_value"),
    ("/modes/debate", {"question": ""}, 400, "invalid_value"),
    ("/modes/debate", {"question": "x", "members": "all"}, 400, "invalid_value"),
    ("/modes/council", {"question": "x", "members": [CHAT_MODEL, CHAT_MODEL]}, 400, "invalid_value"),
    ("/modes/compare", {"question": "x", "history": [{"role": "tool", "content": "y"}]}, 400, "invalid_value"),
])
def test_rest_mode_bad_requests(server, path, body, status, code):
    response = httpx.post(server.v1 + path, json=body, timeout=30)
    assert response.status_code == status and response.json()["error"]["code"] == code, response.text


def test_openai_client_calls_council_as_a_model(server):
    client = OpenAI(base_url=server.v1, api_key="x", max_retries=0, timeout=120)
    assert {"council", "debate"} <= {m.id for m in client.models.list()}
    reply = client.chat.completions.create(
        model="council", messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=24,
        extra_body={"mode_options": {"members": MEMBERS}})
    assert reply.choices[0].message.content.strip() and reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens > 0
    details = reply.model_extra["mode"]
    assert [s["stage"] for s in details["stages"]] == ["answers", "rankings"]


def test_openai_client_streams_only_the_final_answer(server):
    client = OpenAI(base_url=server.v1, api_key="x", max_retries=0, timeout=120)
    chunks = list(client.chat.completions.create(
        model="roundtable", messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=24, stream=True,
        extra_body={"mode_options": {"members": MEMBERS, "rounds": 1}}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert text.strip() == last.model_extra["mode"]["final"]["text"].strip()
    assert len(chunks) > 4  # the moderator's synthesis arrived token by token
