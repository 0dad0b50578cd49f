"""The Chat tab's sampling settings: the controls (defaults read from the engine contract) and their
validation, shared by the UI events and the `/chat` API.

Bounds match the OpenAI routes' (api/schemas.py; both take the stop limits from the engine contract),
so a setting the UI accepts the API accepts too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gradio as gr

from engines.contract import MAX_STOP_CHARS, MAX_STOPS, GenerationRequest

# The order the controls are laid out, passed to handlers, and read back by `read_sampling`.
FIELDS = ("top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repeat_penalty", "seed", "stop")
DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(GenerationRequest) if f.name in FIELDS}
MAX_SEED = 2**32 - 1  # llama.cpp seeds are 32-bit


def _shown(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _number(name: str, value: Any, low: float, high: float, *, integer: bool = False, low_open: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise gr.Error(f"{name} must be a number, not {str(value)[:40]!r}.")
    if integer and value != int(value):
        raise gr.Error(f"{name} must be a whole number, not {value}.")
    if value < low or value > high or (low_open and value == low):
        raise gr.Error(f"{name} must be {'over' if low_open else 'from'} {_shown(low)} "
                       f"{'and at most' if low_open else 'to'} {_shown(high)}; it is {_shown(value)}.")
    return int(value) if integer else float(value)


def parse_stops(stop: Any) -> tuple[str, ...]:
    """Stop sequences from a list, or from text with one per line (`\\n`, `\\t`: a newline, a tab)."""
    if stop is None:
        return ()
    if isinstance(stop, str):
        items = [line.replace("\\n", "\n").replace("\\t", "\t") for line in stop.splitlines()]
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        items = stop
    else:
        raise gr.Error("Stop sequences must be text (one per line) or a list of strings.")
    stops = tuple(s for s in items if s)
    if len(stops) > MAX_STOPS:
        raise gr.Error(f"At most {MAX_STOPS} stop sequences; there are {len(stops)}.")
    if any(len(s) > MAX_STOP_CHARS for s in stops):
        raise gr.Error(f"Each stop sequence may have at most {MAX_STOP_CHARS} characters.")
    return stops


def read_sampling(top_p=DEFAULTS["top_p"], top_k=DEFAULTS["top_k"], min_p=DEFAULTS["min_p"],
                  presence_penalty=DEFAULTS["presence_penalty"], frequency_penalty=DEFAULTS["frequency_penalty"],
                  repeat_penalty=DEFAULTS["repeat_penalty"], seed=None, stop=None) -> dict[str, Any]:
    """The settings in `FIELDS` order -> GenerationRequest keyword arguments; gr.Error naming the bad one."""
    if seed is not None and not (isinstance(seed, str) and not seed.strip()):
        seed = _number("Seed", seed, 0, MAX_SEED, integer=True)
    else:
        seed = None
    return {
        "top_p": _number("Top-p", top_p, 0, 1),
        "top_k": _number("Top-k", top_k, 0, 1_000_000, integer=True),
        "min_p": _number("Min-p", min_p, 0, 1),
        "presence_penalty": _number("Presence penalty", presence_penalty, -2, 2),
        "frequency_penalty": _number("Frequency penalty", frequency_penalty, -2, 2),
        "repeat_penalty": _number("Repeat penalty", repeat_penalty, 0, 10, low_open=True),
        "seed": seed,
        "stop": parse_stops(stop),
    }


def read_basics(temperature: Any, max_tokens: Any) -> dict[str, Any]:
    return {"temperature": _number("Temperature", temperature, 0, 2),
            "max_tokens": _number("Max tokens", max_tokens, 1, 1_000_000, integer=True)}


def build_controls() -> list[gr.components.Component]:
    """The advanced settings, closed by default, in `FIELDS` order."""
    with gr.Accordion("Advanced settings", open=False, elem_id="advanced-settings"):
        with gr.Row():
            top_p = gr.Slider(0, 1, value=DEFAULTS["top_p"], step=0.01, label="Top-p", elem_id="top-p")
            top_k = gr.Slider(0, 200, value=DEFAULTS["top_k"], step=1, label="Top-k", info="0: no cut")
            min_p = gr.Slider(0, 1, value=DEFAULTS["min_p"], step=0.01, label="Min-p")
        with gr.Row():
            presence = gr.Slider(-2, 2, value=DEFAULTS["presence_penalty"], step=0.05, label="Presence penalty")
            frequency = gr.Slider(-2, 2, value=DEFAULTS["frequency_penalty"], step=0.05, label="Frequency penalty")
            repeat = gr.Slider(0.05, 3, value=DEFAULTS["repeat_penalty"], step=0.05, label="Repeat penalty",
                               info="1: off")
        with gr.Row():
            seed = gr.Number(None, precision=0, minimum=0, maximum=MAX_SEED, label="Seed",
                             info="Blank: a new random draw each time", elem_id="seed")
            stop = gr.Textbox(label="Stop sequences", lines=2, elem_id="stop-sequences",
                              info="One per line; \\n for a newline", placeholder="e.g. \\n\\n")
    return [top_p, top_k, min_p, presence, frequency, repeat, seed, stop]
