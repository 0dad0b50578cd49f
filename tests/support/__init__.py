"""What tests share: real servers (servers.py), one scripted engine for the faults a real model
cannot produce on demand (scripted.py), headless Chromium (browser.py), the gesture photos
(gesture_photos.py) and a fleet on loopback (fleet.py)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
