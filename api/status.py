"""GET /status: a public status page in plain HTML (no Gradio), like serverless-llm's. It holds no data
of its own: its script (/status.js) reads /health/details and /api/badge/system and redraws every few
seconds, so the page shows exactly what those routes tell this caller — to a caller without a key, when
keys are set, only each model's state. The files live in api/status_page/.

The page runs no inline script or style, so its Content-Security-Policy allows only this server's own
files and requests: a model name that smuggled markup past the script's textContent would still run
nothing."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter()

FILES = Path(__file__).with_name("status_page")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}


def _file(name: str, media_type: str):
    """A route handler that serves one of the page's files (read once: they change only with the code)."""
    body = (FILES / name).read_bytes()

    async def serve() -> Response:
        return Response(body, media_type=media_type, headers=HEADERS)

    return serve


router.get("/status", include_in_schema=False)(_file("index.html", "text/html; charset=utf-8"))
router.get("/status.js", include_in_schema=False)(_file("status.js", "text/javascript; charset=utf-8"))
router.get("/status.css", include_in_schema=False)(_file("status.css", "text/css; charset=utf-8"))
