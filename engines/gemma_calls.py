"""FunctionGemma's call syntax: `call:name{key:<escape>text<escape>,n:5,flags:[true,false]}`.

Keys are bare, strings sit between `<escape>` tokens, numbers and booleans are bare; calls are wrapped
in `<start_function_call>`/`<end_function_call>` (engines/tool_formats.py). `grammar` builds GBNF for
one call of any offered tool from the tools' JSON schemas (a subset: objects, arrays, strings, numbers,
booleans, null, enums and consts; anything else takes any value); `parse_calls` reads the calls as
they stream and turns each one's arguments into JSON text that only ever grows.
"""

from __future__ import annotations

import json
from typing import Any

from engines.contract import Tool

ESCAPE = "<escape>"
END = "<end_function_call>"
_ANY = "gemma-any"


def grammar(tools: tuple[Tool, ...]) -> str:
    """GBNF whose `root` is one call of one of `tools`."""
    rules: dict[str, str] = {}
    calls = []
    for index, tool in enumerate(tools):
        schema = tool.parameters
        described = isinstance(schema, dict) and isinstance(schema.get("properties"), dict)
        # A call's arguments are always an object (of any keys when the schema lists none).
        arguments = _value({**schema, "type": "object"}, f"gemma-t{index}", rules) if described else "gemma-object"
        calls.append(f'"call:" {json.dumps(tool.name)} {arguments}')
    rules["root"] = " | ".join(calls)
    rules[_ANY] = 'gemma-string | gemma-number | "true" | "false" | "null" | gemma-object | gemma-array'
    rules["gemma-array"] = f'"[" ({_ANY} ("," {_ANY})*)? "]"'
    rules["gemma-object"] = f'"{{" (gemma-key ":" {_ANY} ("," gemma-key ":" {_ANY})*)? "}}"'
    rules["gemma-key"] = "[a-zA-Z_] [a-zA-Z0-9_]{0,63}"
    rules["gemma-integer"] = '"-"? ("0" | [1-9] [0-9]{0,15})'  # as JSON writes numbers: the reader copies them
    rules["gemma-number"] = 'gemma-integer ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?'
    rules["gemma-string"] = f"{json.dumps(ESCAPE)} gemma-string-body"
    rules.update(_string_body())
    return "\n".join(f"{name} ::= {body}" for name, body in rules.items()) + "\n"


def _value(schema: Any, name: str, rules: dict[str, str]) -> str:
    """The GBNF (an expression, or a rule's name) for a value that `schema` describes."""
    if not isinstance(schema, dict):
        return _ANY
    if "const" in schema:
        return _literal(schema["const"])
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return "(" + " | ".join(_literal(v) for v in schema["enum"]) + ")"
    kind = schema.get("type")
    if kind == "string":
        return "gemma-string"
    if kind == "integer":
        return "gemma-integer"
    if kind == "number":
        return "gemma-number"
    if kind == "boolean":
        return '("true" | "false")'
    if kind == "null":
        return '"null"'
    if kind == "array":
        item = _value(schema.get("items"), f"{name}-item", rules)
        rules[name] = f'"[" ({item} ("," {item})*)? "]"'
        return name
    if kind == "object" and isinstance(schema.get("properties"), dict):
        rules[name] = _object(schema, name, rules)
        return name
    return _ANY


def _object(schema: dict, name: str, rules: dict[str, str]) -> str:
    """Properties in the schema's order, the required ones first; no others."""
    properties = schema["properties"]
    required = [key for key in properties if key in (schema.get("required") or ())]
    optional = [key for key in properties if key not in required]

    def pair(key: str, index: int) -> str:
        return f"{json.dumps(key + ':')} {_value(properties[key], f'{name}-p{index}', rules)}"

    pairs = {key: pair(key, index) for index, key in enumerate(properties)}
    if required:
        body = ' "," '.join(pairs[key] for key in required) + "".join(f' ("," {pairs[key]})?' for key in optional)
        return f'"{{" {body} "}}"'
    if not optional:
        return '"{" "}"'
    # No required key: any of the optional ones, in order, each at most once.
    starts = [" ".join([pairs[key], *(f'("," {pairs[later]})?' for later in optional[i + 1:])])
              for i, key in enumerate(optional)]
    return '"{" (' + " | ".join(starts) + ')? "}"'


def _string_body() -> dict[str, str]:
    """Text up to and including the closing <escape> (a state machine over how much of it was just read)."""
    first, rest = ESCAPE[0], ESCAPE[1:]
    rules = {"gemma-string-body": f'[^{first}] gemma-string-body | "{first}" gemma-string-body-1'}
    for i, char in enumerate(rest, start=1):
        on = '""' if i == len(rest) else f"gemma-string-body-{i + 1}"
        rules[f"gemma-string-body-{i}"] = (f'"{char}" {on} | "{first}" gemma-string-body-1 | '
                                           f'[^{first}{char}] gemma-string-body')
    return rules


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(ESCAPE + value + ESCAPE)
    return json.dumps(json.dumps(value))  # numbers, booleans, null as JSON writes them


def parse_calls(text: str, i: int = 0) -> list[tuple[str | None, str]]:
    """The calls from i on, as far as written: [(name or None, arguments as JSON text so far)]."""
    calls: list[tuple[str | None, str]] = []
    while (start := text.find("call:", i)) != -1:
        brace = text.find("{", start)
        if brace == -1:
            calls.append((None, ""))
            break
        arguments, end = _to_json(text, brace)
        calls.append((text[start + len("call:"):brace], arguments))
        if end is None:
            break
        i = end
    return calls


def _to_json(text: str, i: int) -> tuple[str, int | None]:
    """The value at i (FunctionGemma's syntax, possibly unfinished) as JSON text, as far as it is sure,
    and where it ends (None while unfinished)."""
    out: list[str] = []
    stack: list[str] = []  # open containers: "{" or "["
    expect_key = False
    while i < len(text):
        if text.startswith(ESCAPE, i):
            close = text.find(ESCAPE, i + len(ESCAPE))
            body = text[i + len(ESCAPE):close if close != -1 else len(text)]
            if close == -1:  # unfinished: its characters so far, less a closing tag half written
                out.append('"' + json.dumps(body[:len(body) - _partial(body, ESCAPE)])[1:-1])
                return "".join(out), None
            out.append(json.dumps(body))
            i = close + len(ESCAPE)
        elif ESCAPE.startswith(text[i:]):  # an <escape> half written
            break
        elif expect_key:
            colon = text.find(":", i)
            if colon == -1:
                break
            out.append(json.dumps(text[i:colon]) + ": ")
            i, expect_key = colon + 1, False
            continue
        elif text[i] in "{[":
            stack.append(text[i])
            out.append(text[i])
            expect_key = text[i] == "{" and not text.startswith("}", i + 1)
            i += 1
        elif text[i] in "}]":
            stack.pop()
            out.append(text[i])
            i += 1
        elif text[i] == ",":
            out.append(", ")
            expect_key = stack[-1] == "{"
            i += 1
        else:  # a bare number, boolean or null
            j = i
            while j < len(text) and text[j] not in ",}]<":
                j += 1
            out.append(text[i:j])
            i = j
            if j == len(text):
                break
        if not stack:
            return "".join(out), i
    return "".join(out), None


def _partial(text: str, mark: str) -> int:
    """How many characters at the end of `text` begin `mark`."""
    for length in range(min(len(mark) - 1, len(text)), 0, -1):
        if text.endswith(mark[:length]):
            return length
    return 0
