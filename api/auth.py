"""Client protection for /v1: API keys (several allowed) and a per-key rate limit.

Keys come as `Authorization: Bearer <key>` (what OpenAI clients send) or `X-API-Key`. Without
configured keys the API is open and the rate limit, if any, counts per client address.
"""

from __future__ import annotations

import hmac
import math

from fastapi import Request

from api.deps import RateLimiterDep, SettingsDep
from api.errors import APIError


def presented_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")


async def guard(request: Request, settings: SettingsDep, limiter: RateLimiterDep) -> None:
    given = presented_key(request)
    if settings.api_keys and not any(hmac.compare_digest(given.encode(), k.encode()) for k in settings.api_keys):
        raise APIError(401, "Incorrect API key provided. Pass it as 'Authorization: Bearer <key>'.",
                       type="authentication_error", code="invalid_api_key")
    if limiter is None:
        return
    caller = f"key:{given}" if settings.api_keys else f"addr:{request.client.host if request.client else '?'}"
    wait = limiter.take(caller)
    if wait:
        raise APIError(429, f"Rate limit reached: {limiter.per_minute} requests per minute for this key. "
                       f"Retry in {math.ceil(wait)} s.", type="rate_limit_error", code="rate_limit_exceeded",
                       headers={"Retry-After": str(math.ceil(wait))})
