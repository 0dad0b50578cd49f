"""A token bucket per caller, for the per-key (or per-address) request rate limit."""

from __future__ import annotations

import time


class RateLimiter:
    """A token bucket per caller: `per_minute` requests, refilled evenly, bursts up to `per_minute`."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, updated at)

    def take(self, caller: str, now: float | None = None) -> float:
        """0 when allowed; otherwise the seconds until the next request would be."""
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60
        tokens, updated = self._buckets.get(caller, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - updated) * rate)
        if tokens >= 1:
            self._buckets[caller] = (tokens - 1, now)
            return 0.0
        self._buckets[caller] = (tokens, now)
        return (1 - tokens) / rate
