"""Log-probabilities in OpenAI's two shapes: chat's `logprobs.content` (one entry per token, with
bytes and the likeliest alternatives) and legacy completions' parallel lists (`tokens`,
`token_logprobs`, `top_logprobs`, `text_offset`), which lm-evaluation-harness reads."""

from __future__ import annotations

from typing import Any

from engines.contract import TokenLogprob


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", "replace")


def chat(entries: tuple[TokenLogprob, ...] | list[TokenLogprob]) -> dict[str, Any]:
    def one(entry: TokenLogprob) -> dict[str, Any]:
        return {"token": _text(entry.piece), "logprob": entry.logprob, "bytes": list(entry.piece)}

    return {"content": [{**one(e), "top_logprobs": [one(a) for a in e.top]} for e in entries], "refusal": None}


def text(entries: tuple[TokenLogprob, ...] | list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """`offset`: where the first entry's text starts in the choice's text (after earlier chunks)."""
    offsets = []
    for entry in entries:
        offsets.append(offset)
        offset += len(_text(entry.piece))
    return {
        "tokens": [_text(e.piece) for e in entries],
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [{_text(a.piece): a.logprob for a in e.top} if e.logprob is not None else None
                         for e in entries],
        "text_offset": offsets,
    }


def echoed(entries: tuple[TokenLogprob, ...] | list[TokenLogprob]) -> str:
    """The prompt as its tokens spell it."""
    return _text(b"".join(e.piece for e in entries))
