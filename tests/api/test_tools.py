"""Tool calling on the real embedded model (its template knows no tools: the JSON envelope), with the
official openai client: pydantic tools streamed and parsed, every tool_choice, a full round trip,
the streamed deltas' shape, and refusals."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.support.servers import CHAT_MODEL


class GetWeather(BaseModel):
    city: str
    unit: str


class GetTime(BaseModel):
    timezone: str


ASK = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
TOOLS = [openai.pydantic_function_tool(GetWeather), openai.pydantic_function_tool(GetTime)]


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0, timeout=120)


def test_pydantic_tools_stream_and_parse_into_their_models(server):
    with client(server).chat.completions.stream(model=CHAT_MODEL, messages=ASK, tools=TOOLS, tool_choice="required",
                                                parallel_tool_calls=False, max_tokens=80, temperature=0) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_completion()
    call = streamed.choices[0].message.tool_calls[0]
    assert streamed.choices[0].finish_reason == "tool_calls"
    assert isinstance(call.function.parsed_arguments, (GetWeather, GetTime))
    parsed = client(server).chat.completions.parse(model=CHAT_MODEL, messages=ASK, tools=TOOLS, tool_choice="required",
                                                   parallel_tool_calls=False, max_tokens=80, temperature=0)
    assert isinstance(parsed.choices[0].message.tool_calls[0].function.parsed_arguments, (GetWeather, GetTime))
    assert parsed.choices[0].message.content is None


@pytest.mark.parametrize("choice", ["none", "auto", "required", "named"])
def test_every_tool_choice_is_honoured(server, choice):
    tool_choice = {"type": "function", "function": {"name": "GetTime"}} if choice == "named" else choice
    reply = client(server).chat.completions.create(model=CHAT_MODEL, messages=ASK, tools=TOOLS, max_tokens=80,
                                                   temperature=0, tool_choice=tool_choice, parallel_tool_calls=False)
    message, finish = reply.choices[0].message, reply.choices[0].finish_reason
    if choice == "none":
        assert not message.tool_calls and finish != "tool_calls" and message.content
    elif message.tool_calls or choice != "auto":
        assert finish == "tool_calls" and message.tool_calls
        for call in message.tool_calls:  # always valid against the tool's own schema
            model = {"GetWeather": GetWeather, "GetTime": GetTime}[call.function.name]
            model.model_validate_json(call.function.arguments)
        if choice == "named":
            assert {c.function.name for c in message.tool_calls} == {"GetTime"}
    else:  # auto, answered directly: plain text, no envelope left in it
        assert message.content and '"content"' not in message.content and "tool_calls" not in message.content


def test_streamed_calls_have_dense_indices_one_id_each_and_a_function_in_every_delta(server):
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Weather in Paris and time in Tokyo?"}],
            "tools": TOOLS, "tool_choice": "required", "max_tokens": 120, "temperature": 0, "stream": True}
    deltas, finish = [], None
    with httpx.stream("POST", server.v1 + "/chat/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                choice = json.loads(line[6:])["choices"][0]
                deltas += choice["delta"].get("tool_calls") or []
                assert not choice["delta"].get("content")  # no envelope as content
                finish = choice["finish_reason"] or finish
    assert finish in ("tool_calls", "length") and deltas and all("function" in d for d in deltas)
    calls: dict[int, dict] = {}
    for delta in deltas:
        if "id" in delta:
            assert delta["index"] == len(calls) and delta["type"] == "function" and delta["function"]["name"]
            calls[delta["index"]] = {"name": delta["function"]["name"], "arguments": ""}
        calls[delta["index"]]["arguments"] += delta["function"]["arguments"]
    complete = list(calls.values()) if finish == "tool_calls" else list(calls.values())[:-1]  # cut: the last one
    assert complete
    for call in complete:
        json.loads(call["arguments"])


def test_a_round_trip_call_result_answer_streamed_and_not(server):
    api = client(server)
    first = api.chat.completions.create(model=CHAT_MODEL, messages=ASK, tools=TOOLS, tool_choice={
        "type": "function", "function": {"name": "GetWeather"}}, max_tokens=80, temperature=0)
    call = first.choices[0].message.tool_calls[0]
    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
               {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 18, "sky": "sunny"}'}]
    answer = api.chat.completions.create(model=CHAT_MODEL, messages=history, tools=TOOLS, tool_choice="none",
                                         max_tokens=40, temperature=0)
    assert answer.choices[0].message.content and not answer.choices[0].message.tool_calls
    streamed = api.chat.completions.create(model=CHAT_MODEL, messages=history, tools=TOOLS, tool_choice="none",
                                           max_tokens=40, temperature=0, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == answer.choices[0].message.content


def test_one_call_only_when_parallel_calls_are_off(server):
    reply = client(server).chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Weather in Paris and time in Tokyo?"}], tools=TOOLS,
        tool_choice="required", parallel_tool_calls=False, max_tokens=120, temperature=0)
    assert len(reply.choices[0].message.tool_calls) == 1


HUGE = {"type": "string", "maxLength": 10**6}  # over the schema budget (engines/schema_budget.py)
ONE_TOOL = [{"type": "function", "function": {"name": "GetTime", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize("body, param", [
    ({"tool_choice": {"type": "function", "function": {"name": "Nope"}}}, None),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, None),
    ({"tools": [{"type": "function", "function": {"name": "deep", "parameters": HUGE}}]},
     "tools[0].function.parameters"),
])
def test_bad_tools_are_refused_with_a_clear_error(server, body, param):
    refused = httpx.post(server.v1 + "/chat/completions",
                         json={"model": CHAT_MODEL, "messages": ASK, "tools": ONE_TOOL, **body})
    assert refused.status_code == 400, refused.text
    if param:
        assert refused.json()["error"]["param"].startswith(param)
