"""Accuracy on the real photos, end to end (MediaPipe landmarks -> geometry), and invariance."""

from __future__ import annotations

import numpy as np
import pytest

from gestures.classify import GESTURES, NONE, THUMB_SIDE, classify
from gestures.landmarks import HandTracker
from tests.support.gesture_photos import PHOTOS, label_of, pixels, read_rgb


@pytest.fixture(scope="module")
def tracker():
    tracker = HandTracker(video=False)
    yield tracker
    tracker.close()


def test_accuracy_on_the_real_photos(tracker, capsys):
    photos = sorted(PHOTOS.glob("*.jpg"))
    gesture_photos = [p for p in photos if label_of(p) != NONE]
    right, misses = 0, []
    for path in photos:
        hand = tracker.detect(read_rgb(path))
        predicted = classify(hand.pixels).gesture if hand is not None else NONE
        if predicted == label_of(path):
            right += 1 if label_of(path) != NONE else 0
        else:
            misses.append(f"{path.name}: {predicted}")
        if label_of(path) == NONE:
            assert predicted == NONE, path.name
    with capsys.disabled():
        print(f"\ngesture photos right: {right}/{len(gesture_photos)}; misses: {misses or 'none'}")
    assert len(gesture_photos) == 17 and right >= 16, misses


@pytest.mark.parametrize("mirror", [False, True], ids=["as-shot", "mirrored"])
@pytest.mark.parametrize("degrees", [-20, 0, 20])
def test_left_right_and_tilt_do_not_change_the_answer(recorded, mirror, degrees):
    """Mirroring swaps a left hand for a right one (and palm for back); tilt rotates about the wrist."""
    for name, entry in recorded.items():
        if not entry["hand_detected"]:
            continue
        points = pixels(entry)
        if mirror:
            points[:, 0] = entry["image_size"][0] - points[:, 0]
        angle = np.radians(degrees)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        wrist = points[0, :2].copy()
        points[:, :2] = (points[:, :2] - wrist) @ rotation.T + wrist
        assert classify(points).gesture == entry["label"], name


def test_confidence_is_high_for_clear_photos_and_fingers_are_reported(recorded):
    result = classify(pixels(recorded["Open_Palm_3.jpg"]))
    assert result.confidence > 0.9
    assert all(result.extended[f] > 0.9 for f in ("index", "middle", "ring", "pinky"))
    fist = classify(pixels(recorded["Closed_Fist_1.jpg"]))
    assert all(value < 0.1 for value in fist.extended.values())


def test_thumb_turned_sideways_is_its_own_pose(recorded):
    for quarter in ([[0.0, -1.0], [1.0, 0.0]], [[0.0, 1.0], [-1.0, 0.0]]):  # thumb to one side, then the other
        points = pixels(recorded["Thumb_Up_1.jpg"])
        wrist = points[0, :2].copy()
        points[:, :2] = (points[:, :2] - wrist) @ np.array(quarter).T + wrist
        assert classify(points).gesture == THUMB_SIDE
    assert THUMB_SIDE not in GESTURES  # not one of MediaPipe's canned seven
