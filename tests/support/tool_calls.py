"""Reads a tool-calling answer the way a streaming client does: cut into pieces of `step` characters,
fed to a reader (the envelope's or a native format's), deltas assembled into calls."""

from __future__ import annotations


def read_cut(reader, text: str, step: int) -> tuple[str, list[dict[str, str]]]:
    """(answer text, calls as {id, name, arguments}); checks the deltas' shape on the way: dense indices,
    each call's id and name once."""
    answer, calls = "", {}
    for start in range(0, len(text), step):
        piece, deltas = reader.feed(text[start:start + step], final=start + step >= len(text))
        answer += piece
        for delta in deltas:
            if delta.id:
                assert delta.index == len(calls) and delta.index not in calls
                calls[delta.index] = {"id": delta.id, "name": delta.name, "arguments": ""}
            calls[delta.index]["arguments"] += delta.arguments
    return answer, [calls[i] for i in sorted(calls)]
