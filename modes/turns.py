"""Running members' turns through the engine contract: in parallel, each streamed as events, each
bounded by the turn timeout; a failing member becomes a `member_error` event, never an exception.
Closing the event stream cancels every turn still generating (their slots free within a token)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from engines.contract import Engine, GenerationRequest, Tool, ToolCallDelta
from engines.errors import EngineError
from modes.events import Event, EventType, Message, ModeOptions, Role

EngineLookup = Callable[[str], Engine]
_TURN_OVER = object()


@dataclass(frozen=True)
class Turn:
    member: str
    role: Role
    stage: str
    messages: list[dict[str, Any]]
    json_schema: dict[str, Any] | None = None
    tools: tuple[Tool, ...] = ()  # offered under `auto` (the agent's lead)
    tool_choice: str = "auto"


@dataclass
class Answer:
    turn: Turn
    text: str = ""
    error: str = ""
    duration_ms: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)
    calls: list[ToolCallDelta] = field(default_factory=list)  # whole tool calls: id, name, arguments (JSON)

    def add_calls(self, deltas: tuple[ToolCallDelta, ...]) -> None:
        for delta in deltas:
            if delta.index == len(self.calls):
                self.calls.append(ToolCallDelta(delta.index, delta.id, delta.name, ""))
            call = self.calls[delta.index]
            self.calls[delta.index] = ToolCallDelta(call.index, call.id, call.name, call.arguments + delta.arguments)

    @property
    def ok(self) -> bool:
        return not self.error


def ask(text: str, system: str | None = None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]


def after(history: list[Message], messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """A turn's messages after the conversation so far, with one system message first (chat templates
    want at most one, at the start)."""
    if not history:
        return messages
    earlier = [{"role": m.role, "content": m.content} for m in history]
    systems = [m["content"] for m in (*earlier, *messages) if m["role"] == "system"]
    rest = [m for m in (*earlier, *messages) if m["role"] != "system"]
    return ([{"role": "system", "content": "\n\n".join(systems)}] if systems else []) + rest


class TurnRunner:
    def __init__(self, mode: str, lookup: EngineLookup, options: ModeOptions):
        self.mode, self.lookup, self.options = mode, lookup, options

    def event(self, type: EventType, **fields) -> Event:
        return Event(type, self.mode, **fields)

    async def stage(self, stage: str, turns: list[Turn], answers: list[Answer]) -> AsyncIterator[Event]:
        """`stage_start`, then the turns' events (see `run`)."""
        yield self.event("stage_start", stage=stage)
        async for event in self.run(turns, answers):
            yield event

    def all_failed(self, answers: list[Answer], what: str = "Every member failed to answer") -> Event:
        return self.event("error", text=f"{what}: " + "; ".join(f"{a.turn.member}: {a.error}" for a in answers))

    async def run(self, turns: list[Turn], answers: list[Answer]) -> AsyncIterator[Event]:
        """Streams the events of `turns` run in parallel; fills `answers` (in the order of `turns`)."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        mine = [Answer(turn) for turn in turns]
        answers.extend(mine)
        tasks = [asyncio.create_task(self._one(answer, queue)) for answer in mine]
        finished = 0
        try:
            while finished < len(tasks):
                item = await queue.get()
                if item is _TURN_OVER:
                    finished += 1
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, answer: Answer, queue: asyncio.Queue) -> None:
        turn, options = answer.turn, self.options
        where = {"stage": turn.stage, "member": turn.member, "role": turn.role}
        await queue.put(self.event("member_start", status="running", **where))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(options.turn_timeout):
                stream = self.lookup(turn.member).stream(GenerationRequest(
                    messages=after(options.history, turn.messages), max_tokens=options.max_tokens,
                    temperature=options.temperature, json_schema=turn.json_schema, tools=turn.tools,
                    tool_choice=turn.tool_choice if turn.tools else "auto"))
                try:
                    async for chunk in stream:
                        if chunk.text:
                            if "ttft_ms" not in answer.stats:
                                answer.stats["ttft_ms"] = round((time.perf_counter() - started) * 1000, 1)
                            answer.text += chunk.text
                            await queue.put(self.event("token", status="running", text=chunk.text, **where))
                        answer.add_calls(chunk.tool_calls)
                        if chunk.timings is not None:
                            answer.stats["tokens_per_second"] = round(chunk.timings.tokens_per_second, 1)
                        if chunk.usage is not None:
                            answer.stats["prompt_tokens"] = chunk.usage.prompt_tokens
                            answer.stats["completion_tokens"] = chunk.usage.completion_tokens
                finally:
                    await stream.aclose()
            if not answer.text.strip() and not answer.calls:
                answer.error = "returned an empty answer"
        except TimeoutError:
            answer.error = f"no complete answer within {options.turn_timeout:g} s"
        except EngineError as exc:
            answer.error = exc.message
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one broken member must not take the mode down
            answer.error = f"{type(exc).__name__}: {exc}"
        finally:
            answer.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        if answer.ok:
            calls = [{"name": c.name, "arguments": c.arguments} for c in answer.calls]
            await queue.put(self.event("member_done", status="done", text=answer.text, duration_ms=answer.duration_ms,
                                       data={**answer.stats, **({"tool_calls": calls} if calls else {})}, **where))
        else:
            await queue.put(self.event("member_error", status="error", text=answer.error,
                                       duration_ms=answer.duration_ms, **where))
        await queue.put(_TURN_OVER)
