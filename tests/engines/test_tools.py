"""The tool envelope read as it streams: answer text decoded as it comes, each call's id and name
once, its arguments in fragments that add up to the JSON the model wrote — however the text is cut."""

from __future__ import annotations

import json

import pytest

from engines.contract import Tool
from engines.tools import EnvelopeReader, envelope_schema, prompt_messages
from tests.support.tool_calls import read_cut

CALLS = ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2]}}, '
         '{"name": "get_time", "arguments": {"zone": "Europe/Paris \\"CET\\""}}]}')
ANSWER = '{"content": "Bonjour \\u00e9t\\u00e9 \\ud83c\\udf0d \\"ok\\"\\nbye"}'


def read(text: str, step: int):
    return read_cut(EnvelopeReader(), text, step)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_calls_and_answers_read_the_same_however_the_text_is_cut(step):
    answer, calls = read(CALLS, step)
    assert answer == ""
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Paris", "days": [1, 2]}), ("get_time", {"zone": 'Europe/Paris "CET"'})]
    assert len({c["id"] for c in calls}) == 2 and all(c["id"].startswith("call_") for c in calls)
    answer, calls = read(ANSWER, step)
    assert answer == 'Bonjour été 🌍 "ok"\nbye' and calls == []


def test_the_envelope_schema_and_prompt():
    tools = (Tool("get_weather", "Weather now", {"type": "object", "properties": {"city": {"type": "string"}}}),)
    either = envelope_schema(tools, required=False, parallel=True)
    assert len(either["oneOf"]) == 2
    one_call = envelope_schema(tools, required=True, parallel=False)
    assert one_call["properties"]["tool_calls"]["maxItems"] == 1 and "oneOf" not in one_call
    history = [{"role": "user", "content": "Weather?"},
               {"role": "assistant", "content": "", "tool_calls": [
                   {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                     "arguments": '{"city": "Oslo"}'}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "-3 C"}]
    messages = prompt_messages(history, tools, required=False)
    assert messages[0]["role"] == "system" and "get_weather" in messages[0]["content"]
    call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    assert json.loads(messages[2]["content"]) == {"tool_calls": [call]}
    assert messages[3] == {"role": "user", "content": 'Result of get_weather({"city": "Oslo"}): -3 C'}
    # tool_choice none: no envelope to imitate; the call shows in its result, one user turn with the question
    without = prompt_messages(history, (), required=False)
    assert without == [{"role": "user", "content": 'Weather?\n\nResult of get_weather({"city": "Oslo"}): -3 C'}]
