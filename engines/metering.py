"""Who is asking, and how much work they may have: a token budget per caller.

The front door (api/access.py) names the caller of each request — `key:<digest>` with API keys,
`addr:<ip>` without — in `CALLER`, which follows the request into every task it starts (a mode's
turns, a stream) and, through the playground's handlers, into the UI's events. Every generation
passes through a `Pool`, which asks the budget before it starts and spends every token it decodes
(prompt tokens not found in the cache, and completion tokens), live. So a council of eight members
or a 4096-token answer costs what it costs, not "one request"; a caller over budget gets
`Overloaded` (429 with Retry-After) until the bucket refills.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from contextvars import ContextVar

from engines.errors import Overloaded

CALLER: ContextVar[str | None] = ContextVar("caller", default=None)
MAX_CALLERS = 10_000  # buckets kept at most; the longest idle go first


class TokenBudget:
    """A token bucket per caller: `per_minute` tokens, refilled evenly; a full bucket is forgotten."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # caller -> (tokens, at)

    def _level(self, caller: str, now: float) -> float:
        tokens, at = self._buckets.get(caller, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60)

    def admit(self, caller: str | None = None) -> None:
        """Raises Overloaded while the caller's bucket is empty (it may run into debt by one answer)."""
        caller = caller or CALLER.get()
        if caller is None:
            return
        now = self.clock()
        level = self._level(caller, now)
        if level < 1:
            wait = math.ceil((1 - level) * 60 / self.per_minute)
            raise Overloaded(f"Token budget reached: {self.per_minute} tokens per minute for this caller. "
                             f"Retry in {wait} s.", retry_after=wait)

    def spend(self, tokens: int, caller: str | None = None) -> None:
        caller = caller or CALLER.get()
        if caller is None or tokens <= 0:
            return
        now = self.clock()
        self._buckets[caller] = (self._level(caller, now) - tokens, now)
        self._buckets.move_to_end(caller)
        self._evict(now)

    def _evict(self, now: float) -> None:
        while self._buckets:  # oldest first: stop at the first bucket that is not full again
            caller, (tokens, at) = next(iter(self._buckets.items()))
            full = tokens + (now - at) * self.per_minute / 60 >= self.per_minute
            if not full and len(self._buckets) <= MAX_CALLERS:
                break
            del self._buckets[caller]

    def __len__(self) -> int:
        return len(self._buckets)
