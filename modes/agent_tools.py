"""The agent's tools, in one registry: each is a function schema the lead sees and an async function
that runs it. Add a tool by adding an `AgentTool` to `TOOLS`.

- `calculator`: arithmetic parsed with `ast` and evaluated node by node (never `eval`): numbers,
  + - * / // % **, parentheses and a few math functions; bounded sizes, so no input can hang it.
- `current_time`: the date and time now, in UTC or a named time zone.
- `ask_model`: consults another member (a hosted model or a persona) through the mode's own turns.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engines.contract import Tool


class ToolFailed(Exception):
    """What the lead is told instead of a result (bad arguments, a member that is down, ...)."""


class Consult(Protocol):
    async def __call__(self, member: str, question: str) -> str: ...


@dataclass(frozen=True)
class AgentTool:
    spec: Tool
    run: Callable[[dict[str, Any], Consult], Awaitable[str]]


MAX_EXPRESSION = 200  # characters
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {"sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "log": math.log,
              "log10": math.log10, "exp": math.exp, "abs": abs, "round": round, "floor": math.floor,
              "ceil": math.ceil}
_CONSTANTS = {"pi": math.pi, "e": math.e}


def calculate(expression: str) -> float | int:
    """The value of an arithmetic expression; ToolFailed says what is not allowed."""
    if len(expression) > MAX_EXPRESSION:
        raise ToolFailed(f"expression longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise ToolFailed(f"not an arithmetic expression: {expression!r}") from None
    return _value(tree.body)


def _value(node: ast.AST) -> float | int:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolFailed(f"exponent over {MAX_EXPONENT}")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ToolFailed("division by zero") from None
        except (OverflowError, ValueError) as exc:
            raise ToolFailed(str(exc)) from None
        if isinstance(result, complex) or abs(result) > MAX_MAGNITUDE:
            raise ToolFailed("result out of range")
        return result
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and not node.keywords and 1 <= len(node.args) <= 2):
        try:
            return _FUNCTIONS[node.func.id](*(_value(a) for a in node.args))
        except (ValueError, OverflowError, TypeError) as exc:
            raise ToolFailed(f"{node.func.id}: {exc}") from None
    raise ToolFailed(f"not allowed in an expression: {ast.unparse(node)!r}")


async def _calculator(arguments: dict[str, Any], consult: Consult) -> str:
    value = calculate(str(arguments.get("expression", "")))
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


async def _current_time(arguments: dict[str, Any], consult: Consult) -> str:
    zone = str(arguments.get("timezone") or "UTC")
    try:
        now = datetime.now(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolFailed(f"unknown time zone {zone!r} (use an IANA name such as Europe/Paris)") from None
    return now.strftime(f"%A %Y-%m-%d %H:%M:%S ({zone})")


async def _ask_model(arguments: dict[str, Any], consult: Consult) -> str:
    return await consult(str(arguments.get("member", "")), str(arguments.get("question", "")))


TOOLS: dict[str, AgentTool] = {tool.spec.name: tool for tool in (
    AgentTool(Tool("calculator", "Evaluate an arithmetic expression exactly, e.g. (3 + 4) * 12 or sqrt(2)",
                   {"type": "object", "properties": {"expression": {"type": "string", "maxLength": MAX_EXPRESSION}},
                    "required": ["expression"]}), _calculator),
    AgentTool(Tool("current_time", "The current date and time",
                   {"type": "object", "properties": {"timezone": {"type": "string", "maxLength": 64}}}),
              _current_time),
    AgentTool(Tool("ask_model", "Ask another model or persona a question and get its answer",
                   {"type": "object", "properties": {"member": {"type": "string"},
                                                     "question": {"type": "string", "maxLength": 1000}},
                    "required": ["member", "question"]}), _ask_model),
)}


def specs(members: list[str]) -> tuple[Tool, ...]:
    """The tools as the lead sees them: ask_model only when there is another member, naming them."""
    out = []
    for name, tool in TOOLS.items():
        if name == "ask_model":
            if not members:
                continue
            parameters = {**tool.spec.parameters, "properties": {
                **tool.spec.parameters["properties"], "member": {"enum": members}}}
            out.append(Tool(name, tool.spec.description + f" (members: {', '.join(members)})", parameters))
        else:
            out.append(tool.spec)
    return tuple(out)
