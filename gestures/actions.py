"""What gestures do: serverless-llm's mapping (configurable) plus stop and view switching.

Held gestures send a message (Thumb_Up 👍, Thumb_Down 👎, Open_Palm 👋, Victory "ok", ILoveYou
"thanks"); a wave sends "Hi"; a fist scrolls with the wrist's vertical speed; pointing up moves a
cursor that clicks by dwelling; an open palm held 2 s while a model is answering stops it; a thumb
pointing sideways switches between Chat and Arena.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Literal

from gestures.classify import GESTURES, THUMB_SIDE, Classification
from gestures.landmarks import Hand
from gestures.temporal import CursorState, DwellCursor, HoldState, HoldTrigger, WaveDetector

ActionKind = Literal["send", "stop", "scroll", "cursor", "click", "switch_view"]
WRIST, INDEX_TIP = 0, 8


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    gesture: str
    text: str = ""  # send: the message
    x: float = 0.0  # cursor/click: position as a fraction of the frame
    y: float = 0.0
    amount: float = 0.0  # scroll: pixels, positive = down


@dataclass(frozen=True)
class GestureConfig:
    messages: dict[str, str] = field(default_factory=lambda: {
        "Thumb_Up": "👍", "Thumb_Down": "👎", "Open_Palm": "👋", "Victory": "ok", "ILoveYou": "thanks"})
    wave_message: str = "Hi"
    hold_frames: int = 10
    cooldown: float = 1.5
    stop_hold: float = 2.0  # seconds of open palm that stop a running generation
    dwell: float = 1.2
    still_window: float = 0.5  # a held gesture must keep the wrist within still_range over this time
    still_range: float = 0.05
    scroll_gain: float = 1800.0  # pixels per (frame fraction per frame) of wrist speed
    scroll_threshold: float = 0.006

    @classmethod
    def from_json(cls, text: str) -> GestureConfig:
        """Settings from a JSON object; `messages` entries replace the defaults (null disables one)."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise ValueError(f"unknown gesture settings {sorted(set(data) - known)}; known: {sorted(known)}")
        messages = {**cls().messages, **data.pop("messages", {})}
        if set(messages) - set(GESTURES):
            raise ValueError(f"messages can only map {', '.join(GESTURES)}")
        return cls(messages={g: text for g, text in messages.items() if text}, **data)


@dataclass(frozen=True)
class FrameState:
    actions: list[Action]
    hold: HoldState
    cursor: CursorState | None
    stop_progress: float  # 0..1 of the open-palm hold that stops a generation


class GestureController:
    def __init__(self, config: GestureConfig | None = None):
        self.config = config or GestureConfig()
        c = self.config
        self.hold = HoldTrigger(c.hold_frames, c.cooldown)
        self.wave = WaveDetector()
        self.cursor = DwellCursor(dwell=c.dwell)
        self._wrist: deque[tuple[float, float, float]] = deque()
        self._palm_since: float | None = None
        self._stopped = False
        self._scroll_velocity = 0.0

    def update(self, result: Classification | None, hand: Hand | None, now: float,
               generating: bool = False) -> FrameState:
        gesture = result.gesture if (result and hand and result.is_gesture) else None
        actions: list[Action] = []
        wrist = hand.normalized[WRIST] if hand is not None else None
        self._track_wrist(wrist, now)

        if self.wave.update(gesture == "Open_Palm", float(wrist[0]) if wrist is not None else 0.0, now):
            actions.append(Action("send", "Open_Palm", text=self.config.wave_message))
            self.hold.update(None, now)  # the wave replaces the 👋 of a still palm

        stop_progress = self._stop_progress(gesture == "Open_Palm" and generating, now, actions)

        held = gesture if gesture in self.config.messages or gesture == THUMB_SIDE else None
        if held == "Open_Palm" and generating:
            held = None  # while a model answers, the open palm means "stop", not 👋
        if held is not None and not self._still(now):
            held = None
        hold = self.hold.update(held, now)
        if hold.fired == THUMB_SIDE:
            actions.append(Action("switch_view", THUMB_SIDE))
        elif hold.fired is not None:
            actions.append(Action("send", hold.fired, text=self.config.messages[hold.fired]))

        cursor = None
        if gesture == "Pointing_Up" and hand is not None:
            tip = hand.normalized[INDEX_TIP]
            cursor = self.cursor.update(float(tip[0]), float(tip[1]), now)
            actions.append(Action("click" if cursor.clicked else "cursor", "Pointing_Up", x=cursor.x, y=cursor.y))
        else:
            self.cursor.release()

        if gesture == "Closed_Fist" and len(self._wrist) >= 2:
            (_, _, y0), (_, _, y1) = self._wrist[-2], self._wrist[-1]
            self._scroll_velocity = 0.6 * self._scroll_velocity + 0.4 * (y1 - y0)
            if abs(self._scroll_velocity) > self.config.scroll_threshold:
                actions.append(Action("scroll", "Closed_Fist", amount=self._scroll_velocity * self.config.scroll_gain))
        else:
            self._scroll_velocity = 0.0
        return FrameState(actions, hold, cursor, stop_progress)

    def _stop_progress(self, palm_while_generating: bool, now: float, actions: list[Action]) -> float:
        if not palm_while_generating:
            self._palm_since, self._stopped = None, False
            return 0.0
        if self._palm_since is None:
            self._palm_since = now
        progress = min(1.0, (now - self._palm_since) / self.config.stop_hold)
        if progress >= 1.0 and not self._stopped:
            self._stopped = True
            actions.append(Action("stop", "Open_Palm"))
        return progress

    def _track_wrist(self, wrist, now: float) -> None:
        if wrist is None:
            self._wrist.clear()
            return
        self._wrist.append((now, float(wrist[0]), float(wrist[1])))
        while self._wrist and now - self._wrist[0][0] > self.config.still_window:
            self._wrist.popleft()

    def _still(self, now: float) -> bool:
        xs = [x for _, x, _ in self._wrist]
        ys = [y for _, _, y in self._wrist]
        return not xs or max(max(xs) - min(xs), max(ys) - min(ys)) <= self.config.still_range
