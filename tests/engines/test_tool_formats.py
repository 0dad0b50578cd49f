"""Native tool-call formats: detected from chat templates, read as they stream (however the text is
cut), and constrained by grammars that llama.cpp itself checks against the real model's vocabulary."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from engines import generation
from engines.catalog import find
from engines.contract import GenerationRequest, Tool, collect
from engines.errors import InvalidRequest
from engines.local import LocalEngine
from engines.model_files import resolve_path
from engines.tool_formats import AUTO_RULE, FORCED_RULE, FORMATS, NativeReader, detect
from settings import parse_args
from tests.support.tool_calls import read_cut

QWEN_TEMPLATE = (Path(__file__).parents[1] / "data" / "templates" / "qwen2.5-instruct.jinja").read_text()
WEATHER = Tool("get_weather", "Weather now", {"type": "object", "properties": {
    "city": {"type": "string"}, "days": {"type": "array", "items": {"type": "integer"}}}, "required": ["city"]})
TIME = Tool("get_time", "Time now", {"type": "object", "properties": {"zone": {"type": "string"}},
                                     "required": ["zone"], "additionalProperties": False})
CALLS = [("get_weather", {"city": "Paris", "days": [1, 2]}), ("get_time", {"zone": 'Europe/Paris "CET"'})]


def written(fmt, calls, *, before: str = "") -> str:
    """An answer as the format's models write it (content first, when given)."""
    if fmt.syntax == "gemma":
        objects = [f"call:{name}{gemma(arguments)}" for name, arguments in calls]
    else:
        objects = [json.dumps({"name": name, fmt.arguments_key: arguments}) for name, arguments in calls]
    return before + fmt.begin + fmt.separator.join(objects) + fmt.end


def gemma(value) -> str:
    """A value in FunctionGemma's syntax: bare keys, strings between <escape> tokens."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{gemma(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(gemma(item) for item in value) + "]"
    return f"<escape>{value}<escape>" if isinstance(value, str) else json.dumps(value)


def read(fmt, text: str, step: int):
    return read_cut(NativeReader(fmt), text, step)


def test_the_format_is_the_one_the_template_teaches():
    assert detect(QWEN_TEMPLATE) is FORMATS["hermes"]
    gemma_template = "{% for t in tools %}<start_function_declaration>{% endfor %}<start_function_call>"
    assert detect(gemma_template) is FORMATS["functiongemma"]
    assert detect("{% for m in messages %}{{ m.content }}{% endfor %}") is None  # knows no tools: envelope
    assert detect("{% if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}{% endif %}[TOOL_CALLS]") is FORMATS["mistral"]
    llama = '<|start_header_id|>{% if tools %}Respond as {"name": function name, "parameters": ...}{% endif %}'
    assert detect(llama) is FORMATS["llama3"]
    qwen3_coder = "{% if tools %}<tool_call>\n<function=name>\n<parameter=x>{% endif %}"
    assert detect(qwen3_coder) is None  # XML calls: not a format spoken here


@pytest.mark.parametrize("step", [1, 2, 5, 1000])
@pytest.mark.parametrize("name", ["hermes", "mistral", "functiongemma"])
def test_content_then_calls_read_the_same_however_the_text_is_cut(name, step):
    fmt = FORMATS[name]
    answer, calls = read(fmt, written(fmt, CALLS, before="Let me check.\n"), step)
    assert answer == "Let me check."  # the whitespace before the calls is theirs
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == CALLS
    assert len({c["id"] for c in calls}) == 2
    if name == "mistral":  # its template accepts only 9-character ids
        assert all(len(c["id"]) == 9 and c["id"].isalnum() for c in calls)


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_llama3_calls_only_when_the_answer_begins_with_one(step):
    fmt = FORMATS["llama3"]
    answer, calls = read(fmt, "\n " + written(fmt, CALLS[:1]), step)
    assert answer == "" and [(c["name"], json.loads(c["arguments"])) for c in calls] == CALLS[:1]
    text = 'Use {"name": "get_weather"} like this.'
    assert read(fmt, text, step) == (text, [])


def test_a_held_back_opener_that_never_completes_is_answer_text():
    reader = NativeReader(FORMATS["hermes"])
    assert reader.feed("Use the <tool") == ("Use the", ())  # may be an opener: held back
    assert reader.feed("box") == (" <toolbox", ())
    assert reader.feed(" or <tool_", final=True) == (" or <tool_", ())  # the answer ended: it was text
    assert not reader.called


@pytest.fixture(scope="module")
def engine():
    spec = dataclasses.replace(find("smollm2-135m-instruct"), max_concurrent=1, n_threads=2)
    return LocalEngine(spec, resolve_path(spec), max_queue=2, queue_timeout=30, chat_template=QWEN_TEMPLATE)


def accepts(engine, grammar: str, root: str, text: str) -> bool:
    """Whether llama.cpp's grammar sampler, fed `text` as the real model's tokens, accepts every one."""
    tokens = engine.count_tokens(text)
    request = GenerationRequest(prompt="x")
    plan = generation.Plan(request=request, prompt_tokens=tokens, max_new_tokens=1, grammar=grammar,
                           banned_tokens=(), thinking=False, starts_in_reasoning=False, answer_tokens=len(tokens),
                           grammar_root=root)
    try:
        generation.check_answer_prefix(engine._model.vocab, plan)
    except InvalidRequest:
        return False
    return True


@pytest.mark.parametrize("name", ["hermes", "mistral", "llama3", "functiongemma"])
def test_each_grammar_takes_its_calls_and_nothing_else(engine, name):
    fmt = FORMATS[name]
    calls = CALLS if fmt.parallel else CALLS[:1]
    grammar = fmt.grammar((WEATHER, TIME), parallel=True, thinking=False, in_reasoning=False)
    assert accepts(engine, grammar, FORCED_RULE, written(fmt, calls))
    assert not accepts(engine, grammar, FORCED_RULE, written(fmt, calls) + " and more")  # nothing after the calls
    assert not accepts(engine, grammar, FORCED_RULE, written(fmt, [("get_time", {"zone": "UTC", "extra": 1})]))
    assert not accepts(engine, grammar, FORCED_RULE, written(fmt, [("get_weather", {"city": 3})]))
    assert not accepts(engine, grammar, FORCED_RULE, written(fmt, [("delete_all", {})]))
    if fmt.parallel:
        single = fmt.grammar((WEATHER, TIME), parallel=False, thinking=False, in_reasoning=False)
        assert accepts(engine, single, FORCED_RULE, written(fmt, CALLS[:1]))
        assert not accepts(engine, single, FORCED_RULE, written(fmt, CALLS))


def test_under_auto_the_opener_only_ever_begins_calls(engine):
    for name in ("hermes", "mistral", "functiongemma"):
        fmt = FORMATS[name]
        grammar = fmt.grammar((WEATHER, TIME), parallel=True, thinking=False, in_reasoning=False)
        near_misses = "a <tool> or [TOOL] <<tool_call [[TOOL_CALLS <start_function"
        for answer in ("It is sunny.", near_misses, written(fmt, CALLS), written(fmt, CALLS, before="Let me look.\n")):
            assert accepts(engine, grammar, AUTO_RULE, answer), answer
        opener = fmt.opener
        assert not accepts(engine, grammar, AUTO_RULE, f"Say {opener} is a tag.")  # SmolLM2's `></` included
        assert not accepts(engine, grammar, AUTO_RULE, f"Text {opener[0]}{opener}" + "{}")
    llama = FORMATS["llama3"]
    grammar = llama.grammar((WEATHER,), parallel=True, thinking=False, in_reasoning=False)
    assert accepts(engine, grammar, AUTO_RULE, "\n" + written(llama, CALLS[:1]))
    assert accepts(engine, grammar, AUTO_RULE, 'Use {"name": "x"} freely {}')
    assert not accepts(engine, grammar, AUTO_RULE, '{"name": "other"}')  # an answer that opens JSON is a call


def test_a_thinking_model_may_reason_before_a_required_call(engine):
    fmt = FORMATS["hermes"]
    call = written(fmt, CALLS[:1])
    thinks = fmt.grammar((WEATHER,), parallel=True, thinking=True, in_reasoning=False)
    assert accepts(engine, thinks, FORCED_RULE, "<think>The user wants <b>weather</b>.</think>\n" + call)
    assert accepts(engine, thinks, FORCED_RULE, call)  # reasoning is optional
    assert not accepts(engine, thinks, FORCED_RULE, "Sure! " + call)  # but prose is not
    opened = fmt.grammar((WEATHER,), parallel=True, thinking=True, in_reasoning=True)  # the prompt opened it
    assert accepts(engine, opened, FORCED_RULE, "Paris, so get_weather.</think>\n\n" + call)
    plain = fmt.grammar((WEATHER,), parallel=True, thinking=False, in_reasoning=False)
    assert not accepts(engine, plain, FORCED_RULE, "<think>hm</think>" + call)


def test_the_real_model_writes_valid_calls_in_functiongemmas_syntax():
    # SmolLM2's template shows no tools, so one example teaches it where a string ends; the grammar
    # makes whatever it writes a call whose arguments read as schema-valid JSON.
    spec = dataclasses.replace(find("smollm2-135m-instruct"), max_concurrent=1, n_threads=2)
    engine = LocalEngine(spec, resolve_path(spec), max_queue=2, queue_timeout=30, tool_format="functiongemma")
    example = "<start_function_call>call:get_time{zone:<escape>Europe/Berlin<escape>}<end_function_call>"
    ask = [{"role": "system", "content": f"Call functions like this: {example}"},
           {"role": "user", "content": "Weather in Paris for the next two days, and the time in Tokyo?"}]

    async def main():
        return [await collect(engine.stream(GenerationRequest(messages=ask, tools=(WEATHER, TIME), max_tokens=120,
                                                              tool_choice="required", temperature=0.8, seed=seed)))
                for seed in range(3)]

    for done in asyncio.run(main()):
        assert done.finish_reason == "tool_calls" and done.text == ""
        for call in done.tool_calls:
            schema = {"get_weather": WEATHER, "get_time": TIME}[call.name].parameters
            jsonschema.validate(json.loads(call.arguments), schema)
    asyncio.run(engine.aclose())


def test_the_prompt_is_the_models_own_template_with_tools_and_history(engine):
    history = [{"role": "user", "content": "Weather in Oslo?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "-3 C"}]
    prompt, _ = engine.render_prompt(GenerationRequest(messages=history, tools=(WEATHER,)))
    assert "<tools>\n" + json.dumps({"type": "function", "function": {
        "name": "get_weather", "description": "Weather now", "parameters": WEATHER.parameters}}) in prompt
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>' in prompt
    assert "<tool_response>\n-3 C\n</tool_response>" in prompt
    without, _ = engine.render_prompt(GenerationRequest(messages=history, tools=(WEATHER,), tool_choice="none"))
    assert "<tools>" not in without and "<tool_response>" in without  # none: no tools offered, history kept


def test_a_bad_template_file_or_format_is_a_clear_startup_error(tmp_path, capsys):
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for m in messages %}{{ m.content }}")
    for args, says in ((["--chat-template-file", str(tmp_path / "missing.jinja")], "cannot read"),
                       (["--chat-template-file", str(broken)], "line 1: Unexpected end of template"),
                       (["--tool-format", "xml"], "'hermes', 'mistral', 'llama3' or 'functiongemma'")):
        with pytest.raises(SystemExit) as exit_info:
            parse_args(args)
        assert exit_info.value.code == 2 and says in capsys.readouterr().err
