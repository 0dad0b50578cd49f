"""Asking a model for UI: quick actions, UI specs (and their updates), HTML artifacts.

Structured outputs are requested through JSON schemas, which llama.cpp enforces with grammars, so
even the 135M model's output parses and validates; a remote model that ignores the schema is caught
by validation and reported as a `SpecError`, never rendered.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from engines.contract import Completion, Engine, GenerationRequest, collect
from genui.spec import LONG, UI_SPEC_SCHEMA, SpecError, repair, validate

QUICK_ACTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"options": {"type": "array", "minItems": 2, "maxItems": 4, "items": {
        "type": "object",
        "properties": {"id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,19}$"},
                       # Not empty: an action with no label or no text to send is no action.
                       "label": {"type": "string", "minLength": 1, "maxLength": 40},
                       "value": {"type": "string", "minLength": 1, "maxLength": 100}},
        "required": ["id", "label", "value"], "additionalProperties": False}}},
    "required": ["options"],
    "additionalProperties": False,
}

_SPEC_BODY = {k: v for k, v in UI_SPEC_SCHEMA.items() if k != "$defs"}
UPDATE_SCHEMA: dict[str, Any] = {
    "$defs": UI_SPEC_SCHEMA["$defs"],
    "type": "object",
    # A reply of at least one character: an empty one would leave the user with nothing to read.
    "properties": {"reply": {**LONG, "minLength": 1}, "spec": {"anyOf": [{"type": "null"}, _SPEC_BODY]}},
    "required": ["reply", "spec"],
    "additionalProperties": False,
}

ACTIONS_PROMPT = """Here is a conversation:
{conversation}

Suggest 2 to 4 short follow-up messages the user might want to send next, as clickable options.
Each has an id (lowercase), a short label and the value that is sent when clicked."""

SPEC_PROMPT = """Build a small interactive user interface for this request: {request}

Describe it as JSON: a title and a list of components (markdown, button, textbox, number, slider,
dropdown, radio, checkbox, table, or a row/column of those). Give inputs lowercase ids. Buttons send
the current input values back to you."""

EVENT_PROMPT = """You built this interface:
{spec}

The user pressed "{event}" with these values: {values}

Reply to the user in "reply" (for example a computed result), and set "spec" to an updated
interface if it should change, or null to keep it."""

HTML_PROMPT = """Write one complete, self-contained HTML document (inline CSS and JavaScript, no external
files, no network requests) for: {request}
Reply with the HTML only."""


async def _ask(engine: Engine, prompt: str, schema: dict, max_tokens: int, temperature: float,
               seed: int | None) -> Completion:
    return await collect(engine.stream(GenerationRequest(
        messages=[{"role": "user", "content": prompt}], json_schema=schema, max_tokens=max_tokens,
        temperature=temperature, seed=seed)))


def _parse(done: Completion) -> Any:
    try:
        # strict=False: llama.cpp's grammar for length-limited strings lets a raw newline through.
        return json.loads(done.text, strict=False)
    except ValueError:
        hint = " (it ran out of tokens: raise max_tokens)" if done.finish_reason == "length" else ""
        raise SpecError(f"The model's output is not valid JSON{hint}: {done.text[:120]!r}") from None


async def _json(engine: Engine, prompt: str, schema: dict, max_tokens: int, temperature: float,
                seed: int | None) -> Any:
    return _parse(await _ask(engine, prompt, schema, max_tokens, temperature, seed))


def _leading_reply(text: str) -> str | None:
    """The "reply" of an event answer whose JSON was cut off after it (the grammar writes it first)."""
    start = re.match(r'\s*\{\s*"reply"\s*:\s*', text)
    if start is None:
        return None
    try:
        reply, _ = json.JSONDecoder(strict=False).raw_decode(text, start.end())
    except ValueError:
        return None
    return reply if isinstance(reply, str) and reply.strip() else None


async def quick_actions(engine: Engine, conversation: list[dict[str, str]], *, max_tokens: int = 400,
                        temperature: float = 0.7, seed: int | None = None, attempts: int = 2) -> list[dict[str, str]]:
    """2-4 suggested follow-ups. A small model sometimes rambles past the token limit, so a failed
    attempt is retried (with another seed) before giving up with a SpecError."""
    # Only the recent turns, each cut short: suggestions need the gist, and the prompt must fit.
    text = "\n".join(f"{m['role']}: {m['content'][:600]}" for m in conversation[-6:])
    error = SpecError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            data = await _json(engine, ACTIONS_PROMPT.format(conversation=text), QUICK_ACTIONS_SCHEMA, max_tokens,
                               temperature, None if seed is None else seed + attempt)
            jsonschema.validate(data, QUICK_ACTIONS_SCHEMA)
            return data["options"]
        except jsonschema.ValidationError as exc:
            error = SpecError(f"Quick actions are invalid: {exc.message[:200]}")
        except SpecError as exc:
            error = exc
    raise error


async def ui_spec(engine: Engine, request: str, *, max_tokens: int = 900, temperature: float = 0.7,
                  seed: int | None = None) -> dict:
    return validate(repair(await _json(engine, SPEC_PROMPT.format(request=request), UI_SPEC_SCHEMA, max_tokens,
                                       temperature, seed)))


async def ui_event(engine: Engine, spec: dict, event: str, values: dict[str, Any], *, max_tokens: int = 900,
                   temperature: float = 0.7, seed: int | None = None) -> tuple[str, dict | None]:
    """The model's answer to a button press: (text reply, updated spec or None). An update that is
    cut off or does not validate leaves the controls as they are; the reply still reaches the user."""
    prompt = EVENT_PROMPT.format(spec=json.dumps(spec), event=event, values=json.dumps(values))
    done = await _ask(engine, prompt, UPDATE_SCHEMA, max_tokens, temperature, seed)
    try:
        data = _parse(done)
    except SpecError:
        reply = _leading_reply(done.text)
        if reply is None:
            raise
        return reply, None
    if not isinstance(data, dict) or not isinstance(data.get("reply"), str) or not data["reply"].strip():
        raise SpecError("The model's answer to the event has no text reply.")
    if data.get("spec") is None:
        return data["reply"], None
    try:
        return data["reply"], validate(repair(data["spec"]))
    except SpecError:
        return data["reply"], None


async def html_artifact(engine: Engine, request: str, *, max_tokens: int = 1200, temperature: float = 0.7) -> str:
    done = await collect(engine.stream(GenerationRequest(
        messages=[{"role": "user", "content": HTML_PROMPT.format(request=request)}], max_tokens=max_tokens,
        temperature=temperature)))
    return extract_html(done.text)


def extract_html(text: str) -> str:
    """The HTML document inside a reply (fenced or not); bare text becomes a minimal document."""
    fenced = re.search(r"```(?:html)?\s*(.*?)```", text, re.DOTALL | re.IGNORECASE)
    body = fenced.group(1) if fenced else text
    start = re.search(r"<!doctype html|<html", body, re.IGNORECASE)
    if start:
        end = body.lower().rfind("</html>")
        return body[start.start(): end + 7 if end >= 0 else len(body)].strip()
    return f"<!doctype html><html><body>{body.strip()}</body></html>"


