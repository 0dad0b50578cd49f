"""Optional API key: when configured, /v1 routes need `Authorization: Bearer <key>`."""

from __future__ import annotations

import hmac

from fastapi import Request

from api.errors import APIError


async def require_api_key(request: Request) -> None:
    expected = request.app.state.settings.api_key
    if not expected:
        return
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise APIError(401, "Incorrect API key provided. Pass it as 'Authorization: Bearer <key>'.",
                       type="authentication_error", code="invalid_api_key")
