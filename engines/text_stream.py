"""Streaming text filters that work on arbitrary token boundaries.

Both hold back only the few characters that might be the start of a marker, so text reaches the
client as soon as it is certain.
"""

from __future__ import annotations


def _held_suffix(text: str, markers: tuple[str, ...]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of some marker."""
    longest = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), longest, -1):
            if text.endswith(marker[:size]):
                longest = size
                break
    return longest


class StopMatcher:
    """Cuts the stream at the first stop string, even when it arrives split across tokens."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Returns the text that is safe to emit now; sets `stopped` once a stop string appears."""
        if self.stopped:
            return ""
        self._pending += text
        hits = [i for i in (self._pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            out = self._pending[: min(hits)]
            self._pending = ""
            self.stopped = True
            return out
        keep = _held_suffix(self._pending, self.stops)
        out = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(out) :]
        return out

    def flush(self) -> str:
        """At end of generation, whatever was held back was not a stop string after all."""
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out


class ReasoningSplitter:
    """Separates `<think>…</think>` reasoning from the answer.

    Thinking models either emit the opening tag themselves or have it written by the chat template
    at the end of the prompt (then `starts_inside=True`).
    """

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self, starts_inside: bool = False):
        self.inside = starts_inside
        self._pending = ""
        self._trim_answer_start = False  # answers usually follow the closing tag after blank lines

    def feed(self, text: str) -> tuple[str, str]:
        """Returns (answer_text, reasoning_text) safe to emit now."""
        self._pending += text
        answer, reasoning = [], []
        while self._pending:
            marker = self.CLOSE if self.inside else self.OPEN
            index = self._pending.find(marker)
            if index >= 0:
                self._route(self._pending[:index], answer, reasoning)
                self._pending = self._pending[index + len(marker) :]
                self.inside = not self.inside
                self._trim_answer_start = not self.inside
                continue
            keep = _held_suffix(self._pending, (marker,))
            self._route(self._pending[: len(self._pending) - keep], answer, reasoning)
            self._pending = self._pending[len(self._pending) - keep :]
            break
        return "".join(answer), "".join(reasoning)

    def flush(self) -> tuple[str, str]:
        rest, self._pending = self._pending, ""
        return ("", rest) if self.inside else (rest, "")

    def _route(self, text: str, answer: list[str], reasoning: list[str]) -> None:
        if self.inside:
            reasoning.append(text)
            return
        if self._trim_answer_start:
            text = text.lstrip("\n")
            self._trim_answer_start = not text
        answer.append(text)
