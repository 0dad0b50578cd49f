"""The Arena tab: folding events into the view, gradio_client, and a real browser run with Stop."""

from __future__ import annotations

import inspect
import re
import time

import gradio as gr
import httpx
import pytest
from gradio_client import Client

from engines.personas import DEFAULT_PANEL
from engines.registry import ModelRegistry
from modes.adapter import ModeRun
from modes.events import Event, ModeOptions
from playground.arena_tab import ArenaTab, ArenaView
from tests.support import browser
from tests.support.servers import BASE_MODEL, CHAT_MODEL, start_server, stop_server


def test_view_folds_events_into_steps_columns_and_final():
    view = ArenaView()
    for event in [
        Event("stage_start", "council", stage="answers"),
        Event("member_start", "council", stage="answers", member="a", role="member"),
        Event("member_start", "council", stage="answers", member="b", role="member"),
        Event("token", "council", stage="answers", member="a", role="member", text="<b>Hi</b>"),
        Event("member_done", "council", stage="answers", member="a", role="member", duration_ms=1200),
        Event("member_error", "council", stage="answers", member="b", role="member", text="down", duration_ms=5),
    ]:
        view.apply(event)
    timeline = view.timeline()
    assert [m["metadata"]["title"] for m in timeline] == ["answers · a", "answers · b (failed)"]
    assert timeline[0]["metadata"] == {"title": "answers · a", "status": "done", "duration": 1.2}
    assert "&lt;b&gt;Hi&lt;/b&gt;" in view.columns()  # model output is escaped, never markup
    assert "Running" in view.headline()
    view.apply(Event("final", "council", member="a", role="chairman", text="Paris"))
    assert view.timeline()[-1]["content"].endswith("Paris") and "Paris" in view.headline()


def test_each_card_shows_its_turns_figures_and_markdown():
    readings = iter([0.0, 0.0, 0.42, 0.52, 0.62])  # when the fold sees each event
    view = ArenaView("compare")
    view.run = ModeRun("compare", clock=lambda: next(readings))
    turn = {"stage": "answers", "role": "member"}
    view.apply(Event("stage_start", "compare", stage="answers"))
    view.apply(Event("member_start", "compare", member="a", **turn))
    view.apply(Event("member_start", "compare", member="b", **turn))
    waiting = view.columns()
    assert waiting.count("TTFT …") == 2 and waiting.count("– tok/s") == 2 and waiting.count("0 tokens") == 2
    for text in ("**Rivers**:\n", "- Nile\n", "- <img src=x onerror=alert(1)>"):
        view.apply(Event("token", "compare", member="a", text=text, **turn))
    running = view.columns()
    assert "TTFT 420 ms" in running and "10.0 tok/s" in running and "3 tokens" in running
    assert "<strong>Rivers</strong>" in running and "<li>Nile</li>" in running
    assert "<img" not in running and "&lt;img src=x onerror=alert(1)&gt;" in running
    view.apply(Event("member_done", "compare", member="a", duration_ms=900,
                     data={"ttft_ms": 415.2, "tokens_per_second": 31.25, "completion_tokens": 7}, **turn))
    view.apply(Event("member_error", "compare", member="b", text="<b>down</b>", duration_ms=5, **turn))
    a, b = view.columns().split("<div class='arena-card'>")[1:]
    assert re.findall(r"<span class='arena-\w+'>([^<]*)</span>", a) == ["TTFT 415 ms", "31.2 tok/s", "7 tokens"]
    assert "✓ 0.9 s" in a and "⚠️ &lt;b&gt;down&lt;/b&gt;" in b and "TTFT –" in b  # failed before a token


def test_tool_steps_have_no_figures():
    view = ArenaView("agent")
    view.apply(Event("stage_start", "agent", stage="step 1"))
    view.apply(Event("tool_call", "agent", stage="step 1", member="calculator", role="tool", text="37*91"))
    assert "37*91" in view.columns() and "arena-stats" not in view.columns()


@pytest.fixture(scope="module")
def gradio(server) -> Client:
    return Client(server.url + "/", verbose=False)


def test_gradio_client_runs_the_arena(gradio):
    result = gradio.predict("debate", "Name a sea animal.", [CHAT_MODEL, BASE_MODEL], CHAT_MODEL, 1, 24, 60, True,
                            api_name="/arena")
    assert result["final"] and not result["error"]
    assert [t["title"] for t in result["turns"]][:2] == [f"answers · {CHAT_MODEL}", f"answers · {BASE_MODEL}"]


@pytest.fixture
def own_gradio(tmp_path):
    """A server of its own: the persona added here would otherwise join every later test's members."""
    srv = start_server(tmp_path, "--model", CHAT_MODEL)
    yield Client(srv.url + "/", verbose=False)
    stop_server(srv)


@pytest.mark.slow
def test_gradio_client_adds_a_persona_and_runs_a_follow_up(own_gradio):
    gradio = own_gradio
    members, lead, table = gradio.predict("Devil's Advocate", CHAT_MODEL, "You argue the opposite side, briefly.",
                                          1.0, [], api_name="/add_persona")
    assert "devils-advocate" in table
    history = [{"role": "user", "content": "Is coffee good for you?"},
               {"role": "assistant", "content": "In moderation, for most adults."}]
    result = gradio.predict("compare", "And tea?", ["devils-advocate", "skeptic"], "(first member)", 1, 24, 60, True,
                            history, api_name="/arena")
    assert result["final"] and [t["title"] for t in result["turns"]] == ["answers · devils-advocate",
                                                                        "answers · skeptic"]
    with pytest.raises(Exception, match="already a model or mode"):
        gradio.predict("Council", CHAT_MODEL, "x", 0.5, [], api_name="/add_persona")
    with pytest.raises(Exception, match="system"):
        gradio.predict("Quiet", CHAT_MODEL, "   ", 0.5, [], api_name="/add_persona")


def test_gradio_client_gets_clear_errors(gradio):
    with pytest.raises(Exception, match="Type a question"):
        gradio.predict("council", "  ", [CHAT_MODEL], "(first member)", 1, 24, 60, True, api_name="/arena")
    with pytest.raises(Exception, match="does not exist"):
        gradio.predict("council", "hi", ["nope"], "(first member)", 1, 24, 60, True, api_name="/arena")
    with pytest.raises(Exception, match="members"):
        gradio.predict("council", "hi", [], "(first member)", 1, 24, 60, True, api_name="/arena")


def test_quick_actions_attach_to_the_final_answer():
    view = ArenaView()
    view.apply(Event("final", "council", member="a", role="chairman", text="Paris"))
    view.options = [{"label": "Why?", "value": "Why Paris?"}]
    assert view.timeline()[-1]["options"] == [{"label": "Why?", "value": "Why Paris?"}]


@pytest.mark.browser
def test_browser_arena_streams_side_by_side_and_stop_frees_slots(server):
    def active() -> int:
        models = httpx.get(server.url + "/health/details").json()["models"]
        return sum(m["active"] for m in models.values())

    with browser.launch() as chromium:
        page = browser.open_tab(chromium, server.url, "Arena")
        page.locator("#arena-mode").get_by_text("compare").click()
        page.locator("#arena-question textarea").fill("Name two rivers.")
        page.locator("#arena-run").click()
        browser.arena_final_answer(page).wait_for(timeout=120_000)
        cards = page.locator("#arena-columns .arena-card")  # one chat model: the default panel of personas
        assert cards.count() == len(DEFAULT_PANEL) and "Fastest" in page.locator("#arena-final").inner_text()
        assert all(p.id in page.locator("#arena-columns").inner_text() for p in DEFAULT_PANEL)

        # Quick actions under the final answer run the arena again on the clicked value.
        page.get_by_text("Settings", exact=True).click()
        page.locator("#arena-quick-actions input").check()
        page.locator("#arena-mode").get_by_text("compare").click()
        page.locator("#arena-run").click()
        options = page.locator("#arena-timeline button.option")
        options.first.wait_for(timeout=120_000)
        label = options.first.inner_text()
        options.first.click()
        page.locator("#arena-timeline button.option").first.wait_for(state="detached", timeout=30_000)
        browser.arena_final_answer(page).wait_for(timeout=120_000)
        page.locator("#arena-quick-actions input").uncheck()
        assert label
        # The new run's own quick actions may still run, retrying after a failed attempt, and a busy
        # machine leaves gaps between them: wait until no slot has been busy for three whole seconds.
        deadline, idle_since = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            now = time.monotonic()
            idle_since = None if active() else (idle_since or now)
            if idle_since and now - idle_since > 3.0:
                break
            time.sleep(0.1)

        # A long council (1024 tokens a turn: over ten seconds each), stopped while both members generate.
        limit = page.locator("#arena-max-tokens input[type=number]")
        limit.fill("1024")
        limit.press("Enter")
        page.locator("#arena-mode").get_by_text("council").click()
        page.locator("#arena-question textarea").fill("Write a very long essay about the history of bread.")
        page.locator("#arena-run").click()
        deadline = time.monotonic() + 30
        while active() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert active() >= 2  # both members (and perhaps a late quick action) are generating
        page.locator("#arena-stop").click()
        stopped = time.monotonic()
        while active() and time.monotonic() - stopped < 20:
            time.sleep(0.02)
        assert active() == 0
        time.sleep(3)  # and the council did not go on to its next stage
        assert active() == 0 and "Final answer —" not in page.locator("#arena-final").inner_text()


NOT_ANSWERED = "!document.querySelector('#arena-final').innerText.includes('Final answer —')"


def arena_page(chromium, server, mode: str, max_tokens: int):
    """The Arena with `mode` chosen and each turn limited to `max_tokens`."""
    page = browser.open_tab(chromium, server.url, "Arena")
    page.get_by_text("Settings", exact=True).click()
    limit = page.locator("#arena-max-tokens input[type=number]")
    limit.fill(str(max_tokens))
    limit.press("Enter")
    page.locator("#arena-mode").get_by_text(mode).click()
    return page


def test_browser_a_persona_council_answers_and_a_follow_up_continues_it(server):
    with browser.launch() as chromium:
        page = arena_page(chromium, server, "council", 48)
        final = page.locator("#arena-final")
        for question in ("Should a small team write tests first?", "And what about documentation?"):
            page.locator("#arena-question textarea").fill(question)
            page.locator("#arena-run").click()
            page.wait_for_function(NOT_ANSWERED)  # the new run has begun (the last answer is gone)
            browser.arena_final_answer(page).wait_for(timeout=240_000)
        # The second run continued the first: its members saw the earlier question and answer.
        assert "Follow-up" in final.inner_text()
        stages = page.locator("#arena-timeline").inner_text()
        assert all(p.id in stages for p in DEFAULT_PANEL) and "chairman" in stages
        page.locator("#arena-new").click()
        page.wait_for_function(NOT_ANSWERED)


def test_browser_an_agent_run_shows_its_tool_steps(server):
    with browser.launch() as chromium:
        page = arena_page(chromium, server, "agent", 96)
        # The model itself at temperature 0 (the personas sample at their own temperatures): deterministic.
        members = page.locator("#arena-members")
        for persona in DEFAULT_PANEL:
            members.get_by_text(persona.id, exact=True).click()
        members.get_by_text(CHAT_MODEL, exact=True).click()
        temperature = page.locator("#arena-temperature input[type=number]")
        temperature.fill("0")
        temperature.press("Enter")
        page.locator("#arena-question textarea").fill("Use the calculator: what is 37 * 91?")
        page.locator("#arena-run").click()
        browser.arena_final_answer(page).wait_for(timeout=240_000)
        timeline = page.locator("#arena-timeline")
        step = timeline.get_by_text("tool: calculator").first  # a collapsible step per tool call
        step.wait_for(timeout=10_000)
        step.click()
        timeline.get_by_text("→ 3367").first.wait_for(timeout=10_000)


FIGURES = {"ttft": r"TTFT ([\d,]+) ms", "rate": r"([\d,.]+) tok/s", "tokens": r"(\d+) tokens?"}
MARKDOWN_TAGS = {"P", "BR", "STRONG", "EM", "CODE", "PRE", "UL", "OL", "LI", "A", "H1", "H2", "H3", "H4", "H5", "H6",
                 "BLOCKQUOTE", "HR", "TABLE", "THEAD", "TBODY", "TR", "TH", "TD", "S"}


def test_browser_compare_cards_show_each_members_figures_and_markdown(server):
    with browser.launch() as chromium:
        page = arena_page(chromium, server, "compare", 48)
        page.locator("#arena-question textarea").fill(
            "List three fruits as a Markdown bullet list, with the best one in **bold**.")
        page.locator("#arena-run").click()
        # While a member still writes, its card already shows the time its first token took.
        page.wait_for_function("[...document.querySelectorAll('#arena-columns .arena-card')]"
                               ".some(c => c.innerText.includes('⏳') && /TTFT \\d/.test(c.innerText))",
                               timeout=120_000)
        browser.arena_final_answer(page).wait_for(timeout=240_000)
        cards = page.locator("#arena-columns .arena-card")  # the default panel of personas
        assert cards.count() == len(DEFAULT_PANEL)
        for card in cards.all():
            shown = {name: re.fullmatch(pattern, card.locator(f".arena-{name}").inner_text())
                     for name, pattern in FIGURES.items()}
            assert all(shown.values()), card.inner_text()
            ttft, rate, tokens = (float(shown[name].group(1).replace(",", "")) for name in FIGURES)
            assert ttft > 0 and rate > 0 and 1 <= tokens <= 48, card.inner_text()
        # The answers are Markdown made into page elements, and only formatting ones: no model markup, no handlers.
        tags = page.evaluate("[...document.querySelectorAll('#arena-columns .arena-text *')].map(e => e.tagName)")
        handlers = page.evaluate("[...document.querySelectorAll('#arena-columns *')].flatMap(e => "
                                 "[...e.attributes].map(a => a.name)).filter(n => n.startsWith('on'))")
        assert set(tags) <= MARKDOWN_TAGS and handlers == [], (tags, handlers)
        page.locator("#arena-columns").screenshot(path="/tmp/arena_cards.png")


def test_the_arena_starts_from_the_mode_defaults():
    """One default per setting: the tab's controls and its gradio_client endpoint read ModeOptions."""
    with gr.Blocks() as blocks:
        ArenaTab(ModelRegistry()).build()
    controls = {block.label: block.value for block in blocks.blocks.values() if hasattr(block, "value")
                and getattr(block, "label", None)}
    assert controls["Max tokens per turn"] == ModeOptions.default("max_tokens") == 256
    assert controls["Rounds (roundtable, debate) / layers (mixture)"] == ModeOptions.default("rounds")
    assert controls["Turn timeout (s)"] == ModeOptions.default("turn_timeout")
    assert controls["Council: ignore self-votes"] is ModeOptions.default("exclude_self_votes")
    endpoint = inspect.signature(ArenaTab.arena).parameters
    assert {name: endpoint[name].default for name in ("rounds", "max_tokens", "turn_timeout", "exclude_self_votes")} \
        == {name: ModeOptions.default(name) for name in ("rounds", "max_tokens", "turn_timeout", "exclude_self_votes")}
