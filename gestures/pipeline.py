"""Frame in, everything the UI shows out: landmarks -> classification -> actions -> annotated frame."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
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


MAX_SIDE = 1280  # larger frames are scaled down first: hands stay findable, the work stays bounded


def bounded(rgb: np.ndarray) -> np.ndarray:
    """The frame, scaled down so that its longer side is at most MAX_SIDE."""
    height, width = rgb.shape[:2]
    scale = MAX_SIDE / max(height, width)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def classify_photo(rgb: np.ndarray, tracker: HandTracker) -> FrameResult:
    rgb = bounded(rgb)
    hand = tracker.detect(rgb)
    result = classify(hand.pixels) if hand is not None else None
    return FrameResult(annotate(rgb, hand, result), hand, result)


class GestureSession:
    """One webcam stream: a tracking (video-mode) hand tracker and the temporal controller."""

    def __init__(self, config: GestureConfig | None = None):
        self.tracker = HandTracker(video=True)
        self.controller = GestureController(config)
        self.closed = False
        self._lock = threading.Lock()  # a frame in flight and a close (session evicted) never overlap

    def process(self, rgb: np.ndarray, now: float, generating: bool = False) -> FrameResult | None:
        """None once the session is closed."""
        rgb = bounded(rgb)
        with self._lock:
            if self.closed:
                return None
            hand = self.tracker.detect(rgb)
        result = classify(hand.pixels) if hand is not None else None
        state = self.controller.update(result, hand, now, generating)
        cursor = (state.cursor.x, state.cursor.y) if state.cursor else None
        return FrameResult(annotate(rgb, hand, result, cursor), hand, result, state)

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self.tracker.close()
