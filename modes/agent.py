"""agent: the lead answers with tools (modes/agent_tools.py) — a calculator, the current time, and
`ask_model`, which consults another member — over steps: in each one the lead either calls tools
(every call and its result are events; a consulted member's turn streams like any other) or answers.

Bounded: after `max_steps` steps with calls the lead must answer without tools, and a call repeated
with the same arguments is not run again (the lead is told so and must answer next). A tool that
fails, a member that is down or a call with bad arguments becomes a result saying what went wrong,
and the loop goes on; a lead that fails hands the step to the next member.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from modes import agent_tools
from modes.agent_tools import TOOLS, ToolFailed
from modes.events import Event, ModeOptions
from modes.turns import EngineLookup, Turn, TurnRunner, ask

SYSTEM = ("You are a helpful agent with tools. Use a tool when it helps: calculator for any arithmetic, "
          "current_time for the date or time, ask_model to consult another member. When you have what you "
          "need, answer the user directly and use the tools' results.")


async def run(question: str, options: ModeOptions, lookup: EngineLookup) -> AsyncIterator[Event]:
    runner = TurnRunner("agent", lookup, options)
    lead = options.lead_member
    others = [m for m in options.members if m != lead]
    standby, failures = list(others), []  # who leads if the lead fails
    tools = agent_tools.specs(others)
    messages: list[dict[str, Any]] = ask(question, SYSTEM)
    done: dict[tuple[str, str], str] = {}  # (tool, arguments) -> its result: a repeat is not run again
    calls_made, must_answer = 0, False
    for step in range(1, options.max_steps + 2):
        stage = f"step {step}"
        must_answer = must_answer or step > options.max_steps
        yield runner.event("stage_start", stage=stage)
        answers = []
        turn = Turn(lead, "agent", stage, messages, tools=tools, tool_choice="none" if must_answer else "auto")
        async for event in runner.run([turn], answers):
            yield event
        answer = answers[0]
        while not answer.ok:  # a lead that fails hands over to the next member, who takes the same step
            failures.append(f"{lead}: {answer.error}")
            if not standby:
                yield runner.event("stage_done", stage=stage, data={"answered": False})
                yield runner.event("error", text="Every member failed to lead the agent: " + "; ".join(failures))
                return
            lead = standby.pop(0)
            others = [m for m in options.members if m != lead]  # the new lead consults the rest, not itself
            tools = agent_tools.specs(others)
            answers = []
            async for event in runner.run([Turn(lead, "agent", stage, messages, tools=tools,
                                                tool_choice=turn.tool_choice)], answers):
                yield event
            answer = answers[0]
        if not answer.calls or must_answer:  # (a model that calls tools anyway when told not to is not obeyed)
            yield runner.event("stage_done", stage=stage, data={"answered": bool(answer.text.strip())})
            if not answer.text.strip():
                yield runner.event("error", text=f"The agent ({lead}) gave no answer after its tool calls.")
                return
            yield runner.event("final", member=lead, role="agent", text=answer.text.strip(),
                               data={"steps": step, "tool_calls": calls_made})
            return
        messages = [*messages, {"role": "assistant", "content": answer.text or None, "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.calls]}]
        for call in answer.calls:
            calls_made += 1
            key = (call.name, _canonical(call.arguments))
            yield runner.event("tool_call", stage=stage, member=call.name, role="tool",
                               text=f"{call.name}({call.arguments})",
                               data={"id": call.id, "name": call.name, "arguments": call.arguments})
            failed = False
            if key in done:
                result, must_answer = f"Already called with these arguments; the result was: {done[key]}. " \
                                      "Answer the user now.", True
            else:
                outcome: list[str] = []
                async for event in _run_tool(runner, stage, call.name, call.arguments, others, outcome):
                    yield event
                result, failed = outcome[0], outcome[1] == "failed"
                done[key] = result
            yield runner.event("tool_result", stage=stage, member=call.name, role="tool", text=result,
                               data={"id": call.id, "name": call.name, "error": failed})
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        yield runner.event("stage_done", stage=stage, data={"tool_calls": len(answer.calls)})


async def _run_tool(runner: TurnRunner, stage: str, name: str, arguments: str, others: list[str],
                    outcome: list[str]) -> AsyncIterator[Event]:
    """Runs one call, streaming the events of any member it consults; appends its result text and
    "ok"/"failed" to `outcome`."""
    queue: asyncio.Queue[Event] = asyncio.Queue()

    async def consult(member: str, question: str) -> str:
        if member not in others:
            raise ToolFailed(f"'{member}' is not a member to ask (members: {', '.join(others) or 'none'})")
        answers = []
        async for event in runner.run([Turn(member, "member", stage, ask(question))], answers):
            queue.put_nowait(event)
        if not answers[0].ok:
            raise ToolFailed(f"{member} could not answer: {answers[0].error}")
        return answers[0].text.strip()

    async def call() -> str:
        tool = TOOLS.get(name)
        if tool is None:
            raise ToolFailed(f"no tool named {name!r}")
        try:
            parsed = json.loads(arguments or "{}")
        except ValueError:
            raise ToolFailed("the arguments are not JSON") from None
        if not isinstance(parsed, dict):
            raise ToolFailed("the arguments are not a JSON object")
        async with asyncio.timeout(runner.options.turn_timeout):
            return await tool.run(parsed, consult)

    task = asyncio.create_task(call())
    try:
        while not task.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            finished, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in finished:
                yield getter.result()
            else:
                getter.cancel()
        outcome += [task.result(), "ok"]
    except ToolFailed as exc:
        outcome += [f"error: {exc}", "failed"]
    except TimeoutError:
        outcome += [f"error: no result within {runner.options.turn_timeout:g} s", "failed"]
    except Exception as exc:  # a broken tool must not end the agent
        outcome += [f"error: {type(exc).__name__}: {exc}", "failed"]
    finally:
        task.cancel()


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments
