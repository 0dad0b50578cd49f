"""The Arena tab: pick a mode, members and a lead; members' answers stream side by side, stages
appear as collapsible steps with status and duration, and the final answer stands out.

`ArenaView` folds mode events into what is shown (pure, tested without a browser); the handlers
consume `modes.run_mode`, the same generator the REST route and the OpenAI alias use.
"""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr
from pydantic import ValidationError

from engines.errors import EngineError
from engines.registry import ModelRegistry
from genui import generate
from genui.spec import SpecError
from modes import LEAD_ROLE, MODES, run_mode
from modes.events import Event, ModeOptions
from playground.gestures_tab import message_for

DEFAULT_LEAD = "(first member)"
MODE_HELP = {
    "compare": "All members answer in parallel; speed is measured and the fastest marked.",
    "council": "Members answer, rank each other's anonymous answers, then the chairman (lead) writes the answer.",
    "roundtable": "Members take turns building on the discussion; the moderator (lead) may end it and sums up.",
    "debate": "Members answer, then revise after seeing the others' answers; the judge (lead) or a vote decides.",
    "analyze": "Independent answers, then consensus and unique points by the synthesizer (lead).",
    "mixture": "Layers of proposers, each refining the previous layer's answers; the aggregator (lead) writes "
               "the answer.",
}


class ArenaView:
    """Everything the tab shows, rebuilt from the events seen so far."""

    def __init__(self):
        self.steps: list[dict[str, Any]] = []  # one per turn: title, text, status, duration
        self._index: dict[tuple[str, str, str], int] = {}
        self.stage = ""
        self.final = ""
        self.final_by = ""
        self.error = ""
        self.notes: list[str] = []
        self.options: list[dict[str, str]] = []  # quick actions under the final answer

    def apply(self, event: Event) -> None:
        key = (event.stage, event.member, event.role)
        if event.type == "stage_start":
            self.stage = event.stage
        elif event.type == "member_start":
            self._index[key] = len(self.steps)
            who = event.member if event.role == "member" else f"{event.role}: {event.member}"
            self.steps.append({"title": f"{event.stage} · {who}", "stage": event.stage, "member": event.member,
                               "text": "", "status": "pending", "duration": None})
        elif event.type == "token":
            self.steps[self._index[key]]["text"] += event.text
        elif event.type in ("member_done", "member_error"):
            step = self.steps[self._index[key]]
            step["status"] = "done"
            step["duration"] = round((event.duration_ms or 0) / 1000, 1)
            if event.type == "member_error":
                step["text"] += f"\n\n⚠️ {event.text}"
                step["title"] += " (failed)"
        elif event.type == "stage_done" and event.data.get("converged"):
            self.notes.append(f"The moderator ended the discussion after {event.stage}.")
        elif event.type == "final":
            self.final, self.final_by = event.text, event.member or "vote"
            fastest = event.data.get("fastest_total")
            if fastest:
                self.notes.append(f"Fastest: {fastest}")
        elif event.type == "error":
            self.error = event.text

    def timeline(self) -> list[dict[str, Any]]:
        messages = []
        for step in self.steps:
            metadata = {"title": step["title"], "status": step["status"]}
            if step["duration"] is not None:
                metadata["duration"] = step["duration"]
            messages.append({"role": "assistant", "content": step["text"] or "…", "metadata": metadata})
        if self.final:
            final = {"role": "assistant", "content": f"**Final answer** ({self.final_by}):\n\n{self.final}"}
            if self.options:
                final["options"] = self.options
            messages.append(final)
        return messages

    def columns(self) -> str:
        """The current stage's turns side by side (text escaped: model output is never markup here)."""
        cards = []
        for step in (s for s in self.steps if s["stage"] == self.stage):
            state = "⏳" if step["status"] == "pending" else f"✓ {step['duration']} s"
            cards.append(
                f"<div class='arena-card'><div class='arena-head'><b>{html.escape(step['title'])}</b>"
                f"<span>{state}</span></div><div class='arena-text'>{html.escape(step['text'])}</div></div>")
        return f"<div class='arena-columns'>{''.join(cards)}</div>" if cards else ""

    def headline(self) -> str:
        if self.error:
            return f"### ⚠️ {self.error}"
        if self.final:
            extra = "".join(f"\n\n_{note}_" for note in self.notes)
            return f"### Final answer — {self.final_by}\n\n{self.final}{extra}"
        return f"Running: **{self.stage or 'starting'}**…"


CSS = """
.arena-columns {display:flex; gap:12px; flex-wrap:wrap}
.arena-card {flex:1 1 260px; border:1px solid var(--border-color-primary); border-radius:8px; padding:8px}
.arena-head {display:flex; justify-content:space-between; font-size:0.9em; margin-bottom:6px}
.arena-text {white-space:pre-wrap; font-size:0.92em; max-height:260px; overflow:auto}
"""


class ArenaTab:
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def _options(self, members, lead, rounds, max_tokens, turn_timeout, exclude_self_votes) -> ModeOptions:
        for model_id in [*(members or []), *([lead] if lead and lead != DEFAULT_LEAD else [])]:
            if model_id not in self.registry.ids:
                raise gr.Error(f"Unknown model '{model_id}'. Available: {', '.join(self.registry.ids)}.")
        try:
            return ModeOptions(
                members=list(members or []), lead=None if lead in (None, "", DEFAULT_LEAD) else lead,
                rounds=int(rounds), max_tokens=int(max_tokens), turn_timeout=float(turn_timeout),
                exclude_self_votes=bool(exclude_self_votes))
        except ValidationError as exc:
            raise gr.Error(f"Check the settings: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None

    def _events(self, mode, question, options) -> AsyncIterator[Event]:
        if mode not in MODES:
            raise gr.Error(f"Pick a mode: {', '.join(MODES)}.")
        if not (question or "").strip():
            raise gr.Error("Type a question first.")
        return run_mode(mode, question.strip(), options, self.registry.get)

    async def stream(self, mode, question, members, lead, rounds, max_tokens, turn_timeout, exclude_self_votes,
                     quick_actions=False):
        options = self._options(members, lead, rounds, max_tokens, turn_timeout, exclude_self_votes)
        view, shown_at = ArenaView(), 0.0
        async for event in self._events(mode, question, options):
            view.apply(event)
            # Tokens arrive faster than a page can redraw: refresh at most ~12 times a second.
            if event.type != "token" or time.monotonic() - shown_at > 0.08:
                shown_at = time.monotonic()
                yield view.headline(), view.columns(), view.timeline()
        if quick_actions and view.final:
            conversation = [{"role": "user", "content": question}, {"role": "assistant", "content": view.final}]
            try:
                suggested = await generate.quick_actions(self.registry.get(options.lead or options.members[0]),
                                                         conversation)
                view.options = [{"label": o["label"], "value": o["value"]} for o in suggested]
            except (SpecError, EngineError) as exc:
                gr.Warning(f"No quick actions this time: {exc}")
        yield view.headline(), view.columns(), view.timeline()

    async def pick_option(self, mode, _question, members, lead, rounds, max_tokens, turn_timeout,
                          exclude_self_votes, quick_actions, evt: gr.SelectData):
        """A quick action under the final answer was clicked: run the arena on its value."""
        async for update in self.stream(mode, evt.value, members, lead, rounds, max_tokens, turn_timeout,
                                        exclude_self_votes, quick_actions):
            yield update

    async def reply_to_gesture(self, event: dict | None, view: str, *settings):
        """Runs the arena on the message a gesture produced, when the Arena is the view in use."""
        text = message_for(event, view, "arena")
        if text is None:
            yield gr.skip(), gr.skip(), gr.skip()
            return
        mode, _, *rest = settings
        async for update in self.stream(mode, text, *rest):
            yield update

    async def arena(self, mode: str, question: str, members: list[str], lead: str = DEFAULT_LEAD,
                    rounds: int = 2, max_tokens: int = 256, turn_timeout: float = 120.0,
                    exclude_self_votes: bool = True) -> dict[str, Any]:
        """Runs a mode to the end (for gradio_client): {final, final_by, error, turns: [{title, text}]}."""
        options = self._options(members, lead, rounds, max_tokens, turn_timeout, exclude_self_votes)
        view = ArenaView()
        async for event in self._events(mode, question, options):
            view.apply(event)
        return {"final": view.final, "final_by": view.final_by, "error": view.error,
                "turns": [{"title": s["title"], "text": s["text"]} for s in view.steps]}

    def build(self, gesture_messages: gr.JSON | None = None,
              view: gr.State | None = None) -> tuple[gr.Dropdown, gr.CheckboxGroup]:
        ids = self.registry.ids
        chat_ids = [e.spec.id for e in self.registry.entries() if e.spec.chat] or ids
        with gr.Row():
            mode = gr.Radio(list(MODES), value="council", label="Mode", elem_id="arena-mode", scale=3)
            lead = gr.Dropdown([DEFAULT_LEAD, *ids], value=DEFAULT_LEAD, label="Chairman", scale=1)
        about = gr.Markdown(MODE_HELP["council"])
        members = gr.CheckboxGroup(ids, value=ids if len(ids) > 1 else chat_ids, label="Members",
                                   elem_id="arena-members")
        with gr.Accordion("Settings", open=False):
            with gr.Row():
                rounds = gr.Slider(1, 4, value=2, step=1, label="Rounds (roundtable, debate) / layers (mixture)")
                max_tokens = gr.Slider(16, 1024, value=192, step=16, label="Max tokens per turn")
                turn_timeout = gr.Number(120, label="Turn timeout (s)", minimum=1)
                exclude_self = gr.Checkbox(True, label="Council: ignore self-votes")
                quick = gr.Checkbox(False, label="Quick actions under the answer", elem_id="arena-quick-actions")
        with gr.Row():
            question = gr.Textbox(placeholder="Ask the arena a question", show_label=False, scale=6,
                                  elem_id="arena-question")
            run = gr.Button("Run", variant="primary", scale=1, elem_id="arena-run")
            stop = gr.Button("Stop", variant="stop", scale=1, elem_id="arena-stop")
        headline = gr.Markdown(elem_id="arena-final")
        columns = gr.HTML(elem_id="arena-columns")
        timeline = gr.Chatbot(label="Stages", height=420, elem_id="arena-timeline")

        mode.change(lambda m: (MODE_HELP[m], gr.update(label=LEAD_ROLE.get(m, "lead").capitalize())),
                    mode, [about, lead], api_visibility="private")
        inputs = [mode, question, members, lead, rounds, max_tokens, turn_timeout, exclude_self, quick]
        outputs = [headline, columns, timeline]
        on_run = run.click(self.stream, inputs, outputs, api_name="arena_stream", concurrency_limit=None)
        on_enter = question.submit(self.stream, inputs, outputs, api_visibility="private", concurrency_limit=None)
        on_option = timeline.option_select(self.pick_option, inputs, outputs, api_visibility="private",
                                           concurrency_limit=None)
        runs = [on_run, on_enter, on_option]
        if gesture_messages is not None and view is not None:
            runs.append(gesture_messages.change(self.reply_to_gesture, [gesture_messages, view, *inputs], outputs,
                                                api_visibility="private", concurrency_limit=None))
        stop.click(None, cancels=runs, api_visibility="private")
        gr.api(self.arena, api_name="arena", concurrency_limit=None)
        return lead, members
