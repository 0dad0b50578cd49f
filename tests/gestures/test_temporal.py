"""Hold, cooldown, wave, stop, dwell-click, scroll and view switching, replayed from landmark
sequences built from the recorded landmarks of the real photos (10 frames per second)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gestures.actions import GestureConfig, GestureController
from gestures.classify import classify
from gestures.landmarks import Hand

FPS = 10


def hand_at(entry: dict, dx: float = 0.0, dy: float = 0.0, quarter_turn: bool = False) -> Hand:
    points = np.array(entry["landmarks"], dtype=float)
    width, height = entry["image_size"]
    if quarter_turn:  # rotate about the wrist, in pixel space
        pixels = points[:, :2] * [width, height]
        wrist = pixels[0].copy()
        pixels = (pixels - wrist) @ np.array([[0.0, -1.0], [1.0, 0.0]]).T + wrist
        points[:, :2] = pixels / [width, height]
    points[:, 0] += dx
    points[:, 1] += dy
    return Hand(points, entry["handedness"], entry["handedness_score"], width, height)


def replay(controller, frames, generating=False):
    """frames: list of Hand | None, one per 1/FPS s. Returns [(time, action)] for every action."""
    fired = []
    for i, hand in enumerate(frames):
        now = i / FPS
        result = classify(hand.pixels) if hand is not None else None
        for action in controller.update(result, hand, now, generating).actions:
            fired.append((round(now, 2), action))
    return fired


@pytest.fixture
def controller():
    return GestureController()


def test_a_held_gesture_fires_once_after_ten_frames(recorded, controller):
    thumb = hand_at(recorded["Thumb_Up_3.jpg"])
    fired = replay(controller, [thumb] * 60)  # held for 6 s
    assert [(t, a.kind, a.text) for t, a in fired] == [(0.9, "send", "👍")]


def test_release_then_hold_again_respects_the_cooldown(recorded, controller):
    thumb = hand_at(recorded["Thumb_Up_3.jpg"])
    fired = replay(controller, [thumb] * 10 + [None] * 2 + [thumb] * 20)
    times = [t for t, a in fired if a.kind == "send"]
    assert times[0] == 0.9
    assert len(times) == 2 and times[1] - times[0] >= 1.5  # not at 2.1 s (10 frames after re-hold): 2.4 s


def test_a_different_gesture_restarts_the_count(recorded, controller):
    frames = [hand_at(recorded["Thumb_Up_3.jpg"])] * 6 + [hand_at(recorded["Victory_4.jpg"])] * 20
    fired = replay(controller, frames)
    assert [a.text for _, a in fired] == ["ok"]  # no 👍: it was held 6 frames only
    assert fired[0][0] >= 1.5  # ten frames of Victory at least (the hand also had to settle)


def test_each_message_gesture_sends_its_text(recorded):
    expected = {"Thumb_Up_1.jpg": "👍", "Thumb_Down_1.jpg": "👎", "Open_Palm_3.jpg": "👋",
                "Victory_1.jpg": "ok", "ILoveYou_1.jpg": "thanks"}
    for name, text in expected.items():
        fired = replay(GestureController(), [hand_at(recorded[name])] * 12)
        assert [a.text for _, a in fired] == [text], name


def test_wave_sends_hi_and_no_palm_emoji(recorded, controller):
    palm = recorded["Open_Palm_3.jpg"]
    frames = [hand_at(palm, dx=0.08 * math.sin(2 * math.pi * 1.5 * i / FPS)) for i in range(40)]  # 4 s
    fired = replay(controller, frames)
    assert [a.text for _, a in fired] == ["Hi"]
    assert fired[0][0] <= 2.0


def test_slow_drift_is_not_a_wave(recorded, controller):
    palm = recorded["Open_Palm_3.jpg"]
    frames = [hand_at(palm, dx=0.001 * i) for i in range(30)]
    assert [a.text for _, a in replay(controller, frames)] == ["👋"]


def test_open_palm_held_two_seconds_stops_a_running_generation(recorded, controller):
    palm = hand_at(recorded["Open_Palm_3.jpg"])
    fired = replay(controller, [palm] * 30, generating=True)
    assert [(t, a.kind) for t, a in fired] == [(2.0, "stop")]


def test_pointing_moves_a_cursor_and_dwelling_clicks_once(recorded, controller):
    point = recorded["Pointing_Up_1.jpg"]
    fired = replay(controller, [hand_at(point)] * 25)
    clicks = [(t, a) for t, a in fired if a.kind == "click"]
    assert len(clicks) == 1 and 1.2 <= clicks[0][0] <= 1.4
    tip = np.array(point["landmarks"][8][:2])
    assert np.allclose([clicks[0][1].x, clicks[0][1].y], tip, atol=0.01)
    assert all(a.kind in ("cursor", "click") for _, a in fired)


def test_a_moving_pointer_never_clicks(recorded, controller):
    point = recorded["Pointing_Up_1.jpg"]
    fired = replay(controller, [hand_at(point, dx=0.03 * i - 0.3) for i in range(25)])
    assert fired and not [a for _, a in fired if a.kind == "click"]


def test_a_fist_moving_down_scrolls_down_and_a_still_fist_does_not(recorded):
    fist = recorded["Closed_Fist_1.jpg"]
    moving = replay(GestureController(), [hand_at(fist, dy=0.02 * i - 0.2) for i in range(15)])
    assert moving and all(a.kind == "scroll" and a.amount > 0 for _, a in moving)
    assert replay(GestureController(), [hand_at(fist)] * 15) == []


def test_thumb_sideways_switches_view(recorded, controller):
    side = hand_at(recorded["Thumb_Up_1.jpg"], quarter_turn=True)
    fired = replay(controller, [side] * 15)
    assert [a.kind for _, a in fired] == ["switch_view"]


def test_the_mapping_is_configurable(recorded):
    config = GestureConfig.from_json('{"messages": {"Victory": "yes", "ILoveYou": null}, "hold_frames": 5}')
    victory = replay(GestureController(config), [hand_at(recorded["Victory_1.jpg"])] * 8)
    assert [(t, a.text) for t, a in victory] == [(0.4, "yes")]
    assert replay(GestureController(config), [hand_at(recorded["ILoveYou_1.jpg"])] * 12) == []
    with pytest.raises(ValueError, match="unknown gesture settings"):
        GestureConfig.from_json('{"hold": 3}')
    with pytest.raises(ValueError, match="messages can only map"):
        GestureConfig.from_json('{"messages": {"Middle_Finger": "?"}}')
