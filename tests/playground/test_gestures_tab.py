"""The Gestures tab: the stream handler on numpy frames, gradio_client on photos, and Chromium
with a fake camera playing a clip made from a real photo."""

from __future__ import annotations

import time
from contextlib import contextmanager

import cv2
import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file

from engines.registry import ModelRegistry
from playground.gesture_bus import gesture_bus, message_for
from playground.gestures_tab import GesturesTab
from tests.support import browser
from tests.support.gesture_photos import PHOTOS, read_rgb


def webcam_frame(name: str) -> np.ndarray:
    return cv2.resize(read_rgb(PHOTOS / name), (640, 480))


def test_stream_handler_on_numpy_frames_fires_after_the_hold():
    tab = GesturesTab(ModelRegistry())
    state, events = None, []
    for _ in range(12):
        annotated, status, state, message, page = tab.stream_frame(webcam_frame("Victory_1.jpg"), state)
        events.append(message)
        assert "actions" not in page  # nothing for the page to do
    assert annotated.shape == (480, 640, 3) and not np.array_equal(annotated, webcam_frame("Victory_1.jpg"))
    assert "Victory" in status and "send ok" in status
    sent = [e for e in events if "actions" in e]  # other frames skip the update
    assert len(sent) == 1 and (sent[0]["actions"][0]["kind"], sent[0]["actions"][0]["text"]) == ("send", "ok")
    _, status, state, _, _ = tab.stream_frame(webcam_frame("None_2.jpg"), state)
    assert "no hand" in status
    for _ in range(15):  # pointing: cursor actions go to the page only
        _, _, state, message, page = tab.stream_frame(webcam_frame("Pointing_Up_1.jpg"), state)
    assert "actions" not in message and {a["kind"] for a in page["actions"]} <= {"cursor", "click"}
    assert "no hand" in status
    state["session"].close()


def test_an_empty_webcam_frame_answers_every_output_and_changes_nothing():
    with gr.Blocks() as blocks:
        tab = GesturesTab(ModelRegistry())
        tab.build(gesture_bus())
    stream = next(f for f in blocks.fns.values() if f.name == "stream_frame")
    state = {"seq": 3}
    updates = tab.stream_frame(None, state)
    assert len(updates) == len(stream.outputs) == 5
    assert updates[2] is state and all(isinstance(u, type(gr.skip())) for i, u in enumerate(updates) if i != 2)


def test_live_webcam_sessions_are_capped_and_the_oldest_closed():
    tab = GesturesTab(ModelRegistry(), max_sessions=2)
    frame = webcam_frame("Victory_1.jpg")
    states = [tab.stream_frame(frame, None)[2] for _ in range(3)]  # three pages start streaming
    assert tab.live_sessions == 2 and states[0]["session"].closed and not states[2]["session"].closed
    _, status, again, _, _ = tab.stream_frame(frame, states[0])  # the first page's next frame: a new session
    assert not again["session"].closed and "Victory" in status and tab.live_sessions == 2
    for state in (again, *states[1:]):
        tab._close_session(state)
    assert tab.live_sessions == 0


def test_a_huge_photo_is_scaled_down_before_the_hand_tracker_sees_it():
    tab = GesturesTab(ModelRegistry())
    photo = cv2.resize(read_rgb(PHOTOS / "Thumb_Down_1.jpg"), (3000, 4500))  # 13.5 MP, as a phone takes
    annotated, result = tab.classify_photo(photo)
    assert max(annotated.shape[:2]) == 1280 and result["gesture"] == "Thumb_Down"


def test_photo_upload_handles_grayscale_and_alpha():
    tab = GesturesTab(ModelRegistry())
    rgb = read_rgb(PHOTOS / "Thumb_Down_1.jpg")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert tab.classify_photo(rgb)[1]["gesture"] == tab.classify_photo(rgba)[1]["gesture"] == "Thumb_Down"
    annotated, result = tab.classify_photo(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert annotated.shape == rgb.shape and "gesture" in result  # answered, not crashed


@pytest.fixture(scope="module")
def gradio(server) -> Client:
    return Client(server.url + "/", verbose=False)


@pytest.mark.parametrize("name", ["Thumb_Up_5.jpg", "ILoveYou_1.jpg", "None_3.jpg"])
def test_gradio_client_classifies_a_photo(gradio, name):
    annotated, result = gradio.predict(handle_file(str(PHOTOS / name)), api_name="/classify_photo")
    assert result["gesture"] == name.rsplit("_", 1)[0]
    assert result["hand"] is (not name.startswith("None"))
    assert annotated  # a file path to the annotated image


def test_gradio_client_without_a_photo_gets_a_clear_error(gradio):
    with pytest.raises(Exception, match="Upload a photo first"):
        gradio.predict(None, api_name="/classify_photo")


def write_y4m(path, frames: list[np.ndarray], fps: int = 10) -> None:
    """A raw YUV4MPEG2 clip, the format Chromium's fake camera plays."""
    with open(path, "wb") as clip:
        clip.write(f"YUV4MPEG2 W640 H480 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            clip.write(b"FRAME\n" + cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())


@contextmanager
def streaming_page(server, clip, open_first: str = "Chat"):
    """Chromium whose fake camera plays `clip`, on the Gestures tab with the webcam streaming, after
    opening `open_first` (the view gesture messages go to)."""
    with browser.launch("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                        f"--use-file-for-fake-video-capture={clip}") as chromium:
        page = chromium.new_context(viewport={"width": 1280, "height": 1000}, permissions=["camera"]).new_page()
        page.goto(server.url + "/", wait_until="load")
        page.get_by_role("tab", name=open_first).click(timeout=60_000)
        if open_first == "Arena":  # what the gesture starts there: the quickest mode, with short turns
            page.locator("#arena-mode").get_by_text("compare").click()
            page.get_by_text("Settings", exact=True).click()
            limit = page.locator("#arena-max-tokens input[type=number]")
            limit.fill("32")
            limit.press("Enter")
        page.get_by_role("tab", name="Gestures").click()
        page.get_by_text("Click to Access Webcam").click()
        page.locator("#gesture-webcam button[aria-label='capture photo']").click()  # starts streaming
        yield page


def wait_until(predicate, seconds=90.0):  # a busy machine streams fewer frames a second
    """Whether `predicate` held at some point within `seconds` (a status it saw may change again)."""
    deadline = time.monotonic() + seconds
    while not (held := predicate()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return held


@pytest.mark.browser
def test_browser_fake_camera_gesture_sends_a_chat_message(server, tmp_path):
    clip = tmp_path / "thumb_up.y4m"
    write_y4m(clip, [webcam_frame("Thumb_Up_3.jpg")] * 20)
    with streaming_page(server, clip) as page:
        status = page.locator("#gesture-status")
        wait_until(lambda: "send" in status.inner_text())
        page.screenshot(path=str(tmp_path / "gestures.png"))
        assert "Thumb_Up" in status.inner_text() and "send 👍" in status.inner_text(), status.inner_text()
        page.get_by_role("tab", name="Chat").click()
        user = page.locator("#chatbot .user-row, #chatbot [data-testid='user']").first
        user.wait_for(timeout=30_000)
        assert "👍" in user.inner_text()
        page.locator("#chatbot .bot-row, #chatbot [data-testid='bot']").last.wait_for(timeout=60_000)


@pytest.mark.browser
def test_browser_pointing_moves_the_page_cursor(server, tmp_path):
    clip = tmp_path / "pointing.y4m"
    write_y4m(clip, [webcam_frame("Pointing_Up_1.jpg")] * 20)
    with streaming_page(server, clip) as page:
        ring = page.locator("#gesture-cursor")
        assert wait_until(lambda: ring.count() == 1), page.locator("#gesture-status").inner_text()
        left = float(ring.evaluate("e => parseFloat(e.style.left)"))
        assert 0 < left < 1280
        assert "Pointing_Up" in page.locator("#gesture-status").inner_text()


@pytest.mark.browser
def test_browser_gesture_goes_to_the_arena_when_it_was_opened_last(server, tmp_path):
    clip = tmp_path / "victory.y4m"
    write_y4m(clip, [webcam_frame("Victory_1.jpg")] * 20)
    with streaming_page(server, clip, open_first="Arena") as page:
        status = page.locator("#gesture-status")
        assert wait_until(lambda: "send ok" in status.inner_text()), status.inner_text()
        page.get_by_role("tab", name="Arena").click()
        browser.arena_final_answer(page).wait_for(timeout=300_000)
        assert "answers ·" in page.locator("#arena-timeline").inner_text()


def test_gesture_messages_are_routed_to_the_view_in_use():
    event = {"seq": 3, "actions": [{"kind": "send", "text": "👍"}]}
    assert message_for(event, "chat", "chat") == "👍" and message_for(event, "chat", "arena") is None
    assert message_for({"actions": [{"kind": "stop"}]}, "chat", "chat") is None
    assert message_for(None, "arena", "arena") is None
