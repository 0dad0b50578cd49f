"""The seven canned gestures (and None) from 21 hand landmarks, by geometry alone.

Finger states come from joint bend angles, which do not change with the hand's rotation, side
(left/right) or whether the palm or the back faces the camera. Only the thumb's up/down and the
index's "up" use the image's vertical. Each gesture is a template of finger states; its confidence
is the weakest agreement among the fingers it constrains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GESTURES = ("Thumb_Up", "Thumb_Down", "Open_Palm", "Closed_Fist", "Pointing_Up", "Victory", "ILoveYou")
# Not one of MediaPipe's canned gestures: a fist with the thumb pointing sideways (switches views).
THUMB_SIDE = "Thumb_Side"
NONE = "None"
MIN_CONFIDENCE = 0.5

# MediaPipe hand landmark indices.
WRIST, THUMB_MCP, THUMB_TIP, INDEX_MCP, INDEX_TIP, MIDDLE_MCP = 0, 2, 4, 5, 8, 9
FINGERS = {"index": (5, 6, 7, 8), "middle": (9, 10, 11, 12), "ring": (13, 14, 15, 16), "pinky": (17, 18, 19, 20)}


@dataclass(frozen=True)
class Classification:
    gesture: str  # one of GESTURES, THUMB_SIDE or NONE
    confidence: float
    extended: dict[str, float]  # per finger (thumb included), 0 = curled, 1 = straight

    @property
    def is_gesture(self) -> bool:
        return self.gesture != NONE


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def finger_bend(points: np.ndarray, joints: tuple[int, int, int, int]) -> float:
    """Total bend (degrees) from the palm through the three finger joints: ~20 straight, >150 curled."""
    mcp, pip, dip, tip = (points[j] for j in joints)
    return (_angle(mcp - points[WRIST], pip - mcp) + _angle(pip - mcp, dip - pip) + _angle(dip - pip, tip - dip))


def classify(landmarks: np.ndarray) -> Classification:
    """`landmarks`: 21 x 3 array in pixel units (x, y, z with z on x's scale), y pointing down."""
    points = np.asarray(landmarks, dtype=float)
    flat = points[:, :2]
    palm = float(np.linalg.norm(flat[MIDDLE_MCP] - flat[WRIST])) or 1.0

    extended = {name: _sigmoid((90.0 - finger_bend(points, joints)) / 15.0) for name, joints in FINGERS.items()}
    # The thumb bends little even when folded, so judge it by where its tip is: away from the index
    # knuckle (`thumb_out`), and sticking out beyond every other landmark along its own direction
    # (`thumb_beyond`, which tells a thumbs-up from a fist whose thumb rests on the fingers).
    thumb_dir = flat[THUMB_TIP] - flat[THUMB_MCP]
    thumb_dir /= np.linalg.norm(thumb_dir) + 1e-9
    reach = (flat[THUMB_TIP] @ thumb_dir - max(flat[j] @ thumb_dir for j in range(5, 21))) / palm
    apart = float(np.linalg.norm(flat[THUMB_TIP] - flat[INDEX_MCP])) / palm
    thumb_out, thumb_beyond = _sigmoid((apart - 0.5) / 0.08), _sigmoid((reach - 0.2) / 0.08)
    extended["thumb"] = thumb_out

    # How far the thumb tip rises above, drops below, or sticks out sideways from every other
    # landmark, in palm sizes; sideways only counts when clearly more than up or down.
    others = flat[5:]
    thumb_up = (others[:, 1].min() - flat[THUMB_TIP, 1]) / palm
    thumb_down = (flat[THUMB_TIP, 1] - others[:, 1].max()) / palm
    sideways = max(others[:, 0].min() - flat[THUMB_TIP, 0], flat[THUMB_TIP, 0] - others[:, 0].max()) / palm
    leaning = sideways - max(thumb_up, thumb_down) - 0.2  # > 0: the thumb points sideways
    index_dir = flat[INDEX_TIP] - flat[INDEX_MCP]
    index_up = -index_dir[1] / (np.linalg.norm(index_dir) + 1e-9)  # 1 straight up, 0 sideways

    def ext(*names):
        return [extended[n] for n in names]

    def curled(*names):
        return [1.0 - extended[n] for n in names]

    four = ("index", "middle", "ring", "pinky")
    thumb_only = [*curled(*four), thumb_out, thumb_beyond]  # a fist with the thumb sticking out
    scores = {
        "Open_Palm": ext(*four),
        "Closed_Fist": [*curled(*four), 1.0 - min(thumb_out, thumb_beyond)],
        "Thumb_Up": [*thumb_only, _sigmoid((thumb_up - 0.1) / 0.08), _sigmoid(-leaning / 0.05)],
        "Thumb_Down": [*thumb_only, _sigmoid((thumb_down - 0.1) / 0.08), _sigmoid(-leaning / 0.05)],
        THUMB_SIDE: [*thumb_only, _sigmoid(leaning / 0.05)],
        "Pointing_Up": [*ext("index"), *curled("middle", "ring", "pinky"), _sigmoid((index_up - 0.4) / 0.1)],
        "Victory": [*ext("index", "middle"), *curled("ring", "pinky")],
        "ILoveYou": [*ext("index", "pinky", "thumb"), *curled("middle", "ring")],
    }
    best, parts = max(scores.items(), key=lambda item: min(item[1]))
    confidence = min(parts)
    rounded = {name: round(value, 3) for name, value in extended.items()}
    if confidence < MIN_CONFIDENCE:
        return Classification(NONE, round(1.0 - confidence, 3), rounded)
    return Classification(best, round(confidence, 3), rounded)
