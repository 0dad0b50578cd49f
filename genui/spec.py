"""The published UI-spec schema: what a model may build, as JSON.

A spec is {"title", "components": [...]}; a component is a leaf (markdown, button, textbox, number,
slider, dropdown, radio, checkbox, table) or a row/column of leaves. Buttons send an event with the
current values of every input back to the model. Generation is constrained by this schema (llama.cpp
grammar); `validate` checks specs from models that ignore schemas, plus what a schema cannot say
(unique ids, slider bounds, choices).
"""

from __future__ import annotations

from typing import Any

import jsonschema

SHORT, LONG = {"type": "string", "maxLength": 60}, {"type": "string", "maxLength": 240}
ID = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,23}$"}
NUMBER = {"type": "number"}
CHOICES = {"type": "array", "items": SHORT, "minItems": 1, "maxItems": 6}


def _leaf(kind: str, required: list[str], **properties) -> dict[str, Any]:
    return {"type": "object", "properties": {"type": {"const": kind}, **properties},
            "required": ["type", *required], "additionalProperties": False}


LEAVES = {
    "markdown": _leaf("markdown", ["text"], text=LONG),
    "button": _leaf("button", ["id", "label"], id=ID, label=SHORT),
    "textbox": _leaf("textbox", ["id", "label"], id=ID, label=SHORT, value=SHORT),
    "number": _leaf("number", ["id", "label"], id=ID, label=SHORT, value=NUMBER),
    "slider": _leaf("slider", ["id", "label", "minimum", "maximum"], id=ID, label=SHORT, minimum=NUMBER,
                    maximum=NUMBER, value=NUMBER),
    "dropdown": _leaf("dropdown", ["id", "label", "choices"], id=ID, label=SHORT, choices=CHOICES, value=SHORT),
    "radio": _leaf("radio", ["id", "label", "choices"], id=ID, label=SHORT, choices=CHOICES, value=SHORT),
    "checkbox": _leaf("checkbox", ["id", "label"], id=ID, label=SHORT, value={"type": "boolean"}),
    "table": _leaf("table", ["headers", "rows"], headers={"type": "array", "items": SHORT, "maxItems": 5},
                   rows={"type": "array", "maxItems": 8, "items": {"type": "array", "items": SHORT, "maxItems": 5}}),
}
INPUT_TYPES = ("textbox", "number", "slider", "dropdown", "radio", "checkbox")

UI_SPEC_SCHEMA: dict[str, Any] = {
    "$defs": {"leaf": {"anyOf": list(LEAVES.values())}},
    "type": "object",
    "properties": {
        "title": SHORT,
        "components": {"type": "array", "minItems": 1, "maxItems": 8, "items": {"anyOf": [
            {"$ref": "#/$defs/leaf"},
            *({"type": "object", "properties": {"type": {"const": layout},
                                                "children": {"type": "array", "minItems": 1, "maxItems": 3,
                                                             "items": {"$ref": "#/$defs/leaf"}}},
               "required": ["type", "children"], "additionalProperties": False} for layout in ("row", "column")),
        ]}},
    },
    "required": ["title", "components"],
    "additionalProperties": False,
}


class SpecError(ValueError):
    """A spec that cannot be rendered; the message says where and why."""


def leaves(spec: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for component in spec.get("components", []):
        out.extend(component["children"] if component.get("type") in ("row", "column") else [component])
    return out


def validate(spec: Any) -> dict[str, Any]:
    try:
        jsonschema.validate(spec, UI_SPEC_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise SpecError(f"UI spec is invalid at {where}: {exc.message[:300]}") from None
    ids = [leaf["id"] for leaf in leaves(spec) if "id" in leaf]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SpecError(f"UI spec reuses component ids: {', '.join(duplicates)}")
    for leaf in leaves(spec):
        if leaf["type"] == "slider" and leaf["minimum"] >= leaf["maximum"]:
            raise SpecError(f"slider '{leaf['id']}' needs minimum < maximum")
        if leaf["type"] in ("dropdown", "radio") and "value" in leaf and leaf["value"] not in leaf["choices"]:
            raise SpecError(f"{leaf['type']} '{leaf['id']}' has a value that is not one of its choices")
    return spec


def repair(spec: Any) -> Any:
    """Fixes what a grammar cannot prevent in a generated spec: repeated ids get a suffix, reversed
    slider bounds are swapped, a value outside its choices is dropped. Anything else is left for
    `validate` to report."""
    if not isinstance(spec, dict) or not isinstance(spec.get("components"), list):
        return spec
    seen: set[str] = set()
    for leaf in leaves(spec):
        if not isinstance(leaf, dict):
            continue
        if isinstance(leaf.get("id"), str):
            base, n = leaf["id"][:20], 2
            while leaf["id"] in seen:
                leaf["id"], n = f"{base}_{n}", n + 1
            seen.add(leaf["id"])
        if leaf.get("type") == "slider" and isinstance(leaf.get("minimum"), (int, float)) \
                and isinstance(leaf.get("maximum"), (int, float)) and leaf["minimum"] >= leaf["maximum"]:
            low, high = sorted((leaf["minimum"], leaf["maximum"]))
            leaf["minimum"], leaf["maximum"] = low, high if high > low else low + 1
        if leaf.get("type") in ("dropdown", "radio") and leaf.get("value") not in (leaf.get("choices") or []):
            leaf.pop("value", None)
    return spec


def input_ids(spec: dict[str, Any]) -> list[str]:
    return [leaf["id"] for leaf in leaves(spec) if leaf["type"] in INPUT_TYPES]
