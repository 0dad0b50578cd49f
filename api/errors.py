"""Every error leaves the API in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.

Engine errors map to statuses here; request validation errors become 400 (not FastAPI's 422).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from engines.errors import (
    ContextOverflow,
    EngineError,
    InsufficientMemory,
    InvalidRequest,
    Overloaded,
    Unavailable,
    UnknownModel,
)

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error raised by the API layer itself (auth, request checks the schema cannot express)."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.headers = headers


def error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def engine_error_status(exc: EngineError) -> tuple[int, str]:
    """(HTTP status, OpenAI error type) for an engine error."""
    if isinstance(exc, (ContextOverflow, InvalidRequest)):
        return 400, "invalid_request_error"
    if isinstance(exc, UnknownModel):
        return 404, "invalid_request_error"
    if isinstance(exc, Overloaded):
        return 429, "rate_limit_error"
    if isinstance(exc, Unavailable):
        return 503, "server_error"
    if isinstance(exc, InsufficientMemory):  # as a full disk: the server cannot hold it
        return 507, "server_error"
    return 500, "server_error"


def engine_error_response(exc: EngineError) -> JSONResponse:
    status, kind = engine_error_status(exc)
    busy = isinstance(exc, (Overloaded, Unavailable))  # both pass: say when to try again
    headers = {"Retry-After": str(max(1, int(round(exc.retry_after))))} if busy else None
    return JSONResponse(error_body(exc.message, kind, exc.code, exc.param), status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return "We could not parse the JSON body of your request: " + first.get("msg", ""), None
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(location) or None
    text = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return (f"Invalid value for '{param}': {text}" if param else text), param


def refuse_other_methods(app: FastAPI, routers: list[APIRouter]) -> None:
    """`GET /v1/chat/completions` is a 405 naming the allowed methods, in OpenAI's shape."""
    allowed: dict[str, set[str]] = {}
    for route in (r for router in routers for r in router.routes):
        if isinstance(route, APIRoute):
            allowed.setdefault(route.path, set()).update(route.methods)
    for path, methods in allowed.items():
        others = {"GET", "POST", "PUT", "PATCH", "DELETE"} - methods
        if not others:
            continue
        allow = ", ".join(sorted(methods - {"HEAD"}))

        async def not_allowed(request: Request, allow: str = allow) -> JSONResponse:
            return JSONResponse(error_body(f"{request.method} is not allowed here; use {allow}.",
                                           "invalid_request_error", "method_not_allowed"), 405,
                                headers={"Allow": allow})

        app.add_api_route(path, not_allowed, methods=sorted(others), include_in_schema=False)


def install(app: FastAPI) -> None:
    @app.exception_handler(EngineError)
    async def _engine(_: Request, exc: EngineError):
        return engine_error_response(exc)

    @app.exception_handler(APIError)
    async def _api(_: Request, exc: APIError):
        return JSONResponse(error_body(exc.message, exc.type, exc.code, exc.param), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        return JSONResponse(error_body(message, "invalid_request_error", "invalid_value", param), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return JSONResponse(error_body(str(exc.detail), "invalid_request_error"), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unhandled error")
        return JSONResponse(error_body(f"Internal error: {exc}", "server_error", "internal_error"), 500)
