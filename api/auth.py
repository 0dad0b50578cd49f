"""Client protection for /v1: API keys (several allowed) and a per-key rate limit.

Keys come as `Authorization: Bearer <key>` (what OpenAI clients send) or `X-API-Key`. Without
configured keys the API is open and the rate limit, if any, counts per client address.
"""

from __future__ import annotations

import hmac
import math
import time

from fastapi import Request

from api.errors import APIError


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


def presented_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")


async def guard(request: Request) -> None:
    settings = request.app.state.settings
    given = presented_key(request)
    if settings.api_keys and not any(hmac.compare_digest(given.encode(), k.encode()) for k in settings.api_keys):
        raise APIError(401, "Incorrect API key provided. Pass it as 'Authorization: Bearer <key>'.",
                       type="authentication_error", code="invalid_api_key")
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is None:
        return
    caller = f"key:{given}" if settings.api_keys else f"addr:{request.client.host if request.client else '?'}"
    wait = limiter.take(caller)
    if wait:
        raise APIError(429, f"Rate limit reached: {limiter.per_minute} requests per minute for this key. "
                       f"Retry in {math.ceil(wait)} s.", type="rate_limit_error", code="rate_limit_exceeded",
                       headers={"Retry-After": str(math.ceil(wait))})
