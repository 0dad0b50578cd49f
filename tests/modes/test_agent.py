"""The agent mode: its calculator (parsed, never eval'd), its loop's bounds (step limit, a repeated
call, a tool that raises, a member that is down) with a scripted lead, and the real model calling the
calculator and answering with its result."""

from __future__ import annotations

import asyncio

import pytest

from engines.contract import Tool
from engines.errors import Unavailable
from modes import agent_tools, run_mode
from modes.adapter import ModeRun
from modes.agent_tools import AgentTool, ToolFailed, calculate
from modes.events import ModeOptions
from tests.support.scripted import ScriptedEngine, answer, calls
from tests.support.servers import CHAT_MODEL


def run_agent(lookup, members, question="What is 6 times 7?", **options):
    async def main():
        return [e async for e in run_mode("agent", question, ModeOptions(members=members, **options), lookup)]
    return asyncio.run(main())


def test_the_calculator_computes_and_refuses_what_is_not_arithmetic():
    assert calculate("(3 + 4) * 12") == 84 and calculate("2^10") == 1024 and calculate("sqrt(16) + pi") > 7.14
    assert calculate("7 // 2") == 3 and calculate("-5 % 3") == 1
    for bad, says in (("__import__('os').system('ls')", "not allowed"), ("(1).__class__", "not allowed"),
                      ("9 ** 9 ** 9", "exponent"), ("1 / 0", "division by zero"), ("1 +", "not an arithmetic"),
                      ("x" * 300, "longer than"), ("10.0 ** 999", "out of range"), ("sqrt(-1)", "math domain")):
        with pytest.raises(ToolFailed, match=says):
            calculate(bad)


def test_the_lead_calls_a_tool_and_answers_with_its_result():
    lead = ScriptedEngine(turns=[calls(("calculator", '{"expression": "6*7"}')), answer("It is 42.")], model_id="lead")
    events = run_agent(lambda _: lead, ["lead"])
    kinds = [e.type for e in events]
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("final")
    result = next(e for e in events if e.type == "tool_result")
    assert result.text == "42" and not result.data["error"]
    final = next(e for e in events if e.type == "final")
    assert final.text == "It is 42." and final.data == {"steps": 2, "tool_calls": 1}
    second = lead.requests[1].messages  # the lead saw its call and the result
    assert second[-2]["tool_calls"][0]["function"]["name"] == "calculator"
    assert second[-1] == {"role": "tool", "tool_call_id": "call_0", "content": "42"}
    run = ModeRun("agent")
    for event in events:
        run.apply(event)
    assert [s.title for s in run.steps] == ["step 1 · agent: lead", "step 1 · tool: calculator", "step 2 · agent: lead"]
    assert run.steps[1].text == 'calculator({"expression": "6*7"})\n→ 42'


def test_a_repeated_call_is_not_run_again_and_the_next_step_must_answer():
    lead = ScriptedEngine(turns=[calls(("calculator", '{"expression": "1+1"}')),
                                 calls(("calculator", '{ "expression":"1+1" }')), answer("Two.")], model_id="lead")
    events = run_agent(lambda _: lead, ["lead"])
    results = [e.text for e in events if e.type == "tool_result"]
    assert results[0] == "2" and results[1].startswith("Already called with these arguments")
    assert [r.tool_choice for r in lead.requests] == ["auto", "auto", "none"]
    assert next(e for e in events if e.type == "final").text == "Two."


def test_the_step_limit_makes_the_lead_answer_without_tools():
    lead = ScriptedEngine(turns=[calls(("calculator", f'{{"expression": "{n}+1"}}')) for n in range(5)],
                          model_id="lead")
    lead.turns[2] = calls(("calculator", '{"expression": "9"}')) + answer("Done.")[:1]  # text, and calls anyway
    events = run_agent(lambda _: lead, ["lead"], max_steps=2)
    assert [r.tool_choice for r in lead.requests] == ["auto", "auto", "none"]
    assert next(e for e in events if e.type == "final").text == "Done."  # its calls at the last step are not run
    assert sum(e.type == "tool_result" for e in events) == 2


def test_a_tool_that_raises_and_a_member_that_is_down_become_results(monkeypatch):
    async def explode(arguments, consult):
        raise RuntimeError("boom")

    monkeypatch.setitem(agent_tools.TOOLS, "explode", AgentTool(Tool("explode"), explode))
    lead = ScriptedEngine(turns=[calls(("explode", "{}"), ("ask_model", '{"member": "down", "question": "hi?"}'),
                                       ("ask_model", '{"member": "stranger", "question": "hi?"}')),
                                 answer("Sorry, no luck.")], model_id="lead")

    def lookup(model_id):
        if model_id == "down":
            raise Unavailable("instance 'down' is not reachable")
        return lead

    events = run_agent(lookup, ["lead", "down"])
    results = [(e.text, e.data["error"]) for e in events if e.type == "tool_result"]
    assert results[0] == ("error: RuntimeError: boom", True)
    assert results[1][0].startswith("error: down could not answer") and results[1][1]
    assert "not a member to ask (members: down)" in results[2][0]
    assert next(e for e in events if e.type == "final").text == "Sorry, no luck."
    tools = {t.name: t for t in lead.requests[0].tools}
    assert tools["ask_model"].parameters["properties"]["member"] == {"enum": ["down"]}


def test_a_failing_lead_hands_the_step_to_the_next_member():
    second = ScriptedEngine(answer("Here."), model_id="second")
    events = run_agent(lambda m: {"second": second}.get(m) or ScriptedEngine(fault=Unavailable("gone")),
                       ["first", "second", "third"])
    final = next(e for e in events if e.type == "final")
    assert final.member == "second" and final.text == "Here."
    offered = {t.name: t for t in second.requests[0].tools}["ask_model"].parameters["properties"]["member"]
    assert offered == {"enum": ["first", "third"]}


def test_asking_another_member_streams_its_turn_inside_the_step():
    lead = ScriptedEngine(turns=[calls(("ask_model", '{"member": "sage", "question": "Capital of Peru?"}')),
                                 answer("Lima, says the sage.")], model_id="lead")
    sage = ScriptedEngine(answer("Lima."), model_id="sage")
    events = run_agent(lambda m: {"lead": lead, "sage": sage}[m], ["lead", "sage"])
    consulted = [e for e in events if e.member == "sage"]
    assert [e.type for e in consulted][:2] == ["member_start", "token"] and consulted[0].stage == "step 1"
    assert next(e for e in events if e.type == "tool_result").text == "Lima."
    assert sage.requests[0].messages[-1]["content"] == "Capital of Peru?"


def test_the_real_model_calls_the_calculator_and_uses_its_result(engines):
    events = run_agent(engines.__getitem__, [CHAT_MODEL], question="Use the calculator: what is 37 * 91?",
                       temperature=0.0, max_tokens=96)
    call = next(e for e in events if e.type == "tool_call")
    result = next(e for e in events if e.type == "tool_result")
    assert call.data["name"] == "calculator" and not result.data["error"]
    final = next(e for e in events if e.type == "final")
    assert result.text in final.text  # the answer uses what the calculator returned
