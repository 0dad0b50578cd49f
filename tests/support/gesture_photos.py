"""The real gesture photos in tests/data/gestures (sources and licences in its SOURCES.md) and the
landmarks MediaPipe found in them (landmarks.json)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import cv2
import numpy as np

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "gestures"


def label_of(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@cache
def recorded() -> dict[str, dict]:
    """file name -> {label, image_size, landmarks (normalized), ...}."""
    return json.loads((PHOTOS / "landmarks.json").read_text())["images"]


def pixels(entry: dict) -> np.ndarray:
    width, height = entry["image_size"]
    return np.array(entry["landmarks"], dtype=float) * np.array([width, height, width])
