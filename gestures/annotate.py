"""Draws the hand skeleton and the recognized gesture onto a copy of the frame."""

from __future__ import annotations

import cv2
import mediapipe as mp
import numpy as np

from gestures.classify import Classification
from gestures.landmarks import Hand

CONNECTIONS = tuple(mp.solutions.hands.HAND_CONNECTIONS)
BONE, JOINT, TEXT_BG = (80, 220, 120), (255, 90, 60), (20, 20, 20)


def annotate(rgb: np.ndarray, hand: Hand | None, result: Classification | None,
             cursor: tuple[float, float] | None = None) -> np.ndarray:
    out = rgb.copy()
    height, width = out.shape[:2]
    if hand is not None:
        points = [(int(x * width), int(y * height)) for x, y, _ in hand.normalized]
        for a, b in CONNECTIONS:
            cv2.line(out, points[a], points[b], BONE, 2, cv2.LINE_AA)
        for point in points:
            cv2.circle(out, point, 3, JOINT, -1, cv2.LINE_AA)
    if cursor is not None:
        cv2.circle(out, (int(cursor[0] * width), int(cursor[1] * height)), 12, (255, 0, 200), 2, cv2.LINE_AA)
    label = f"{result.gesture} {result.confidence:.0%}" if result is not None else "no hand"
    cv2.rectangle(out, (0, 0), (12 + 11 * len(label), 30), TEXT_BG, -1)
    cv2.putText(out, label, (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out
