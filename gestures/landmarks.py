"""Hand landmarks from MediaPipe Hands (0.10.21 ships its palm and landmark models: no download).

A tracker is not thread-safe and, in video mode, keeps state between frames: use one per stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import mediapipe as mp
import numpy as np


@dataclass(frozen=True)
class Hand:
    normalized: np.ndarray  # 21 x 3: x, y in 0..1 of the image, z relative depth on x's scale
    handedness: str  # as MediaPipe reports it (it assumes a mirrored, selfie-style image)
    score: float
    width: int
    height: int

    @property
    def pixels(self) -> np.ndarray:
        """Landmarks in pixel units, so angles are true whatever the image's aspect ratio."""
        return self.normalized * np.array([self.width, self.height, self.width], dtype=float)


class HandTracker:
    def __init__(self, *, video: bool, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        # video=True tracks the hand between frames (palm detection only when it is lost): faster.
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=not video,
            max_num_hands=1,
            model_complexity=1,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def detect(self, rgb: np.ndarray) -> Hand | None:
        """`rgb`: H x W x 3 uint8 in RGB order. Returns the most confident hand, or None."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H x W x 3), got shape {rgb.shape}")
        result = self._hands.process(np.ascontiguousarray(rgb, dtype=np.uint8))
        if not result.multi_hand_landmarks:
            return None
        points = np.array([[p.x, p.y, p.z] for p in result.multi_hand_landmarks[0].landmark], dtype=float)
        label = result.multi_handedness[0].classification[0]
        height, width = rgb.shape[:2]
        return Hand(points, label.label, float(label.score), width, height)

    def close(self) -> None:
        self._hands.close()
