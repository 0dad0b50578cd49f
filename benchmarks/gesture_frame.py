"""One 640x480 webcam frame end to end: JPEG decode, hand landmarks, classification, temporal
logic and annotation — the work the Gestures tab does per streamed frame.

    python -m benchmarks.gesture_frame [--frames 200]

Target (issue 6): median <= 50 ms on a 2-core machine. Also prints the still-photo path
(palm detection on every image) for comparison, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import cv2

from gestures.landmarks import HandTracker
from gestures.pipeline import GestureSession, classify_photo

ROOT = Path(__file__).resolve().parent.parent

PHOTOS = ROOT / "tests" / "data" / "gestures"
NAMES = ["Thumb_Up_3.jpg", "Victory_1.jpg", "Open_Palm_3.jpg", "Pointing_Up_1.jpg", "None_1.jpg"]


def frames() -> list[bytes]:
    """Webcam-like JPEG frames (640x480) made from the real photos."""
    out = []
    for name in NAMES:
        image = cv2.resize(cv2.imread(str(PHOTOS / name)), (640, 480))
        out.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return out


def decode(jpeg: bytes):
    import numpy as np

    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    clips = frames()

    stream_ms = []
    for jpeg in clips:  # a fresh stream per clip, as for each webcam session
        session = GestureSession()
        for i in range(args.frames // len(clips)):
            started = time.perf_counter()
            session.process(decode(jpeg), i / 10)
            stream_ms.append((time.perf_counter() - started) * 1000)
        session.close()

    photo_ms = []
    tracker = HandTracker(video=False)
    for i in range(args.frames // 4):
        jpeg = clips[i % len(clips)]
        started = time.perf_counter()
        classify_photo(decode(jpeg), tracker)
        photo_ms.append((time.perf_counter() - started) * 1000)

    def row(label, values):
        values = sorted(values)
        p90 = values[int(0.9 * (len(values) - 1))]
        print(f"{label:28}{statistics.median(values):>8.1f}{p90:>8.1f}{len(values):>8}")

    print(f"640x480 frames from {len(NAMES)} real photos, {os.cpu_count()} CPUs")
    print(f"{'':28}{'median':>8}{'p90':>8}{'frames':>8}  (ms)")
    row("stream (tracking) per frame", stream_ms)
    row("photo (detection) per frame", photo_ms)
    print(f"stream median / 50 ms target: {statistics.median(stream_ms) / 50:.2f}")


if __name__ == "__main__":
    main()
