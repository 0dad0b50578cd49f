"""Time-based gesture logic, fed one observation per frame with the frame's timestamp (seconds).

Pure and deterministic: recorded landmark sequences replay exactly, whatever the frame rate.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class HoldState:
    fired: str | None  # the gesture that triggered on this frame
    progress: float  # 0..1 of the hold needed
    cooldown_left: float  # seconds before anything may trigger again


class HoldTrigger:
    """A gesture triggers once it is seen on `hold_frames` consecutive frames; then nothing triggers
    for `cooldown` seconds, and the same gesture must be released before it can trigger again."""

    def __init__(self, hold_frames: int = 10, cooldown: float = 1.5):
        self.hold_frames, self.cooldown = hold_frames, cooldown
        self._current: str | None = None
        self._count = 0
        self._armed = True
        self._last_fire = -math.inf

    def update(self, gesture: str | None, now: float) -> HoldState:
        if gesture != self._current:
            self._current, self._count, self._armed = gesture, 0, True
        if gesture is None:
            return HoldState(None, 0.0, self._cooldown_left(now))
        self._count += 1
        cooldown_left = self._cooldown_left(now)
        if self._armed and self._count >= self.hold_frames and cooldown_left == 0:
            self._armed, self._last_fire = False, now
            return HoldState(gesture, 1.0, self.cooldown)
        progress = 1.0 if not self._armed else min(1.0, self._count / self.hold_frames)
        return HoldState(None, progress, cooldown_left)

    def _cooldown_left(self, now: float) -> float:
        return max(0.0, self.cooldown - (now - self._last_fire))


class WaveDetector:
    """An open palm moving side to side: at least `min_changes` direction changes of the wrist's x,
    each swing longer than `min_swing` (fraction of the frame width), within `window` seconds.
    One wave fires once: the palm must leave (or change pose) before the next."""

    def __init__(self, window: float = 2.0, min_changes: int = 3, min_swing: float = 0.03):
        self.window, self.min_changes, self.min_swing = window, min_changes, min_swing
        self._turns: deque[float] = deque()
        self._anchor: float | None = None  # x where the current swing started
        self._direction = 0
        self._armed = True

    def update(self, open_palm: bool, x: float, now: float) -> bool:
        if not open_palm:
            self._reset()
            self._armed = True
            return False
        if not self._armed:
            return False
        if self._anchor is None:
            self._anchor = x
            return False
        moved = x - self._anchor
        if abs(moved) >= self.min_swing:
            direction = 1 if moved > 0 else -1
            if self._direction and direction != self._direction:
                self._turns.append(now)
            self._direction, self._anchor = direction, x
        elif self._direction and (x - self._anchor) * self._direction > 0:
            self._anchor = x  # still swinging the same way: follow the extreme
        while self._turns and now - self._turns[0] > self.window:
            self._turns.popleft()
        if len(self._turns) >= self.min_changes:
            self._reset()
            self._armed = False
            return True
        return False

    def _reset(self) -> None:
        self._turns.clear()
        self._anchor, self._direction = None, 0


@dataclass(frozen=True)
class CursorState:
    x: float
    y: float
    dwell: float  # 0..1 of the dwell needed to click
    clicked: bool


class DwellCursor:
    """A smoothed pointer (exponential moving average) that clicks when it stays within `radius`
    (fraction of the frame) for `dwell` seconds; it must move away before clicking again."""

    def __init__(self, dwell: float = 1.2, radius: float = 0.05, smoothing: float = 0.5):
        self.dwell, self.radius, self.smoothing = dwell, radius, smoothing
        self._pos: tuple[float, float] | None = None
        self._anchor: tuple[float, float] | None = None
        self._since = 0.0
        self._clicked = False

    def update(self, x: float, y: float, now: float) -> CursorState:
        if self._pos is None:
            self._pos = (x, y)
        else:
            a = self.smoothing
            self._pos = (a * self._pos[0] + (1 - a) * x, a * self._pos[1] + (1 - a) * y)
        px, py = self._pos
        if self._anchor is None or math.dist(self._anchor, self._pos) > self.radius:
            self._anchor, self._since, self._clicked = self._pos, now, False
        held = (now - self._since) / self.dwell
        if held >= 1 and not self._clicked:
            self._clicked = True
            return CursorState(px, py, 1.0, True)
        return CursorState(px, py, 1.0 if self._clicked else min(1.0, held), False)

    def release(self) -> None:
        self._pos = self._anchor = None
        self._clicked = False
