"""Frame in, everything the UI shows out: landmarks -> classification -> actions -> annotated frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gestures.actions import FrameState, GestureConfig, GestureController
from gestures.annotate import annotate
from gestures.classify import Classification, classify
from gestures.landmarks import Hand, HandTracker


@dataclass(frozen=True)
class FrameResult:
    annotated: np.ndarray
    hand: Hand | None
    result: Classification | None  # None when no hand is in the frame
    state: FrameState | None = None  # temporal state; only for streams


def classify_photo(rgb: np.ndarray, tracker: HandTracker) -> FrameResult:
    hand = tracker.detect(rgb)
    result = classify(hand.pixels) if hand is not None else None
    return FrameResult(annotate(rgb, hand, result), hand, result)


class GestureSession:
    """One webcam stream: a tracking (video-mode) hand tracker and the temporal controller."""

    def __init__(self, config: GestureConfig | None = None):
        self.tracker = HandTracker(video=True)
        self.controller = GestureController(config)

    def process(self, rgb: np.ndarray, now: float, generating: bool = False) -> FrameResult:
        hand = self.tracker.detect(rgb)
        result = classify(hand.pixels) if hand is not None else None
        state = self.controller.update(result, hand, now, generating)
        cursor = (state.cursor.x, state.cursor.y) if state.cursor else None
        return FrameResult(annotate(rgb, hand, result, cursor), hand, result, state)

    def close(self) -> None:
        self.tracker.close()
