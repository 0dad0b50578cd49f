"""The Gestures tab: webcam frames stream to the server, MediaPipe finds the hand, and gestures
drive the Chat (send, stop, scroll, cursor with dwell-click, view switch). A photo box classifies a
still image; `/classify_photo` does the same for gradio_client scripts.

Messages are sent server-side into the Chat tab's conversation, or to the Arena when it was the
view last opened; what only the page can do (press Stop, scroll, move a cursor and click, switch
tabs) is done by a small script in the browser.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import asdict
from typing import Any

import gradio as gr
import numpy as np

from engines.registry import ModelRegistry
from gestures.actions import GestureConfig
from gestures.landmarks import HandTracker
from gestures.pipeline import FrameResult, GestureSession, classify_photo

CHEAT_SHEET = """
| Gesture | Does |
|---|---|
| 👍 Thumb up (hold) | sends "👍" |
| 👎 Thumb down (hold) | sends "👎" |
| ✋ Open palm (hold, still) | sends "👋" — or, while a model is answering, **stops it** after 2 s |
| 👋 Wave (open palm side to side) | sends "Hi" |
| ✌️ Victory (hold) | sends "ok" |
| 🤟 I love you (hold) | sends "thanks" |
| ✊ Closed fist, moved up/down | scrolls the chat |
| ☝️ Pointing up | moves the cursor; stay still 1.2 s to click |
| 👉 Thumb sideways (hold) | switches between Chat and Arena |

Hold a gesture for 10 frames (about 1 s) to fire it; then 1.5 s of cooldown. Release before repeating.
"""

# Runs in the page for each batch of page actions: what only the browser can carry out.
PAGE_ACTIONS_JS = """
(event) => {
  if (!event || !event.actions) return [];
  let ring = document.getElementById("gesture-cursor");
  for (const a of event.actions) {
    if (a.kind === "stop") document.querySelectorAll("#stop-btn, #arena-stop").forEach(b => b.click());
    if (a.kind === "scroll") {
      const box = [...document.querySelectorAll("#chatbot *")].find(e => e.scrollHeight > e.clientHeight + 4);
      box?.scrollBy({top: a.amount});
    }
    if (a.kind === "switch_view") {
      const tabs = [...document.querySelectorAll("[role=tab]")];
      const named = n => tabs.find(t => t.textContent.trim() === n);
      const onChat = named("Chat")?.getAttribute("aria-selected") === "true";
      (onChat && named("Arena") ? named("Arena") : named("Chat"))?.click();
    }
    if (a.kind === "cursor" || a.kind === "click") {
      if (!ring) {
        ring = document.createElement("div");
        ring.id = "gesture-cursor";
        ring.style.cssText = "position:fixed;width:28px;height:28px;margin:-14px;border:3px solid #e040a0;" +
          "border-radius:50%;pointer-events:none;z-index:9999;transition:left .08s,top .08s";
        document.body.appendChild(ring);
      }
      const x = a.x * window.innerWidth, y = a.y * window.innerHeight;
      ring.style.left = x + "px"; ring.style.top = y + "px";
      if (a.kind === "click") {
        document.elementFromPoint(x, y)?.closest("button,a,[role=button],[role=tab],input,label")?.click();
      }
    }
  }
  return [];
}
"""


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Uploads may be grayscale or carry an alpha channel."""
    if image.ndim == 2:
        return np.stack([image] * 3, axis=-1)
    return image[:, :, :3]


def describe(result: FrameResult) -> dict[str, Any]:
    if result.result is None:
        return {"gesture": "None", "confidence": 1.0, "hand": False}
    return {
        "gesture": result.result.gesture,
        "confidence": result.result.confidence,
        "hand": True,
        "handedness": result.hand.handedness,
        "fingers_extended": result.result.extended,
    }


def status_markdown(result: FrameResult, log: deque[str]) -> str:
    state = result.state
    gesture = f"**{result.result.gesture}** {result.result.confidence:.0%}" if result.result else "no hand"
    bar = lambda value: "█" * round(value * 10) + "░" * (10 - round(value * 10))  # noqa: E731
    lines = [f"### {gesture}", f"hold `{bar(state.hold.progress)}` · cooldown {state.hold.cooldown_left:.1f} s"]
    if state.stop_progress:
        lines.append(f"stop `{bar(state.stop_progress)}`")
    if state.cursor:
        lines.append(f"cursor ({state.cursor.x:.2f}, {state.cursor.y:.2f}) · dwell `{bar(state.cursor.dwell)}`")
    if log:
        lines.append("**Fired:** " + " · ".join(log))
    return "\n\n".join(lines)


MAX_LIVE_SESSIONS = 8  # webcam streams tracked at once; a new one closes the longest-running


class GesturesTab:
    def __init__(self, registry: ModelRegistry, config: GestureConfig | None = None,
                 max_sessions: int = MAX_LIVE_SESSIONS):
        self.registry = registry
        self.config = config or GestureConfig()
        self._photo_tracker = HandTracker(video=False)
        self._photo_lock = threading.Lock()  # a MediaPipe graph is not thread-safe
        self.max_sessions = max_sessions
        self._live: OrderedDict[int, GestureSession] = OrderedDict()  # each holds a MediaPipe graph
        self._live_lock = threading.Lock()

    def _open_session(self) -> GestureSession:
        session = GestureSession(self.config)
        with self._live_lock:
            self._live[id(session)] = session
            while len(self._live) > self.max_sessions:
                _, oldest = self._live.popitem(last=False)
                oldest.close()  # its page gets a new session with its next frame, if it is still there
        return session

    def _close_session(self, state: dict | None) -> None:
        if state and "session" in state:
            with self._live_lock:
                self._live.pop(id(state["session"]), None)
            state["session"].close()

    @property
    def live_sessions(self) -> int:
        return len(self._live)

    def _generating(self) -> bool:
        """Whether any hosted model is answering (the Chat or the Arena): the open palm then stops."""
        return any(pool.active for pool in self.registry.entries())

    def stream_frame(self, frame: np.ndarray | None, state: dict | None):
        if frame is None:  # the webcam sent an empty frame: change nothing
            return gr.skip(), gr.skip(), state, gr.skip(), gr.skip()
        state = state or {"log": deque(maxlen=6), "seq": 0}
        if "session" not in state or state["session"].closed:
            state["session"] = self._open_session()
        result = state["session"].process(to_rgb(frame), time.monotonic(), self._generating())
        if result is None:  # evicted while this frame waited: it is skipped, the next one starts afresh
            return gr.skip(), gr.skip(), state, gr.skip(), gr.skip()
        for action in result.state.actions:
            if action.kind not in ("cursor", "scroll"):  # continuous actions would flood the log
                state["log"].append(f"{action.kind} {action.text}".strip())
        # Two buses: messages go to the Chat tab's server-side handler; the rest only to the page, so
        # a cursor moving at 10 frames/s costs no server round trip.
        messages = [asdict(a) for a in result.state.actions if a.kind == "send"]
        page = [asdict(a) for a in result.state.actions if a.kind != "send"]
        state["seq"] += 1
        message_event = {"seq": state["seq"], "actions": messages} if messages else gr.skip()
        page_event = {"seq": state["seq"], "actions": page} if page else gr.skip()
        return result.annotated, status_markdown(result, state["log"]), state, message_event, page_event

    def classify_photo(self, image: np.ndarray | None) -> tuple[np.ndarray, dict[str, Any]]:
        """Classifies one photo: returns the annotated image and {gesture, confidence, hand, ...}."""
        if image is None:
            raise gr.Error("Upload a photo first.")
        with self._photo_lock:
            result = classify_photo(to_rgb(image), self._photo_tracker)
        return result.annotated, describe(result)

    def build(self, gesture_messages: gr.JSON) -> None:
        """`gesture_messages` carries the messages to send; the Chat and Arena tabs listen to it."""
        with gr.Row():
            with gr.Column():
                camera = gr.WebcamOptions(mirror=True, constraints={"video": {"width": 640, "height": 480}})
                webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                  elem_id="gesture-webcam", webcam_options=camera)
            with gr.Column():
                annotated = gr.Image(label="What the server sees", elem_id="gesture-annotated", interactive=False)
                status = gr.Markdown("Start the webcam to track your hand.", elem_id="gesture-status")
        state = gr.State(None, delete_callback=self._close_session)
        gesture_messages.render()
        page_actions = gr.JSON(visible="hidden", elem_id="gesture-page-actions")
        webcam.stream(self.stream_frame, [webcam, state],
                      [annotated, status, state, gesture_messages, page_actions],
                      stream_every=0.1, concurrency_limit=8, api_visibility="private", show_progress="hidden")
        page_actions.change(None, [page_actions], None, js=PAGE_ACTIONS_JS, api_visibility="private")
        with gr.Accordion("Cheat sheet", open=True):
            gr.Markdown(CHEAT_SHEET)
        with gr.Row():
            photo = gr.Image(sources=["upload"], type="numpy", label="Classify a photo", elem_id="gesture-photo")
            photo_annotated = gr.Image(label="Landmarks", interactive=False)
            photo_result = gr.JSON(label="Result", elem_id="gesture-photo-result")
        gr.Button("Classify photo", elem_id="classify-btn").click(
            self.classify_photo, [photo], [photo_annotated, photo_result], api_name="classify_photo")
