"""The Chat tab, driven the two ways people use it: gradio_client scripts and a real browser."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from gradio_client import Client

from engines.catalog import find
from engines.contract import Chunk, Timings, Usage
from engines.registry import ModelRegistry
from playground.chat_tab import THINKING_TITLE, ChatTab, drop_last_answer, to_messages
from tests.support import browser
from tests.support.scripted import ScriptedEngine
from tests.support.servers import CHAT_MODEL


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
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert len(job.outputs()) > 2  # the answer arrived in several updates


def test_retry_replaces_the_last_answer_and_clear_empties(gradio):
    first, _ = gradio.predict("Name a fruit.", [], CHAT_MODEL, "", 0.9, 24, api_name="/send")
    first[-1]["content"] = [{"type": "text", "text": "OLD ANSWER"}]  # the Chatbot's own message format
    new_history, _ = gradio.predict(first, CHAT_MODEL, "", 0.9, 24, api_name="/retry")
    assert [m["role"] for m in new_history] == ["user", "assistant"]
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
    user, thought, answer = updates[-1]
    assert thought["metadata"]["title"] == THINKING_TITLE and thought["metadata"]["status"] == "done"
    assert thought["content"] == "Two plus two is four." and answer["content"] == "Four."
    assert any(len(h) == 2 and h[1]["metadata"]["status"] == "pending" for h in updates)  # shown while thinking
    assert [len(h) for h in updates] == [1, 2, 2, 3]


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
def page(server):
    with browser.launch() as chromium:
        page = chromium.new_page()
        page.goto(server.url + "/", wait_until="load")
        page.locator("#chat-input textarea").wait_for(timeout=60_000)
        yield page


def bot_text_lengths(page, until_stable=True, seconds=60.0) -> list[int]:
    """Samples the last answer's length every 50 ms until it stops growing."""
    bot = page.locator("#chatbot .bot-row, #chatbot [data-testid='bot']").last
    bot.wait_for(timeout=60_000)
    lengths = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lengths.append(len(bot.inner_text()))
        if until_stable and len(lengths) > 8 and lengths[-1] == lengths[-8] and lengths[-1] > 0:
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
