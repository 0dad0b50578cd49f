"""The real embedded model builds UI: specs and quick actions that always validate, and clear errors
for output that does not (as from a remote model that ignores schemas)."""

from __future__ import annotations

import asyncio
import dataclasses

import jsonschema
import pytest

from engines.catalog import find
from engines.local import LocalEngine
from engines.model_files import resolve_path
from genui.artifact import harden, sandboxed_iframe
from genui.generate import QUICK_ACTIONS_SCHEMA, extract_html, quick_actions, ui_event, ui_spec
from genui.spec import UI_SPEC_SCHEMA, SpecError, repair, validate
from tests.support.scripted import ScriptedEngine, answer

PROMPTS = ["a tip calculator", "a quiz about planets", "a unit converter for kilometres and miles",
           "a pizza order form", "a todo list", "a BMI calculator", "a poll about favourite fruit",
           "a temperature converter", "a loan calculator", "a sign-up form for a newsletter",
           "a table of the three largest oceans", "a dice roller"]


@pytest.fixture(scope="module")
def engine():
    spec = dataclasses.replace(find("smollm2-135m-instruct"), max_concurrent=1)
    return LocalEngine(spec, resolve_path(spec), max_queue=4, queue_timeout=120)


@pytest.mark.slow
def test_a_dozen_prompts_give_specs_that_validate(engine):
    async def main():
        return [await ui_spec(engine, prompt, seed=i) for i, prompt in enumerate(PROMPTS)]

    specs = asyncio.run(main())
    for spec in specs:
        jsonschema.validate(spec, UI_SPEC_SCHEMA)
        assert validate(spec) is spec
    kinds = {leaf["type"] for spec in specs for c in spec["components"]
             for leaf in (c.get("children") or [c])}
    assert len(kinds) >= 4, kinds  # varied, not one template


@pytest.mark.slow
def test_quick_actions_always_validate(engine):
    async def main():
        results = []
        for i, prompt in enumerate(PROMPTS):
            conversation = [{"role": "user", "content": f"Tell me about {prompt}."},
                            {"role": "assistant", "content": f"Sure, here is {prompt}."}]
            results.append(await quick_actions(engine, conversation, seed=i))
        return results

    for options in asyncio.run(main()):
        jsonschema.validate({"options": options}, QUICK_ACTIONS_SCHEMA)
        assert 2 <= len(options) <= 4 and all(o["label"] and o["value"] for o in options)


def test_an_event_gets_a_reply_and_maybe_a_new_spec(engine):
    spec = {"title": "Tip", "components": [{"type": "number", "id": "bill", "label": "Bill"},
                                           {"type": "button", "id": "go", "label": "Compute"}]}
    reply, updated = asyncio.run(ui_event(engine, spec, "go", {"bill": 40}, seed=1))
    assert reply.strip()  # the schema asks for at least one character
    assert updated is None or validate(updated)


def IgnoresSchemas(text: str) -> ScriptedEngine:
    """A remote-like engine that answers in prose whatever the schema says."""
    return ScriptedEngine(answer(text), model_id="prose")


@pytest.mark.parametrize(("text", "message"), [
    ("Here is your calculator!", "not valid JSON"),
    ('{"title": "x", "components": [{"type": "video", "src": "a.mp4"}]}', "invalid at components/0"),
    ('{"title": "x", "components": []}', "invalid"),
])
def test_output_that_does_not_validate_is_reported(text, message):
    with pytest.raises(SpecError, match=message):
        asyncio.run(ui_spec(IgnoresSchemas(text), "a calculator"))


@pytest.mark.parametrize(("text", "spec"), [
    # Cut off inside the update (max_tokens): the reply, written first, still reaches the user.
    ('{"reply": "Total: 46 dollars", "spec": {"title": "Tip", "compo', None),
    # An update that does not validate leaves the controls as they are.
    ('{"reply": "Total: 46 dollars", "spec": {"title": "x", "components": [{"type": "video"}]}}', None),
    ('{"reply": "Total: 46 dollars", "spec": {"title": "New", "components": [{"type": "markdown", "text": "46"}]}}',
     {"title": "New", "components": [{"type": "markdown", "text": "46"}]}),
])
def test_an_event_reply_survives_an_unusable_update(text, spec):
    tip = {"title": "Tip", "components": [{"type": "button", "id": "go", "label": "Compute"}]}
    assert asyncio.run(ui_event(IgnoresSchemas(text), tip, "go", {})) == ("Total: 46 dollars", spec)


@pytest.mark.parametrize("text", ['{"reply": "", "spec": null}', '{"reply": "Tot', "Sure, here it is"])
def test_an_event_answer_without_a_reply_is_reported(text):
    tip = {"title": "Tip", "components": [{"type": "button", "id": "go", "label": "Compute"}]}
    with pytest.raises(SpecError, match="no text reply|not valid JSON"):
        asyncio.run(ui_event(IgnoresSchemas(text), tip, "go", {}))


def test_repair_fixes_what_grammars_cannot_and_validate_catches_the_rest():
    spec = {"title": "t", "components": [
        {"type": "textbox", "id": "a", "label": "A"}, {"type": "textbox", "id": "a", "label": "B"},
        {"type": "slider", "id": "s", "label": "S", "minimum": 9, "maximum": 1},
        {"type": "radio", "id": "r", "label": "R", "choices": ["x"], "value": "y"}]}
    fixed = validate(repair(spec))
    assert [leaf.get("id") for leaf in fixed["components"]] == ["a", "a_2", "s", "r"]
    assert (fixed["components"][2]["minimum"], fixed["components"][2]["maximum"]) == (1, 9)
    assert "value" not in fixed["components"][3]
    with pytest.raises(SpecError, match="reuses component ids"):
        validate({"title": "t", "components": [{"type": "button", "id": "b", "label": "1"},
                                               {"type": "button", "id": "b", "label": "2"}]})


def test_html_is_extracted_and_hardened():
    assert extract_html("Sure!\n```html\n<!DOCTYPE html><html><body>hi</body></html>\n```") == \
        "<!DOCTYPE html><html><body>hi</body></html>"
    assert extract_html("just text").startswith("<!doctype html><html><body>just text")
    hardened = harden("<html><head><title>x</title></head><body></body></html>")
    assert hardened.index("Content-Security-Policy") < hardened.index("<title>")
    assert "connect-src 'none'" in hardened and "playground.send" not in hardened.split("<title>")[1]
    frame = sandboxed_iframe('<p onclick="x()">"quoted"</p>')
    assert 'sandbox="allow-scripts"' in frame and "allow-same-origin" not in frame
    assert '"quoted"' not in frame and "&quot;quoted&quot;" in frame  # cannot break out of srcdoc
