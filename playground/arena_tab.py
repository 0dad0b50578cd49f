"""The Arena tab: pick a mode, members and a lead; members' answers stream side by side, stages
appear as collapsible steps with status and duration, and the final answer stands out.

`ArenaView` folds mode events into what is shown (pure, tested without a browser); the handlers
consume `modes.run_mode`, the same generator the REST route and the OpenAI alias use.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr
from pydantic import ValidationError

from engines.errors import EngineError
from engines.personas import Persona, slug
from engines.registry import ModelRegistry
from genui import generate
from genui.spec import SpecError
from modes import LEAD_ROLE, MODES, run_mode
from modes.adapter import ModeRun, Step, resolve_options
from modes.events import Event, ModeOptions
from playground.caller import as_caller
from playground.gesture_bus import message_for
from playground.safe_markdown import to_html

DEFAULT_LEAD = "(first member)"
MAX_PERSONAS = 32
MODE_HELP = {
    "compare": "All members answer in parallel; speed is measured and the fastest marked.",
    "council": "Members answer, rank each other's anonymous answers, then the chairman (lead) writes the answer.",
    "roundtable": "Members take turns building on the discussion; the moderator (lead) may end it and sums up.",
    "debate": "Members answer, then revise after seeing the others' answers; the judge (lead) or a vote decides.",
    "analyze": "Independent answers, then consensus and unique points by the synthesizer (lead).",
    "mixture": "Layers of proposers, each refining the previous layer's answers; the aggregator (lead) writes "
               "the answer.",
    "agent": "The lead (agent) answers with tools — a calculator, the current time, and asking another member — "
             "step by step; each call and its result appear as a step.",
}


FOLLOW_UP_EXCHANGES = 2  # earlier questions (with their final answers) a follow-up carries: small contexts
FOLLOW_UP_CHARS = 1200  # each one cut to this


def continued(conversation: list[dict[str, str]] | None, question: str, final: str) -> list[dict[str, str]]:
    """The conversation after this run: its question and final answer added, the oldest dropped."""
    added = [*(conversation or []), {"role": "user", "content": question[:FOLLOW_UP_CHARS]},
             {"role": "assistant", "content": final[:FOLLOW_UP_CHARS]}]
    return added[-2 * FOLLOW_UP_EXCHANGES:]


def shown_text(step: Step) -> str:
    return step.text + (f"\n\n⚠️ {step.error}" if step.error else "")


def figures(step: Step) -> str:
    """A turn's time to first token, speed and tokens, as the card's stats line (empty for a tool step)."""
    if step.started_at is None:
        return ""
    ttft, rate = step.ttft_ms, step.tokens_per_second
    unknown = "…" if step.status == "running" else "–"  # a turn over without text (tool calls only, or failed)
    shown = [("ttft", "TTFT " + (f"{ttft:,.0f} ms" if ttft is not None else unknown)),
             ("rate", f"{rate:,.1f} tok/s" if rate is not None else "– tok/s"),
             ("tokens", f"{step.tokens} token{'' if step.tokens == 1 else 's'}")]
    return "<div class='arena-stats'>" + "".join(f"<span class='arena-{name}'>{text}</span>"
                                                 for name, text in shown) + "</div>"


def card(step: Step) -> str:
    """One turn: title, state, figures, and its text as sanitized Markdown (see safe_markdown)."""
    state = "⏳" if step.status == "running" else f"✓ {round((step.duration_ms or 0) / 1000, 1)} s"
    error = f"<p class='arena-error'>⚠️ {html.escape(step.error)}</p>" if step.error else ""
    return (f"<div class='arena-card'><div class='arena-head'><b>{html.escape(step.title)}</b><span>{state}</span>"
            f"</div>{figures(step)}<div class='arena-text'>{to_html(step.text)}{error}</div></div>")


class ArenaView:
    """Everything the tab shows, rendered from the fold of the events seen so far (`ModeRun`)."""

    def __init__(self, mode: str = "", follows: int = 0):
        self.run = ModeRun(mode)
        self.options: list[dict[str, str]] = []  # quick actions under the final answer
        self.follows = follows  # earlier exchanges this run continues

    def apply(self, event: Event) -> None:
        self.run.apply(event)

    @property
    def final(self) -> str:
        return self.run.final.text if self.run.final else ""

    @property
    def final_by(self) -> str:
        return (self.run.final.member or "vote") if self.run.final else ""

    def notes(self) -> list[str]:
        notes = [f"The moderator ended the discussion after {stage['stage']}."
                 for stage in self.run.stages if stage.get("data", {}).get("converged")]
        fastest = self.run.final.data.get("fastest_total") if self.run.final else None
        return notes + ([f"Fastest: {fastest}"] if fastest else [])

    def timeline(self) -> list[dict[str, Any]]:
        messages = []
        for step in self.run.steps:
            metadata = {"title": step.title, "status": "pending" if step.status == "running" else "done"}
            if step.duration_ms is not None:
                metadata["duration"] = round(step.duration_ms / 1000, 1)
            messages.append({"role": "assistant", "content": shown_text(step) or "…", "metadata": metadata})
        if self.final:
            final = {"role": "assistant", "content": f"**Final answer** ({self.final_by}):\n\n{self.final}"}
            if self.options:
                final["options"] = self.options
            messages.append(final)
        return messages

    def columns(self) -> str:
        """The current stage's turns side by side, each with its figures (model output is Markdown
        rendered without any HTML of the model's own)."""
        cards = [card(step) for step in self.run.steps if step.stage == self.run.stage]
        return f"<div class='arena-columns'>{''.join(cards)}</div>" if cards else ""

    def headline(self) -> str:
        follow = (f"\n\n_Follow-up: the members saw the last {self.follows} exchange"
                  f"{'s' if self.follows > 1 else ''}. **New conversation** starts over._" if self.follows else "")
        if self.run.error:
            return f"### ⚠️ {self.run.error}"
        if self.final:
            extra = "".join(f"\n\n_{note}_" for note in self.notes())
            return f"### Final answer — {self.final_by}\n\n{self.final}{extra}{follow}"
        return f"Running: **{self.run.stage or 'starting'}**…{follow}"


CSS = """
.arena-columns {display:flex; gap:12px; flex-wrap:wrap}
.arena-card {flex:1 1 260px; border:1px solid var(--border-color-primary); border-radius:8px; padding:8px}
.arena-head {display:flex; justify-content:space-between; font-size:0.9em; margin-bottom:6px}
.arena-stats {display:flex; gap:10px; font-size:0.8em; opacity:0.8; margin-bottom:6px;
              font-variant-numeric:tabular-nums}
.arena-text {font-size:0.92em; max-height:260px; overflow:auto}
.arena-text p, .arena-text ul, .arena-text ol, .arena-text pre {margin:0 0 0.5em}
.arena-text pre {white-space:pre-wrap; padding:6px; border-radius:4px; background:var(--background-fill-secondary)}
"""


class ArenaTab:
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def _start(self, mode, question, members, lead, rounds, max_tokens, turn_timeout,
               exclude_self_votes, temperature, history=None) -> tuple[ModeOptions, AsyncIterator[Event]]:
        """The options and the event stream, checked like the REST route's; a gr.Error says what is wrong."""
        if not (question or "").strip():
            raise gr.Error("Type a question first.")
        fields = {"members": list(members or []), "lead": None if lead in (None, "", DEFAULT_LEAD) else lead,
                  "rounds": int(rounds), "max_tokens": int(max_tokens), "turn_timeout": float(turn_timeout),
                  "exclude_self_votes": bool(exclude_self_votes), "temperature": float(temperature),
                  "history": list(history or [])}
        try:
            options = resolve_options(mode, fields, self.registry)
        except EngineError as exc:
            raise gr.Error(exc.message) from None
        return options, run_mode(mode, question.strip(), options, self.registry.get)

    async def stream(self, mode, question, members, lead, rounds, max_tokens, turn_timeout, exclude_self_votes,
                     temperature, quick_actions=False, conversation=None):
        """Runs the mode, continuing `conversation` (earlier questions and final answers); yields the
        headline, the columns, the timeline and the conversation after this run."""
        options, events = self._start(mode, question, members, lead, rounds, max_tokens, turn_timeout,
                                      exclude_self_votes, temperature, conversation)
        view, shown_at = ArenaView(mode, follows=len(conversation or []) // 2), 0.0
        async for event in events:
            view.apply(event)
            # Tokens arrive faster than a page can redraw: refresh at most ~12 times a second.
            if event.type != "token" or time.monotonic() - shown_at > 0.08:
                shown_at = time.monotonic()
                # Markdown of long turns takes milliseconds a card: off the event loop.
                yield view.headline(), await asyncio.to_thread(view.columns), view.timeline(), gr.skip()
        if quick_actions and view.final:
            conversation = [{"role": "user", "content": question}, {"role": "assistant", "content": view.final}]
            try:
                suggested = await generate.quick_actions(self.registry.get(options.lead_member),
                                                         conversation)
                view.options = [{"label": o["label"], "value": o["value"]} for o in suggested]
            except (SpecError, EngineError) as exc:
                gr.Warning(f"No quick actions this time: {exc}")
        after = continued(conversation, question.strip(), view.final) if view.final else conversation
        yield view.headline(), await asyncio.to_thread(view.columns), view.timeline(), after

    async def pick_option(self, mode, _question, members, lead, rounds, max_tokens, turn_timeout,
                          exclude_self_votes, temperature, quick_actions, conversation, evt: gr.SelectData):
        """A quick action under the final answer was clicked: run the arena on its value (a follow-up)."""
        async for update in self.stream(mode, evt.value, members, lead, rounds, max_tokens, turn_timeout,
                                        exclude_self_votes, temperature, quick_actions, conversation):
            yield update

    async def reply_to_gesture(self, event: dict | None, view: str, *settings):
        """Runs the arena on the message a gesture produced, when the Arena is the view in use."""
        text = message_for(event, view, "arena")
        if text is None:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        mode, _, *rest = settings
        async for update in self.stream(mode, text, *rest):
            yield update

    def personas_table(self) -> str:
        rows = [f"| `{p.id}` | {html.escape(p.name)} | `{p.model}` | {html.escape(p.system[:120])} |"
                for p in self.registry.personas.values()]
        return "| id | name | model | system prompt |\n|---|---|---|---|\n" + "\n".join(rows) if rows else \
            "_No personas: add one below._"

    def add_persona(self, name: str, model: str | None, system: str, temperature: float,
                    members: list[str] | None = None):
        """Adds a persona (or updates the one of that name) for every user of this server; it joins the
        members. Returns the members, the lead choices and the personas table."""
        if len(self.registry.personas) >= MAX_PERSONAS and slug(name or "") not in self.registry.personas:
            raise gr.Error(f"At most {MAX_PERSONAS} personas.")
        try:
            persona = Persona(id=slug(name or ""), name=name or "", model=model or None, system=system or "",
                              temperature=float(temperature))
            persona = self.registry.add_persona(persona, reserved=frozenset(MODES))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise gr.Error(f"Persona {first['loc'][0]}: {first['msg']}") from None
        except EngineError as exc:
            raise gr.Error(exc.message) from None
        ids = [*self.registry.ids, *self.registry.personas]
        chosen = [m for m in members or [] if m in ids and m != persona.id] + [persona.id]
        return (gr.update(choices=ids, value=chosen), gr.update(choices=[DEFAULT_LEAD, *ids]),
                self.personas_table())

    async def arena(self, mode: str, question: str, members: list[str], lead: str = DEFAULT_LEAD,
                    rounds: int = ModeOptions.default("rounds"), max_tokens: int = ModeOptions.default("max_tokens"),
                    turn_timeout: float = ModeOptions.default("turn_timeout"),
                    exclude_self_votes: bool = ModeOptions.default("exclude_self_votes"),
                    history: list[dict[str, str]] | None = None,
                    temperature: float = ModeOptions.default("temperature")) -> dict[str, Any]:
        """Runs a mode to the end (for gradio_client): {final, final_by, error, turns: [{title, text}]}.
        `history`: the conversation so far ([{role, content}]), which a follow-up question continues."""
        _, events = self._start(mode, question, members, lead, rounds, max_tokens, turn_timeout, exclude_self_votes,
                                temperature, history)
        view = ArenaView(mode)
        view.run = await ModeRun.collect(mode, events)
        return {"final": view.final, "final_by": view.final_by, "error": view.run.error,
                "turns": [{"title": s.title, "text": shown_text(s)} for s in view.run.steps]}

    def build(self, gesture_messages: gr.JSON | None = None,
              view: gr.State | None = None) -> tuple[gr.Dropdown, gr.CheckboxGroup]:
        ids = [*self.registry.ids, *self.registry.personas]
        with gr.Row():
            mode = gr.Radio(list(MODES), value="council", label="Mode", elem_id="arena-mode", scale=3)
            lead = gr.Dropdown([DEFAULT_LEAD, *ids], value=DEFAULT_LEAD, label="Chairman", scale=1)
        about = gr.Markdown(MODE_HELP["council"])
        members = gr.CheckboxGroup(ids, value=self.registry.default_members, label="Members",
                                   elem_id="arena-members")
        with gr.Accordion("Settings", open=False):
            with gr.Row():
                rounds = gr.Slider(1, 4, value=ModeOptions.default("rounds"), step=1,
                                   label="Rounds (roundtable, debate) / layers (mixture)")
                max_tokens = gr.Slider(16, 1024, value=ModeOptions.default("max_tokens"), step=16,
                                       label="Max tokens per turn", elem_id="arena-max-tokens")
                turn_timeout = gr.Number(ModeOptions.default("turn_timeout"), label="Turn timeout (s)", minimum=1)
                exclude_self = gr.Checkbox(ModeOptions.default("exclude_self_votes"),
                                           label="Council: ignore self-votes")
                temperature = gr.Slider(0, 2, value=ModeOptions.default("temperature"), step=0.05,
                                        label="Temperature (models; a persona keeps its own)",
                                        elem_id="arena-temperature")
                quick = gr.Checkbox(False, label="Quick actions under the answer", elem_id="arena-quick-actions")
        with gr.Accordion("Personas", open=False):
            panel = gr.Markdown(self.personas_table(), elem_id="arena-personas")
            with gr.Row():
                persona_name = gr.Textbox(label="Name", placeholder="The Lawyer", scale=2, elem_id="persona-name")
                persona_model = gr.Dropdown(self.registry.chat_ids, value=next(iter(self.registry.chat_ids), None),
                                            label="Model", scale=2)
                persona_temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature", scale=2)
            persona_system = gr.Textbox(label="System prompt", lines=2, elem_id="persona-system",
                                        placeholder="You are a careful lawyer. Point out risks and obligations.")
            add = gr.Button("Add persona", elem_id="persona-add")
        with gr.Row():
            question = gr.Textbox(placeholder="Ask the arena a question", show_label=False, scale=6,
                                  elem_id="arena-question")
            run = gr.Button("Run", variant="primary", scale=1, elem_id="arena-run")
            stop = gr.Button("Stop", variant="stop", scale=1, elem_id="arena-stop")
            new = gr.Button("New conversation", scale=1, elem_id="arena-new")
        headline = gr.Markdown(elem_id="arena-final")
        columns = gr.HTML(elem_id="arena-columns")
        timeline = gr.Chatbot(label="Stages", height=420, elem_id="arena-timeline")

        mode.change(lambda m: (MODE_HELP[m], gr.update(label=LEAD_ROLE.get(m, "lead").capitalize())),
                    mode, [about, lead], api_visibility="private")
        conversation = gr.State([])  # earlier questions and final answers, which a follow-up continues
        inputs = [mode, question, members, lead, rounds, max_tokens, turn_timeout, exclude_self, temperature, quick,
                  conversation]
        outputs = [headline, columns, timeline, conversation]
        run_mode_here = as_caller(self.stream)
        on_run = run.click(run_mode_here, inputs, outputs, api_name="arena_stream", concurrency_limit=None)
        on_enter = question.submit(run_mode_here, inputs, outputs, api_visibility="private", concurrency_limit=None)
        on_option = timeline.option_select(as_caller(self.pick_option), inputs, outputs, api_visibility="private",
                                           concurrency_limit=None)
        runs = [on_run, on_enter, on_option]
        if gesture_messages is not None and view is not None:
            runs.append(gesture_messages.change(as_caller(self.reply_to_gesture), [gesture_messages, view, *inputs],
                                                outputs, api_visibility="private", concurrency_limit=None))
        stop.click(None, cancels=runs, api_visibility="private")
        add.click(self.add_persona, [persona_name, persona_model, persona_system, persona_temperature,
                                                members], [members, lead, panel], api_name="add_persona")
        new.click(lambda: ("", "", [], []), None, outputs, cancels=runs, api_visibility="private")
        gr.api(as_caller(self.arena), api_name="arena", concurrency_limit=None)
        return lead, members
