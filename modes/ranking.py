"""Reading a ranking of "Response A, B, ..." out of whatever a small model wrote."""

from __future__ import annotations

import json
import re

_FINAL = re.compile(r"final\s*ranking\s*[:\-]*", re.IGNORECASE)
_NAMED = re.compile(r"response\s*[\"'(\[]?\s*([A-Z])\b", re.IGNORECASE)
_LISTED = re.compile(r"^[ \t]*(?:#?\d+[.):]|[-*•])?[ \t]*[\"'(\[*]*([A-Z])[\"')\]*]*[ \t]*(?:[.:,)\-–]|$)",
                     re.MULTILINE)
_INLINE = re.compile(r"\b([A-Z])\b\s*(?:>|,|;|then\b)")


def parse_ranking(text: str, labels: list[str]) -> list[str]:
    """Labels (e.g. ["A", "B", "C"]) in ranked order, best first; unknown or repeated ones dropped.

    Prefers the part after "FINAL RANKING:"; reads "Response X" mentions, else list items that are
    a bare letter ("1. B", "- C"), else inline orders ("B > A > C", "B, A, C").
    """
    matches = list(_FINAL.finditer(text))
    section = text[matches[-1].end():] if matches else text
    valid = {label.upper() for label in labels}
    best: list[str] = []
    for pattern, source in ((_NAMED, section), (_LISTED, section), (_INLINE, section + ",")):
        found = [label for label in _unique(m.group(1).upper() for m in pattern.finditer(source)) if label in valid]
        if len(found) > len(best):  # the reading that recovers the most labels wins; ties: the stricter one
            best = found
    return best


def ranking_schema(labels: list[str]) -> dict:
    """Constrains a ranker (models that honour JSON schemas) to a complete, well-formed ranking."""
    names = [f"Response {label}" for label in labels]
    return {
        "type": "object",
        "properties": {
            "evaluation": {"type": "string", "maxLength": 600},
            "final_ranking": {"type": "array", "items": {"enum": names}, "minItems": len(names),
                              "maxItems": len(names)},
        },
        "required": ["evaluation", "final_ranking"],
    }


def read_ranking(text: str, labels: list[str]) -> list[str]:
    """A ranking from a schema-shaped JSON reply, or from free text when the model ignored the schema."""
    try:
        listed = json.loads(text)["final_ranking"]
        return parse_ranking("\n".join(f"{i}. {item}" for i, item in enumerate(listed, 1)), labels)
    except (ValueError, KeyError, TypeError):
        return parse_ranking(text, labels)


def _unique(items) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def aggregate(rankings: dict[str, list[str]], label_of: dict[str, str], exclude_self: bool) -> list[dict]:
    """Mean 1-based position per member across rankers (lower is better), best first.

    `rankings`: ranker -> labels best first; `label_of`: member -> its anonymous label.
    """
    member_of = {label: member for member, label in label_of.items()}
    positions: dict[str, list[int]] = {member: [] for member in label_of}
    for ranker, labels in rankings.items():
        own = label_of.get(ranker)
        ordered = [label for label in labels if not (exclude_self and label == own)]
        for position, label in enumerate(ordered, start=1):
            positions[member_of[label]].append(position)
    rows = [{"member": m, "label": label_of[m], "mean_position": round(sum(p) / len(p), 3) if p else None,
             "votes": len(p)} for m, p in positions.items()]
    return sorted(rows, key=lambda r: (r["mean_position"] is None, r["mean_position"] or 0, r["label"]))
