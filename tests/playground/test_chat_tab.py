"""The Chat tab, driven the two ways people use it: gradio_client scripts and a real browser."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client

from engines.catalog import find
from engines.contract import Chunk, GenerationRequest, Timings, Usage
from engines.local import LocalEngine
from engines.model_files import resolve_path
from engines.registry import ModelRegistry
from playground.chat_sampling import DEFAULTS, MAX_SEED, parse_stops, read_sampling
from playground.chat_tab import THINKING_TITLE, ChatTab, answer_stats, drop_last_answer, to_messages
from tests.support import browser
from tests.support.scripted import ScriptedEngine
from tests.support.servers import CHAT_MODEL, samples, total, wait_for

STATS = re.compile(r"TTFT \d+ ms · \d+\.\d tok/s · \d+ tokens")


@pytest.fixture(scope="module")
def gradio(server) -> Client:
    return Client(server.url + "/", verbose=False)


def test_chat_endpoint_answers_for_gradio_client(gradio):
    reply = gradio.predict("What is 2 plus 2?", [], CHAT_MODEL, "Answer briefly.", 0.2, 32, api_name="/chat")
    assert isinstance(reply, str) and reply.strip()
    history = [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Hello Ada!"}]
    assert gradio.predict("What is my name?", history, CHAT_MODEL, "", 0.0, 24, api_name="/chat").strip()


def test_streaming_send_event_yields_growing_history(gradio):
    job = gradio.submit("Tell me about cats.", [], CHAT_MODEL, "", 0.7, 48, api_name="/send")
    history, textbox = job.result(timeout=120)
    assert textbox == ""
    assert [m["role"] for m in history if not m.get("metadata")] == ["user", "assistant"]
    assert STATS.fullmatch(history[-1]["metadata"]["title"])  # the answer's speed, under it
    assert len(job.outputs()) > 2  # the answer arrived in several updates


def test_retry_replaces_the_last_answer_and_clear_empties(gradio):
    first, _ = gradio.predict("Name a fruit.", [], CHAT_MODEL, "", 0.9, 24, api_name="/send")
    first[-1]["content"] = [{"type": "text", "text": "OLD ANSWER"}]  # the Chatbot's own message format
    new_history, _ = gradio.predict(first, CHAT_MODEL, "", 0.9, 24, api_name="/retry")
    assert [m["role"] for m in new_history if not m.get("metadata")] == ["user", "assistant"]
    assert "OLD ANSWER" not in str(new_history) and "Name a fruit." in str(new_history)
    assert gradio.predict(api_name="/clear") == ([], "")


def test_bad_input_is_a_clear_error_not_a_crash(gradio):
    with pytest.raises(Exception, match="message is empty"):
        gradio.predict("   ", [], CHAT_MODEL, "", 0.7, 16, api_name="/chat")
    with pytest.raises(Exception, match="does not exist"):
        gradio.predict("hi", [], "no-such-model", "", 0.7, 16, api_name="/chat")
    assert gradio.predict("hi", [], CHAT_MODEL, "", 0.7, 8, api_name="/chat")  # still serving


def ThinksThenAnswers() -> ScriptedEngine:
    """None of the embedded models thinks on its own (the real reasoning split is tested on the real
    model in tests/engines/test_local_engine.py)."""
    return ScriptedEngine([Chunk(reasoning="Two plus two"), Chunk(reasoning=" is four."),
                           Chunk(text="Four.", finish_reason="stop", usage=Usage(3, 4), timings=Timings())],
                          model_id="thinker")


def test_thinking_shows_as_a_collapsible_step_before_the_answer():
    registry = ModelRegistry()
    registry.add(dataclasses.replace(find(CHAT_MODEL), id="thinker"), ThinksThenAnswers())

    async def run():
        return [h async for h, _ in ChatTab(registry).stream_reply("2+2?", [], "thinker", "", 0.7, 32)]

    updates = asyncio.run(run())
    user, thought, answer, stats = updates[-1]
    assert thought["metadata"]["title"] == THINKING_TITLE and thought["metadata"]["status"] == "done"
    assert thought["content"] == "Two plus two is four." and answer["content"] == "Four."
    assert any(len(h) == 2 and h[1]["metadata"]["status"] == "pending" for h in updates)  # shown while thinking
    assert [len(h) for h in updates] == [1, 2, 2, 4]  # the last with the answer's stats
    assert stats["metadata"]["title"].endswith("· 4 tokens")


def test_history_conversion_skips_thinking_and_empty_messages():
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "hmm", "metadata": {"title": THINKING_TITLE}},
        {"role": "assistant", "content": "Hello!"},
        {"role": "assistant", "content": ""},
    ]
    assert to_messages(history, " Be kind. ") == [
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert drop_last_answer(history) == ([], "Hi")


@pytest.fixture(scope="module")
def chromium(server):
    with browser.launch() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page(chromium, server):
    page = chromium.new_page()
    page.goto(server.url + "/", wait_until="load")
    page.locator("#chat-input textarea").wait_for(timeout=60_000)
    yield page


def bot_text_lengths(page, until_done=True, seconds=60.0) -> list[int]:
    """Samples the last answer's length every 50 ms until its stats line says it is finished (a pause in
    the stream, which a loaded machine makes, is not the end)."""
    bots = page.locator("#chatbot [data-testid='bot']")
    answer = bots.filter(has_not=page.locator(".thought-group")).last
    answer.wait_for(timeout=60_000)
    lengths = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lengths.append(len(answer.inner_text()))
        if until_done and STATS.search(bots.last.inner_text()):
            break
        time.sleep(0.05)
    return lengths


def send(page, text: str) -> None:
    page.locator("#chat-input textarea").fill(text)
    page.locator("#send-btn").click()


@pytest.mark.browser
def test_browser_chat_streams_text(page, server):
    send(page, "Write three sentences about the moon.")
    lengths = bot_text_lengths(page)
    page.screenshot(path=str(server.log_path.parent / "chat.png"))
    distinct = sorted(set(lengths))
    assert distinct[-1] > 20, lengths
    assert len([n for n in distinct if 0 < n < distinct[-1]]) >= 2, lengths  # seen while still growing


@pytest.mark.browser
def test_browser_stop_ends_generation_and_frees_the_slot(page, server):
    import httpx

    def active() -> int:
        return httpx.get(server.url + "/health/details").json()["models"][CHAT_MODEL]["active"]

    max_tokens = page.locator("#max-tokens input[type=number]")
    max_tokens.fill("2048")
    max_tokens.press("Enter")
    send(page, "Count from 1 to 1000, separated by commas.")
    bot = page.locator("#chatbot .bot-row, #chatbot [data-testid='bot']").last
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(bot.inner_text()) < 30:
        time.sleep(0.05)
    assert active() == 1
    page.locator("#stop-btn").click()
    stopped = time.monotonic()
    while active() and time.monotonic() - stopped < 10:  # the whole answer would take 20 s or more
        time.sleep(0.02)
    assert active() == 0
    shown = len(bot.inner_text())
    time.sleep(0.5)
    assert len(bot.inner_text()) == shown  # nothing more arrives after Stop
    assert shown < 2048 * 2


@pytest.mark.browser
def test_browser_quick_action_click_sends_its_value(page):
    page.locator("#clear-btn").click()  # earlier tests left a long chat
    max_tokens = page.locator("#max-tokens input[type=number]")
    max_tokens.fill("128")
    max_tokens.press("Enter")
    page.locator("#quick-actions input").check()
    send(page, "What is Python?")
    options = page.locator("#chatbot button.option")
    options.first.wait_for(timeout=90_000)
    assert 2 <= options.count() <= 4
    users = page.locator("#chatbot .user-row, #chatbot [data-testid='user']")
    before = users.count()
    options.first.click()
    deadline = time.monotonic() + 30
    while users.count() == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert users.count() > before and users.last.inner_text().strip()  # a new user message: the value
    page.locator("#quick-actions input").uncheck()


# --- speed under each answer, sampling settings, edit-and-resend ---------------------------------------

def test_answer_stats_use_the_engines_decode_rate_and_are_never_sent_back():
    stats = answer_stats(120.4, Usage(5, 33), Timings(ttft_ms=90, generation_ms=730, completion_tokens=33), 9.0)
    assert stats["metadata"]["title"] == "TTFT 120 ms · 50.0 tok/s · 33 tokens"  # 32 tokens in 640 ms
    measured_here = answer_stats(80, Usage(5, 11), Timings(), 0.5)  # an engine that reports no timings
    assert measured_here["metadata"]["title"] == "TTFT 80 ms · 20.0 tok/s · 11 tokens"
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, stats]
    assert to_messages(history, "") == history[:2]
    assert drop_last_answer(history) == ([], "Hi")


def test_sampling_defaults_are_the_engines_and_stops_read_one_per_line():
    assert read_sampling() == {name: getattr(GenerationRequest(prompt="x"), name) for name in DEFAULTS}
    assert parse_stops("\\n\\nUser:\n\nEND\n") == ("\n\nUser:", "END")
    assert parse_stops(["a", ""]) == ("a",) and parse_stops(None) == ()
    assert read_sampling(seed=" ")["seed"] is None and read_sampling(seed=7.0)["seed"] == 7


@pytest.mark.parametrize("settings, message", [
    (dict(top_p=1.5), "Top-p must be from 0 to 1; it is 1.5"),
    (dict(top_k=2.5), "Top-k must be a whole number"),
    (dict(min_p=float("nan")), "Min-p must be a number"),
    (dict(presence_penalty="lots"), "Presence penalty must be a number, not 'lots'"),
    (dict(frequency_penalty=-3), "Frequency penalty must be from -2 to 2"),
    (dict(repeat_penalty=0), "Repeat penalty must be over 0 and at most 10"),
    (dict(seed=-1), "Seed must be from 0"),
    (dict(seed=MAX_SEED + 1), "Seed must be from 0 to 4294967295"),
    (dict(seed=True), "Seed must be a number"),
    (dict(stop="x\n" * 17), "At most 16 stop sequences"),
    (dict(stop=["y" * 257]), "at most 256 characters"),
    (dict(stop=[1, 2]), r"text \(one per line\) or a list"),
])
def test_bad_sampling_settings_are_named(settings, message):
    with pytest.raises(gr.Error, match=message):
        read_sampling(**settings)


@pytest.fixture(scope="module")
def local_chat() -> ChatTab:
    """The real embedded model in this process."""
    spec = dataclasses.replace(find(CHAT_MODEL), max_concurrent=1, n_threads=2)
    registry = ModelRegistry()
    registry.add(spec, LocalEngine(spec, resolve_path(spec), max_queue=2, queue_timeout=60))
    return ChatTab(registry)


def last(updates):
    """The last chat update of a handler; run on a thread of its own (a module's browser keeps a loop on this one)."""
    async def run():
        return [history async for history, _ in updates][-1]
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, run()).result()


def test_editing_a_message_answers_it_again_from_there(local_chat):
    first = last(local_chat.stream_reply("Name a fruit.", [], CHAT_MODEL, "", 0.0, 12))
    history = last(local_chat.stream_reply("Name a color.", first, CHAT_MODEL, "", 0.0, 12))
    assert [m["role"] for m in history] == ["user", "assistant", "assistant"] * 2
    edit = gr.EditData(None, {"index": 3, "previous_value": "Name a color.", "value": "Name an animal."})
    edited = last(local_chat.edit_reply(history, CHAT_MODEL, "", 0.0, 12, False, *read_sampling().values(), edit))
    assert edited[:3] == first and edited[3] == {"role": "user", "content": "Name an animal."}
    assert edited[4]["content"].strip() and STATS.fullmatch(edited[5]["metadata"]["title"]) and len(edited) == 6
    answer = gr.EditData(None, {"index": 1, "previous_value": "x", "value": "y"})
    with pytest.raises(gr.Error, match="Only your own messages"):
        last(local_chat.edit_reply(history, CHAT_MODEL, "", 0.0, 12, False, *read_sampling().values(), answer))


def test_a_bad_setting_stops_before_the_message_is_added(local_chat):
    updates = local_chat.stream_reply("Hi", [], CHAT_MODEL, "", 0.7, 16, False, 2.0)
    with pytest.raises(gr.Error, match="Top-p"):
        last(updates)
    with pytest.raises(gr.Error, match="Temperature must be from 0 to 2"):
        last(local_chat.stream_reply("Hi", [], CHAT_MODEL, "", 9, 16))


def test_chat_endpoint_takes_the_sampling_settings(gradio):
    ask = ("Write two sentences about the sea.", [], CHAT_MODEL, "", 1.0, 24)
    seeded = [gradio.predict(*ask, top_p=0.9, top_k=50, min_p=0.02, seed=1234, api_name="/chat") for _ in range(2)]
    assert seeded[0] == seeded[1] and seeded[0].strip()  # the same seed draws the same answer
    greedy = gradio.predict(*ask[:4], 0.0, 24, api_name="/chat")
    words = greedy.split()
    assert len(words) > 4, greedy
    stop_at = " " + words[3]  # a stop sequence from inside the greedy answer ends it right there
    cut = gradio.predict(*ask[:4], 0.0, 24, stop=[stop_at], api_name="/chat")
    assert cut == greedy[:greedy.index(stop_at)]
    assert gradio.predict(*ask[:4], 0.0, 24, stop=stop_at + "\n", api_name="/chat") == cut  # one per line works too
    with pytest.raises(Exception, match="Top-p must be from 0 to 1"):
        gradio.predict(*ask, top_p=1.5, api_name="/chat")
    with pytest.raises(Exception, match="At most 16 stop sequences"):
        gradio.predict("hi", [], CHAT_MODEL, "", 0.7, 16, False, 0.95, 40, 0.05, 0, 0, 1.0, None, "x\n" * 17,
                       api_name="/send")


# --- in the browser: conversations that last, files, edits ----------------------------------------------

@pytest.fixture
def fresh_page(chromium, server):
    """A page in a browser profile of its own (its own localStorage), downloads allowed."""
    context = chromium.new_context(viewport={"width": 1280, "height": 1300}, accept_downloads=True)
    page = context.new_page()
    page.goto(server.url + "/", wait_until="load")
    page.locator("#chat-input textarea").wait_for(timeout=60_000)
    yield page
    context.close()


def stats_lines(page):
    return page.locator("#chatbot").get_by_text(STATS)


def ask(page, text: str) -> None:
    """Sends `text` and waits for its answer's stats line and for the chat to be saved."""
    before = stats_lines(page).count()
    send(page, text)
    assert wait_for(lambda: stats_lines(page).count() > before, timeout=90), "no answer with its stats"
    page.locator("#conversations label", has_text=text[:20]).wait_for(timeout=30_000)


def conversation_titles(page) -> list[str]:
    return [t.strip() for t in page.locator("#conversations label").all_inner_texts()]


def user_texts(page) -> list[str]:
    return [t.strip() for t in page.locator("#chatbot [data-testid='user']").all_inner_texts()]


def reload(page) -> None:
    page.reload(wait_until="load")
    page.locator("#chat-input textarea").wait_for(timeout=60_000)


def open_manage(page) -> None:
    if not page.locator("#chat-name input").is_visible():
        page.locator("#manage-chat").get_by_text("Manage").click()
    page.locator("#chat-name input").wait_for(state="visible", timeout=10_000)


@pytest.mark.browser
def test_browser_conversations_survive_a_reload_and_can_be_managed(fresh_page):
    page = fresh_page
    ask(page, "Name a planet.")
    assert conversation_titles(page) == ["Name a planet."]
    assert stats_lines(page).count() == 1  # TTFT, tok/s and tokens under the answer
    answer = page.locator("#chatbot [data-testid='bot']").first.inner_text()

    reload(page)  # the same conversation reopens
    page.locator("#chatbot [data-testid='user']").first.wait_for(timeout=30_000)
    assert user_texts(page) == ["Name a planet."] and conversation_titles(page) == ["Name a planet."]
    assert page.locator("#chatbot [data-testid='bot']").first.inner_text() == answer and stats_lines(page).count() == 1

    page.locator("#new-chat").click()
    page.wait_for_function("!document.querySelector('#chatbot [data-testid=user]')", timeout=10_000)
    ask(page, "Name a river.")
    assert conversation_titles(page) == ["Name a river.", "Name a planet."]
    open_manage(page)
    page.locator("#chat-name input").fill("Rivers")
    page.locator("#rename-chat").click()
    page.locator("#conversations label", has_text="Rivers").wait_for(timeout=10_000)
    assert conversation_titles(page) == ["Rivers", "Name a planet."]

    page.locator("#conversations label", has_text="Name a planet.").click()  # switch
    page.wait_for_function("[...document.querySelectorAll('#chatbot [data-testid=user]')]"
                           ".map(m => m.innerText.trim()).join('|') === 'Name a planet.'", timeout=10_000)
    reload(page)  # reopens the conversation that was open, not the newest
    page.locator("#chatbot [data-testid='user']").first.wait_for(timeout=30_000)
    assert user_texts(page) == ["Name a planet."] and conversation_titles(page) == ["Rivers", "Name a planet."]

    open_manage(page)
    page.locator("#delete-chat").click()
    page.wait_for_function("document.querySelectorAll('#conversations label').length === 1", timeout=10_000)
    assert conversation_titles(page) == ["Rivers"]
    page.wait_for_function("[...document.querySelectorAll('#chatbot [data-testid=user]')]"
                           ".map(m => m.innerText.trim()).join('|') === 'Name a river.'", timeout=10_000)
    reload(page)
    page.locator("#chatbot [data-testid='user']").first.wait_for(timeout=30_000)
    assert conversation_titles(page) == ["Rivers"] and user_texts(page) == ["Name a river."]


def words(text: str) -> list[str]:
    return text.split()


@pytest.mark.browser
def test_browser_exports_json_and_markdown_and_imports_json(fresh_page, tmp_path):
    page = fresh_page
    ask(page, "Say hello.")
    answer = page.locator("#chatbot [data-testid='bot']").first.inner_text().strip()
    open_manage(page)
    page.wait_for_function("!document.querySelector('#export-json').disabled", timeout=10_000)
    with page.expect_download() as download:
        page.locator("#export-json").click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    user, reply, stats = exported["messages"]
    assert exported["title"] == "Say hello." and user == {"role": "user", "content": "Say hello."}
    # The page shows the answer rendered: emphasis marks in the exported Markdown source are not on screen.
    assert reply["role"] == "assistant" and words(re.sub(r"[*_`]", "", reply["content"])) == words(answer)
    assert STATS.fullmatch(stats["metadata"]["title"])
    with page.expect_download() as download:
        page.locator("#export-markdown").click()
    markdown = Path(download.value.path()).read_text(encoding="utf-8")
    assert markdown.startswith("# Say hello.\n") and "**User:**\n\nSay hello." in markdown
    assert f"*{stats['metadata']['title']}*" in markdown

    good = tmp_path / "good.json"
    good.write_text(json.dumps({**exported, "title": "Imported greeting"}), encoding="utf-8")
    upload = page.locator("#import-chat").locator("xpath=preceding-sibling::input[@type='file']")
    upload.set_input_files(str(good))
    page.locator("#conversations label", has_text="Imported greeting").wait_for(timeout=20_000)
    assert conversation_titles(page) == ["Imported greeting", "Say hello."]
    assert user_texts(page) == ["Say hello."] and stats_lines(page).count() == 1

    bad = tmp_path / "bad.json"
    bad.write_text('{"messages": [{"role": "robot", "content": "hi"}]}', encoding="utf-8")
    upload.set_input_files(str(bad))
    page.get_by_text("Cannot import this file: messages[0] has role 'robot'").wait_for(timeout=20_000)
    assert conversation_titles(page) == ["Imported greeting", "Say hello."]  # nothing lost
    assert user_texts(page) == ["Say hello."]


@pytest.mark.browser
def test_browser_editing_the_last_message_answers_it_again(fresh_page, server):
    page = fresh_page
    ask(page, "Name a fruit.")
    requests = total(samples(server), "playground_requests_total", model=CHAT_MODEL)
    page.locator("#chatbot [data-testid='user']").first.hover()
    page.locator("#chatbot button[aria-label='Edit']").first.click()
    page.locator("#chatbot textarea.edit-textarea").fill("Name a vegetable.")
    page.locator("#chatbot button[aria-label='Submit']").click()
    page.wait_for_function("[...document.querySelectorAll('#chatbot [data-testid=user]')]"
                           ".map(m => m.innerText.trim()).join('|') === 'Name a vegetable.'", timeout=30_000)
    assert wait_for(lambda: total(samples(server), "playground_requests_total", model=CHAT_MODEL) == requests + 1,
                    timeout=90)
    assert wait_for(lambda: stats_lines(page).count() == 1, timeout=30)
    page.locator("#conversations label", has_text="Name a vegetable.").wait_for(timeout=30_000)  # saved as edited
    page.screenshot(path="/tmp/chat_tab.png", full_page=True)
    reload(page)
    page.locator("#chatbot [data-testid='user']").first.wait_for(timeout=30_000)
    assert user_texts(page) == ["Name a vegetable."] and stats_lines(page).count() == 1
