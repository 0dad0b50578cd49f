"""The real gesture photos in ../shared/gestures and their recorded landmarks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

PHOTOS = Path(__file__).resolve().parents[2].parent / "shared" / "gestures"


def label_of(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def recorded() -> dict[str, dict]:
    """file name -> {label, image_size, landmarks (normalized), ...} from landmarks.json."""
    return json.loads((PHOTOS / "landmarks.json").read_text())["images"]


def pixels(entry: dict) -> np.ndarray:
    width, height = entry["image_size"]
    return np.array(entry["landmarks"], dtype=float) * np.array([width, height, width])
