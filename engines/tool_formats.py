"""Tool calls in a model's own format, for models whose chat template knows tools.

Hermes/Qwen (`<tool_call>{json}</tool_call>`), Mistral (`[TOOL_CALLS][{json}, ...]`), Llama 3 (a bare
`{"name": ..., "parameters": ...}` answer) and FunctionGemma (`<start_function_call>call:name{...}
<end_function_call>`, its own syntax: engines/gemma_calls.py). The prompt is the model's template rendered with
`tools`. One grammar covers the whole answer: under `auto`, free text in which the format's opener
appears only as the start of calls, which are then valid against their tools' schemas and followed
by nothing; under `required` (or a named tool), calls at once. A thinking model may reason first.
(A grammar over the whole answer, not llama.cpp's lazy grammar: a lazy grammar is fed the token that
completes its trigger whole, and a token that runs past the opener — SmolLM2's `></` after
`<tool_call` — makes llama.cpp abort the process.) `NativeReader` splits the streamed text into
answer text and tool-call deltas, holding back what may be the start of an opener.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from engines import gemma_calls
from engines.contract import GenerationRequest, Tool, ToolCallDelta
from engines.tools import CallTracker, arguments_object, call_schema, openai_call_id, parse_calls

AUTO_RULE = "native-auto"  # the grammar's root under `auto` (the schema's own `root` is one call)
FORCED_RULE = "native-forced"  # the root when a call is required


@dataclass(frozen=True)
class ToolFormat:
    """How a model family writes its calls: `begin` + call JSON (+ `separator` + call JSON)* + `end`."""

    name: str
    opener: str  # shows that calls begin (`begin` starts with it): a marker, or (Llama 3) the JSON's "{"
    begin: str
    separator: str
    end: str
    arguments_key: str = "arguments"
    syntax: str = "json"  # how a call is written: JSON {"name", <arguments_key>}, or "gemma" (gemma_calls.py)
    markers: tuple[str, ...] = ()  # special tokens of the format, shown as text to the reader (besides the opener)
    at_start: bool = False  # a call only when the answer begins with it (the opener is plain JSON)
    parallel: bool = True  # the format carries several calls
    id_length: int = 0  # the ids its template accepts (Mistral: 9 alphanumerics); 0: OpenAI's "call_..."

    def new_id(self) -> str:
        return secrets.token_hex(self.id_length)[:self.id_length] if self.id_length else openai_call_id()

    def grammar(self, tools: tuple[Tool, ...], *, parallel: bool, thinking: bool, in_reasoning: bool) -> str:
        """GBNF with two roots: AUTO_RULE (text, then optionally calls) and FORCED_RULE (calls only),
        each after the model's reasoning when it thinks (`in_reasoning`: the prompt opened it)."""
        if self.syntax == "gemma":
            one_call = gemma_calls.grammar(tools).rstrip("\n")  # its `root` is one call
        else:
            schema = {"oneOf": [call_schema(tool, self.arguments_key) for tool in tools]}
            one_call = json_schema_to_gbnf(json.dumps(schema)).rstrip("\n")  # its `root` is one call object
        calls = f"root ({_literal(self.separator)} root)*" if parallel and self.parallel else "root"
        rules = [one_call, f"native-calls ::= {_literal(self.begin)} {calls} {_literal(self.end)}"]
        if self.at_start:  # a call, or an answer that does not begin with the opener (the call's own start)
            first = _char_not(self.opener, " ", "\t", "\n")
            rules.append(f"native-text ::= [ \\t\\n]* (native-calls | {first} .*)?")
        else:  # free text in which the opener begins the calls
            rules.append(f"native-rest ::= {_literal(self.begin[len(self.opener):])} {calls} {_literal(self.end)}")
            rules += _free_text("native-text", self.opener, then="native-rest")
        reasoning = ""
        if thinking:
            rules += _free_text("native-thought", "</think>", then="[ \\t\\n]*", ends=False)
            reasoning = "native-thought " if in_reasoning else '("<think>" native-thought)? '
        rules += [f"{AUTO_RULE} ::= {reasoning}native-text", f"{FORCED_RULE} ::= {reasoning}native-calls"]
        return "\n".join(rules) + "\n"


FORMATS: dict[str, ToolFormat] = {
    "hermes": ToolFormat("hermes", opener="<tool_call>", begin="<tool_call>\n",
                         separator="\n</tool_call>\n<tool_call>\n", end="\n</tool_call>"),
    "mistral": ToolFormat("mistral", opener="[TOOL_CALLS]", begin="[TOOL_CALLS][", separator=", ", end="]",
                          id_length=9),
    "functiongemma": ToolFormat("functiongemma", opener="<start_function_call>", begin="<start_function_call>",
                                separator="<end_function_call><start_function_call>", end="<end_function_call>",
                                syntax="gemma", markers=("<end_function_call>", gemma_calls.ESCAPE)),
    "llama3": ToolFormat("llama3", opener="{", begin="", separator="", end="", arguments_key="parameters",
                         at_start=True, parallel=False),
}


def detect(template: str) -> ToolFormat | None:
    """The format a chat template teaches, if it renders `tools` in one this module speaks; else None
    (the JSON envelope of engines/tools.py serves the model)."""
    if "tools" not in template:
        return None
    if "<start_function_call>" in template:
        return FORMATS["functiongemma"]
    if "[TOOL_CALLS]" in template:
        return FORMATS["mistral"]
    if "<tool_call>" in template and "<function=" not in template:  # not Qwen3-Coder's XML calls
        return FORMATS["hermes"]
    if "<|start_header_id|>" in template and '"parameters"' in template:
        return FORMATS["llama3"]
    return None


def choose(setting: str, template: str) -> ToolFormat | None:
    """--tool-format: `auto` detects from the template, `envelope` never uses a native format."""
    if setting == "auto":
        return detect(template)
    return None if setting == "envelope" else FORMATS[setting]


def template_tools(request: GenerationRequest) -> list[dict[str, Any]] | None:
    """The offered tools as chat templates take them (OpenAI's shape); None when none are offered."""
    if not request.tools or request.tool_choice == "none":
        return None
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters}} for t in request.tools]


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as chat templates expect them: a call's arguments as an object (OpenAI sends JSON text)."""
    out = []
    for message in messages:
        if message.get("tool_calls"):
            calls = [{**call, "function": {**call["function"],
                                           "arguments": arguments_object(call["function"].get("arguments"))}}
                     for call in message["tool_calls"]]
            message = {**message, "tool_calls": calls}
        out.append(message)
    return out


class NativeReader:
    """Reads a native-format answer as it grows: `feed(text)` returns (answer text, call deltas) new
    since the last feed. Text that may be the start of an opener waits until it is one or is not (or
    the answer ends: `final`)."""

    def __init__(self, tool_format: ToolFormat):
        self.format = tool_format
        self.text = ""
        self._sent = 0  # answer text delivered
        self._calls_at: int | None = None  # where the calls begin
        self._plain = False  # (at_start formats) the answer began otherwise: no call can come
        self._tracker = CallTracker(tool_format.new_id)

    @property
    def called(self) -> bool:
        return self._tracker.called

    def feed(self, piece: str, *, final: bool = False) -> tuple[str, tuple[ToolCallDelta, ...]]:
        self.text += piece
        content = ""
        if self._calls_at is None:
            self._locate()
            if self._calls_at is not None:  # the whitespace before the calls (held back) is not part of the answer
                content, self._sent = self.text[self._sent:self._calls_at].rstrip(), self._calls_at
            else:
                upto = len(self.text) - (0 if final else self._undecided())
                content, self._sent = self.text[self._sent:upto], max(self._sent, upto)
        if self._calls_at is None:
            return content, ()
        if self.format.syntax == "gemma":
            return content, self._tracker.update(gemma_calls.parse_calls(self.text, self._calls_at))
        return content, self._tracker.update(
            parse_calls(self.text, self._calls_at, arguments_key=self.format.arguments_key))

    def _locate(self) -> None:
        opener = self.format.opener
        if self.format.at_start:
            if not self._plain and (rest := self.text.lstrip()):
                if rest.startswith(opener):
                    self._calls_at = len(self.text) - len(rest)
                else:
                    self._plain = True
            return
        found = self.text.find(opener, max(0, self._sent - len(opener)))
        if found != -1:
            self._calls_at = found

    def _undecided(self) -> int:
        """How many characters at the end may still turn out to open a call, with the whitespace before
        them (not answer text if a call follows)."""
        if self.format.at_start:
            return 0 if self._plain else len(self.text) - self._sent  # only whitespace so far
        opener, tail = self.format.opener, len(self.text)
        for length in range(min(len(opener) - 1, tail - self._sent), 0, -1):
            if self.text.endswith(opener[:length]):
                tail -= length
                break
        return len(self.text) - self._sent - len(self.text[self._sent:tail].rstrip())


def _literal(text: str) -> str:
    return json.dumps(text) if text else '""'


def _free_text(name: str, mark: str, *, then: str, ends: bool = True) -> list[str]:
    """Right-linear GBNF rules (a state machine over how much of `mark` was just written) for text in
    which `mark` appears once, as the switch to the rule `then`. `ends`: the text may also end there
    (a plain answer); else it goes on until `mark`. `mark`'s first character must not recur in it, so
    after a partial match only that character starts a new one."""
    first, rest = mark[0], mark[1:]
    assert first not in rest, mark
    end = ' | ""' if ends else ""
    rules = [f"{name} ::= {_char_not(first)} {name} | {_literal(first)} {name}-1{end}"]
    for i, char in enumerate(rest, start=1):
        on = then if i == len(rest) else f"{name}-{i + 1}"
        rules.append(f"{name}-{i} ::= {_literal(char)} {on} | {_literal(first)} {name}-1 | "
                     f"{_char_not(first, char)} {name}{end}")
    return rules


def _char_not(*chars: str) -> str:
    escaped = {"\\": "\\\\", "]": "\\]", "[": "\\[", "^": "\\^", "-": "\\-", "\n": "\\n", "\t": "\\t"}
    return "[^" + "".join(escaped.get(c, c) for c in chars) + "]"
