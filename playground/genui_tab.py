"""The Generated UI tab: a model answers with an interface.

- "controls": the model writes a UI spec (genui/spec.py) that is rendered as real Gradio
  components; pressing one of its buttons sends the event and current values back to the model,
  which replies and may update the interface.
- "html": the model writes an HTML page, shown only in a sandboxed iframe (genui/artifact.py); its
  `playground.send(name, value)` messages arrive in the "Events from the page" box.
A pasted spec (JSON) or page renders the same way, to try or debug them by hand.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from engines.errors import EngineError
from engines.registry import ModelRegistry
from genui import generate
from genui.artifact import sandboxed_iframe
from genui.spec import SpecError, input_ids, validate
from playground.caller import as_caller

EMPTY_ARTIFACT = "<p style='color:#888'>The generated page appears here, sandboxed.</p>"


class GenUITab:
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def _engine(self, model: str):
        try:
            return self.registry.get(model)
        except EngineError as exc:
            raise gr.Error(exc.message) from None

    async def generate_ui(self, request: str, model: str, kind: str = "controls") -> dict[str, Any]:
        """kind "controls" -> {"spec": {...}}; kind "html" -> {"html": "<!doctype html>..."}."""
        if not (request or "").strip():
            raise gr.Error("Describe the interface you want first.")
        engine = self._engine(model)
        try:
            if kind == "html":
                return {"kind": "html", "html": await generate.html_artifact(engine, request.strip())}
            if kind == "controls":
                return {"kind": "controls", "spec": await generate.ui_spec(engine, request.strip())}
        except (SpecError, EngineError) as exc:
            raise gr.Error(str(exc)) from None
        raise gr.Error('kind must be "controls" or "html".')

    async def send_event(self, spec: dict, event: str, values: dict, model: str) -> dict[str, Any]:
        """A button press on a generated UI: {"reply": text, "spec": updated spec or null}."""
        try:
            reply, updated = await generate.ui_event(self._engine(model), validate(spec), event, values or {})
        except (SpecError, EngineError) as exc:
            raise gr.Error(str(exc)) from None
        return {"reply": reply, "spec": updated}

    async def _generate(self, request, model, kind):
        result = await self.generate_ui(request, model, "html" if kind.startswith("HTML") else "controls")
        if result["kind"] == "html":
            return gr.skip(), sandboxed_iframe(result["html"]), "", gr.skip()
        return result["spec"], EMPTY_ARTIFACT, "", json.dumps(result["spec"], indent=1)

    @staticmethod
    def _load(text: str):
        try:
            spec = validate(json.loads(text or ""))
        except ValueError as exc:  # SpecError is a ValueError, like a JSON syntax error
            raise gr.Error(f"Cannot render this spec: {exc}") from None
        return spec, ""

    def build(self, model_ids: list[str], default_model: str | None) -> gr.Dropdown:
        with gr.Row():
            model = gr.Dropdown(model_ids, value=default_model, label="Model", scale=2,
                                allow_custom_value=True)  # models may join the fleet after the page was built
            kind = gr.Radio(["Controls (UI spec)", "HTML page (sandboxed)"], value="Controls (UI spec)",
                            label="Answer with", scale=3)
        with gr.Row():
            request = gr.Textbox(placeholder="e.g. a tip calculator, a quiz about planets", show_label=False,
                                 scale=6, elem_id="genui-request")
            go = gr.Button("Generate", variant="primary", scale=1, elem_id="genui-generate")
        spec = gr.State(None)
        reply = gr.Markdown(elem_id="genui-reply")

        @gr.render(inputs=[spec, model])
        def render(current: dict | None, model_id: str):
            if not current:
                gr.Markdown("_Generated controls appear here._", elem_id="genui-empty")
                return
            gr.Markdown(f"### {current.get('title', '')}", elem_id="genui-title")
            inputs: dict[str, gr.components.Component] = {}
            buttons: list[tuple[str, gr.Button]] = []
            for component in current["components"]:
                if component["type"] in ("row", "column"):
                    with (gr.Row() if component["type"] == "row" else gr.Column()):
                        for leaf in component["children"]:
                            _render_leaf(leaf, inputs, buttons)
                else:
                    _render_leaf(component, inputs, buttons)
            ids = [i for i in input_ids(current) if i in inputs]
            for button_id, button in buttons:
                async def pressed(*values, button_id=button_id):
                    result = await self.send_event(current, button_id, dict(zip(ids, values, strict=True)), model_id)
                    return result["reply"], result["spec"] if result["spec"] is not None else gr.skip()
                button.click(as_caller(pressed), [inputs[i] for i in ids], [reply, spec], api_visibility="private")

        artifact = gr.HTML(EMPTY_ARTIFACT, elem_id="genui-artifact")
        bridge = gr.Textbox(visible="hidden", elem_id="artifact-bridge")
        events = gr.JSON(label="Events from the page", elem_id="genui-events", value=[])
        with gr.Accordion("Try a spec or a page by hand", open=False):
            pasted = gr.Code(language="json", label="UI spec (JSON)", elem_id="genui-spec-json")
            load = gr.Button("Render this spec", elem_id="genui-load")
            pasted_html = gr.Code(language="html", label="HTML page", elem_id="genui-html")
            show = gr.Button("Show this page (sandboxed)", elem_id="genui-show")

        go.click(as_caller(self._generate), [request, model, kind], [spec, artifact, reply, pasted],
                 api_visibility="private", concurrency_limit=None)
        load.click(self._load, [pasted], [spec, reply], api_visibility="private")
        show.click(lambda page: sandboxed_iframe(page or ""), [pasted_html], [artifact], api_visibility="private")
        bridge.change(lambda message, log: [*(log or [])[-19:], json.loads(message)], [bridge, events], events,
                     api_visibility="private")
        gr.api(as_caller(self.generate_ui), api_name="generate_ui", concurrency_limit=None)
        gr.api(as_caller(self.send_event), api_name="ui_event", concurrency_limit=None)
        return model


def _render_leaf(leaf: dict, inputs: dict, buttons: list) -> None:
    kind, key = leaf["type"], leaf.get("id")
    elem_id = f"genui-{key}" if key else None
    if kind == "markdown":
        gr.Markdown(leaf["text"])
    elif kind == "button":
        buttons.append((key, gr.Button(leaf["label"], elem_id=elem_id)))
    elif kind == "textbox":
        inputs[key] = gr.Textbox(leaf.get("value", ""), label=leaf["label"], elem_id=elem_id)
    elif kind == "number":
        inputs[key] = gr.Number(leaf.get("value"), label=leaf["label"], elem_id=elem_id)
    elif kind == "slider":
        inputs[key] = gr.Slider(leaf["minimum"], leaf["maximum"], value=leaf.get("value", leaf["minimum"]),
                                label=leaf["label"], elem_id=elem_id)
    elif kind == "dropdown":
        inputs[key] = gr.Dropdown(leaf["choices"], value=leaf.get("value"), label=leaf["label"], elem_id=elem_id)
    elif kind == "radio":
        inputs[key] = gr.Radio(leaf["choices"], value=leaf.get("value"), label=leaf["label"], elem_id=elem_id)
    elif kind == "checkbox":
        inputs[key] = gr.Checkbox(leaf.get("value", False), label=leaf["label"], elem_id=elem_id)
    elif kind == "table":
        width = len(leaf["headers"])
        rows = [(row + [""] * width)[:width] for row in leaf["rows"]] or [[""] * width]
        gr.Dataframe(rows, headers=leaf["headers"], interactive=False, elem_classes=["genui-table"])
