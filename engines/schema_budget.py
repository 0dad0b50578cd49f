"""Limits a JSON schema must meet before a grammar is built from it.

A schema becomes a llama.cpp grammar (GBNF). Bounded repetitions — `maxLength`, `maxItems`, a
pattern's `{m,n}` — expand into rules nested once per allowed item: llama.cpp's grammar parser
takes 1000 nested levels and refuses 1001, and far beyond that it overflows its stack and kills the
process (`maxLength: 1000000` did). Lower bounds (`minLength`, `minItems`) expand into repeated rules,
and a deeply nested schema exhausts Python's recursion while converting. So every untrusted schema is
walked first (iteratively: depth alone must not crash the check) and refused with the path of the
first field over a limit. Measured on SmolLM2's vocabulary (2-core VM): the grammar of a bounded
repetition of 1000 (8 KB) builds in under 2 ms.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from engines.errors import InvalidRequest


@dataclass(frozen=True)
class SchemaLimits:
    max_bytes: int = 32_768  # the schema as JSON
    max_depth: int = 64  # nested objects and arrays of the schema document
    max_upper_bound: int = 1000  # maxLength, maxItems, maxProperties, a pattern's {m,n}: nested rules
    max_lower_bound: int = 1000  # minLength, minItems, minProperties: repeated rules
    max_enum: int = 256  # values of an enum
    max_pattern: int = 1000  # characters of a pattern
    max_grammar_chars: int = 250_000  # the grammar built from a schema that passed the rest


LIMITS = SchemaLimits()
SCHEMA_PARAM = "response_format.json_schema.schema"
UPPER = ("maxLength", "maxItems", "maxProperties", "maxContains")
LOWER = ("minLength", "minItems", "minProperties", "minContains")
_QUANTIFIER = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")


def check_schema(schema: Any, param: str, limits: SchemaLimits = LIMITS) -> None:
    """Raises InvalidRequest naming the first field over a limit (`param` is where the schema sits)."""
    if not isinstance(schema, dict):
        raise InvalidRequest(f"'{param}' must be a JSON object (a JSON schema).", param=param)
    size = len(json.dumps(schema, check_circular=False, default=str)) if _shallow(schema, limits.max_depth) else None
    if size is None:
        raise InvalidRequest(f"'{param}' nests deeper than {limits.max_depth} levels.", param=param)
    if size > limits.max_bytes:
        raise InvalidRequest(f"'{param}' is {size} bytes of JSON; the limit is {limits.max_bytes}.", param=param)
    stack: list[tuple[Any, str]] = [(schema, param)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            path = f"{where}.{key}"
            if key in UPPER:
                _bounded(value, limits.max_upper_bound, path)
            elif key in LOWER:
                _bounded(value, limits.max_lower_bound, path)
            elif key == "enum" and isinstance(value, list) and len(value) > limits.max_enum:
                raise InvalidRequest(f"'{path}' lists {len(value)} values; the limit is {limits.max_enum}.",
                                     param=path)
            elif key == "pattern" and isinstance(value, str):
                _pattern(value, limits, path)
            if isinstance(value, (dict, list)):
                stack.append((value, path))


def check_grammar(grammar: str, param: str, limits: SchemaLimits = LIMITS) -> None:
    if len(grammar) > limits.max_grammar_chars:
        raise InvalidRequest(f"'{param}' makes a grammar of {len(grammar)} characters; the limit is "
                             f"{limits.max_grammar_chars}. Use fewer or smaller bounded fields.", param=param)


def _shallow(node: Any, max_depth: int) -> bool:
    """Whether the document nests at most `max_depth` levels (checked without recursion)."""
    stack = [(node, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return False
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


def _bounded(value: Any, limit: int, path: str) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
        raise InvalidRequest(f"'{path}' is {value:g}; the limit is {limit} (each bounded item becomes a "
                             "grammar rule).", param=path)


def _pattern(pattern: str, limits: SchemaLimits, path: str) -> None:
    if len(pattern) > limits.max_pattern:
        raise InvalidRequest(f"'{path}' has {len(pattern)} characters; the limit is {limits.max_pattern}.",
                             param=path)
    for low, high in _QUANTIFIER.findall(pattern):
        count = max(int(low), int(high) if high else 0)
        if count > limits.max_upper_bound:
            raise InvalidRequest(f"'{path}' repeats up to {count} times; the limit is {limits.max_upper_bound}.",
                                 param=path)
