"""Tool calling for models whose chat template knows no tools: a JSON envelope the grammar enforces.

The model is told the tools in a system message and answers with JSON only, either
`{"tool_calls": [{"name": ..., "arguments": {...}}, ...]}` or `{"content": "..."}`. A grammar built
from that envelope's JSON schema (each tool's own `parameters` inside) makes every call valid:
`required` (or a named tool) leaves only the calls branch, one call unless parallel calls are allowed.
`EnvelopeReader` turns the envelope, as it streams, into answer text and tool-call deltas (the id and
name once, then the arguments in fragments), so no JSON reaches the client as content.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from engines.contract import Chunk, GenerationRequest, Tool, ToolCallDelta

_DECODER = json.JSONDecoder()


def calls_tools(request: GenerationRequest) -> bool:
    return bool(request.tools) and request.tool_choice != "none"


def as_envelope(request: GenerationRequest) -> GenerationRequest:
    """The request a template without tools can serve: the tools (if offered) explained, the history
    in plain messages, the envelope's grammar. Unchanged when there are no tools and no tool history."""
    history = any(m.get("tool_calls") or m["role"] == "tool" for m in request.messages or ())
    if not calls_tools(request) and not history:
        return request
    offered = request.tools if calls_tools(request) else ()
    required = request.tool_choice == "required"
    messages = prompt_messages(request.messages or [], offered, required=required)
    if not offered:
        return replace(request, messages=messages, tools=())
    schema = envelope_schema(offered, required=required, parallel=request.parallel_tool_calls)
    return replace(request, messages=messages, json_schema=schema, json_object=False)


async def read_calls(chunks, reader, *, begun: str = "") -> AsyncIterator[Chunk]:
    """The engine's chunks as answer text and tool-call deltas, as `reader` (an EnvelopeReader or a
    tool_formats.NativeReader) splits them. `begun`: the answer's start generated elsewhere (already
    delivered), read first so the continuation is read in its place."""
    reader.feed(begun)
    try:
        async for chunk in chunks:
            text, calls = reader.feed(chunk.text, final=chunk.finish_reason is not None)
            # Cut short by max_tokens, a call may be incomplete: `length` says so, as OpenAI does.
            finish = "tool_calls" if chunk.finish_reason == "stop" and reader.called else chunk.finish_reason
            yield replace(chunk, text=text, tool_calls=calls, finish_reason=finish)
    finally:
        await chunks.aclose()  # closed early (client gone): the generation stops now, not at garbage collection


def envelope_schema(tools: tuple[Tool, ...], *, required: bool, parallel: bool) -> dict[str, Any]:
    calls = {"type": "array", "minItems": 1, "items": {"oneOf": [call_schema(tool) for tool in tools]}}
    if not parallel:
        calls["maxItems"] = 1
    call = {"type": "object", "properties": {"tool_calls": calls}, "required": ["tool_calls"],
            "additionalProperties": False}
    if required:
        return call
    answer = {"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"],
              "additionalProperties": False}
    return {"oneOf": [call, answer]}


def call_schema(tool: Tool, arguments_key: str = "arguments") -> dict[str, Any]:
    """One call of `tool`: {"name": <its name>, <arguments_key>: <its parameters>}."""
    return {"type": "object", "properties": {"name": {"const": tool.name}, arguments_key: tool.parameters},
            "required": ["name", arguments_key], "additionalProperties": False}


def prompt_messages(messages: list[dict[str, Any]], tools: tuple[Tool, ...], *, required: bool) -> list[dict[str, str]]:
    """The conversation as plain chat messages: the tools and the envelope explained in a system
    message; earlier calls as the envelope they were; tool results as user messages naming the call."""
    listed = json.dumps([{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools])
    how = ('Call one or more of them: reply with JSON only, {"tool_calls": [{"name": "<function>", "arguments": '
           '{...}}]}.' if required else
           'Reply with JSON only: {"tool_calls": [{"name": "<function>", "arguments": {...}}]} to call functions, '
           'or {"content": "<your answer>"} to answer directly.')
    instructions = f"You can call these functions:\n{listed}\n{how}" if tools else ""
    called = {call.get("id"): call.get("function") or {} for m in messages for call in m.get("tool_calls") or ()}
    out: list[dict[str, str]] = []
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "assistant" and message.get("tool_calls"):
            if not tools:  # no tools now: no envelope to imitate; the results below say what was called
                if content:
                    out.append({"role": role, "content": content})
                continue
            calls = [{"name": c["function"]["name"], "arguments": arguments_object(c["function"].get("arguments"))}
                     for c in message["tool_calls"]]
            content = json.dumps({"tool_calls": calls})
        elif role == "assistant" and tools:  # answers in the envelope too: the model sees the format used
            content = json.dumps({"content": content})
        elif role == "tool":
            role = "user"
            function = called.get(message.get("tool_call_id"), {})
            name = function.get("name") or "the function"
            what = f"{name}({_compact(function.get('arguments'))})" if function else name
            content = f"Result of {what}: {content}"
        out.append({"role": role, "content": content})
    out = _alternating(out)
    if not instructions:
        return out
    if out and out[0]["role"] == "system":
        return [{"role": "system", "content": out[0]["content"] + "\n\n" + instructions}, *out[1:]]
    return [{"role": "system", "content": instructions}, *out]


def _compact(arguments: Any) -> str:
    value = arguments_object(arguments)
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def _alternating(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Consecutive messages of one role as one (several tool results in a row become one user message;
    some templates refuse two user messages in a row)."""
    out: list[dict[str, str]] = []
    for message in messages:
        if out and out[-1]["role"] == message["role"] != "system":
            out[-1] = {"role": message["role"], "content": out[-1]["content"] + "\n\n" + message["content"]}
        else:
            out.append(message)
    return out


def arguments_object(arguments: Any) -> Any:
    """A call's arguments as an object (OpenAI sends them as JSON text), as given when they are not JSON."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


@dataclass
class _Call:
    name: str
    arguments: str = ""  # the raw JSON text of the arguments so far
    id: str = ""


def openai_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


class CallTracker:
    """Turns the calls parsed so far ([(name or None, raw arguments so far)], growing) into the deltas
    new since the last update: a call's id and name once, then its arguments' new text."""

    def __init__(self, new_id: Callable[[], str] = openai_call_id):
        self._calls: list[_Call] = []
        self._new_id = new_id

    @property
    def called(self) -> bool:
        return bool(self._calls)

    def update(self, calls: list[tuple[str | None, str]]) -> tuple[ToolCallDelta, ...]:
        deltas = []
        for index, (name, arguments) in enumerate(calls):
            if name is None:
                break
            if index == len(self._calls):
                self._calls.append(_Call(name, "", self._new_id()))
                deltas.append(ToolCallDelta(index, id=self._calls[index].id, name=name))
            call = self._calls[index]
            if len(arguments) > len(call.arguments):
                deltas.append(ToolCallDelta(index, arguments=arguments[len(call.arguments):]))
                call.arguments = arguments
        return tuple(deltas)


class EnvelopeReader:
    """Reads the envelope as it grows; `feed(text)` returns (answer text, call deltas) new since the
    last feed. The grammar guarantees a valid prefix of the envelope at every step."""

    def __init__(self):
        self.text = ""
        self._content_sent = 0
        self._tracker = CallTracker()

    @property
    def called(self) -> bool:
        return self._tracker.called

    def feed(self, piece: str, *, final: bool = False) -> tuple[str, tuple[ToolCallDelta, ...]]:
        self.text += piece
        mode, content, calls = _parse(self.text)
        if mode == "content":
            new, self._content_sent = content[self._content_sent:], len(content)
            return new, ()
        return "", self._tracker.update(calls)


def _parse(text: str) -> tuple[str, str, list[tuple[str | None, str]]]:
    """("content", answer so far, []) or ("calls", "", [(name or None, raw arguments so far)]) of a
    prefix of the envelope; ("", "", []) while it is undecided."""
    i = _skip(text, 0)
    if not text.startswith("{", i):
        return "", "", []
    key, i = _string(text, _skip(text, i + 1))
    i = _skip(text, i)
    if key is None or not text.startswith(":", i):
        return "", "", []
    i = _skip(text, i + 1)
    if key == "content":
        return "content", _partial_string(text, i), []
    if key != "tool_calls" or not text.startswith("[", i):
        return "", "", []
    return "calls", "", parse_calls(text, _skip(text, i + 1))


def parse_calls(text: str, i: int = 0, *, arguments_key: str = "arguments") -> list[tuple[str | None, str]]:
    """The call objects ({"name": ..., "<arguments_key>": {...}}) from i on, as far as they are written;
    whatever lies between them (commas, tags) is passed over."""
    calls: list[tuple[str | None, str]] = []
    while (i := text.find("{", i)) != -1:
        name, arguments, end = _call_object(text, i, arguments_key)
        calls.append((name, arguments))
        if end is None:
            break
        i = end
    return calls


def _call_object(text: str, i: int, arguments_key: str) -> tuple[str | None, str, int | None]:
    """The name and raw arguments of the call object at i (as far as written), and where it ends (None
    while it is incomplete)."""
    name, arguments = None, ""
    i = _skip(text, i + 1)
    while i < len(text) and text[i] == '"':
        field, i = _string(text, i)
        i = _skip(text, i)
        if field is None or not text.startswith(":", i):
            return name, arguments, None
        i = _skip(text, i + 1)
        if field == "name":
            name, i = _string(text, i)
            if name is None:
                return None, "", None
        else:
            end = _value_end(text, i)
            if field == arguments_key:
                arguments = text[i:end] if end is not None else text[i:]
            if end is None:
                return name, arguments, None
            i = end
        i = _skip(text, i)
        if text.startswith(",", i):
            i = _skip(text, i + 1)
    if not text.startswith("}", i):
        return name, arguments, None
    return name, arguments, i + 1


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _string(text: str, i: int) -> tuple[str | None, int]:
    """A complete JSON string at i, and where it ends; (None, i) if it is not complete yet."""
    try:
        value, end = _DECODER.raw_decode(text, i)
    except ValueError:
        return None, i
    return (value, end) if isinstance(value, str) else (None, i)


def _value_end(text: str, i: int) -> int | None:
    try:
        return _DECODER.raw_decode(text, i)[1]
    except ValueError:
        return None


def _partial_string(text: str, i: int) -> str:
    """The decoded characters of a JSON string starting at i, as far as they are complete."""
    if not text.startswith('"', i):
        return ""
    out, j = [], i + 1
    while j < len(text):
        char = text[j]
        if char == '"':
            break
        if char == "\\":
            if j + 1 >= len(text):
                break
            if text[j + 1] == "u":
                width = 12 if text[j + 2:j + 4].lower() in ("d8", "d9", "da", "db") else 6  # a surrogate pair
                if j + width > len(text):
                    break
                out.append(json.loads(f'"{text[j:j + width]}"').encode("utf-8", "replace").decode())  # no lone halves
                j += width
                continue
            out.append(json.loads(f'"{text[j:j + 2]}"'))
            j += 2
            continue
        out.append(char)
        j += 1
    return "".join(out)
