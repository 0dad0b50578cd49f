"""The front door: one access policy for every surface — the OpenAI routes, modes, generated UI, the
Gradio API (named endpoints, queue/join with any fn_index, call/*, uploads) and the browser UI.

An ASGI middleware around the whole app (the UI mounted at "/" included). With API keys configured,
a request needs one: `Authorization: Bearer <key>` or `X-API-Key` (OpenAI clients, gradio_client's
`headers=`), or the session cookie the login page sets (browsers: a page asks for the key once).
Without a key: the browser is sent to /login, everything else gets a 401. Open to all: `/health`
(up or not), the shields.io badges, the `/status` page (which shows what the badges and `/health/details` tell
its caller), `/login`, and `/hub/*` (which checks the hub token itself); `/health/details` answers callers
without a key with what holds no topology.

Every request that starts work (POSTs to /v1 and /models, the Gradio calls and uploads) counts against the
per-caller request rate limit; the caller is named for the token budget (engines/metering.py).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import os
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode

from api.errors import error_body
from engines.errors import Overloaded
from engines.metering import CALLER, TokenBudget
from engines.remote import HOP_HEADER, HOPS, MAX_HOPS

COOKIE = "playground_session"
OPEN = ("/health", "/login", "/logout", "/status", "/status.js", "/status.css")
OPEN_PREFIXES = ("/api/badge/", "/hub/")
WORK_PREFIXES = ("/v1/", "/gradio_api/queue/join", "/gradio_api/call/", "/gradio_api/run/", "/gradio_api/api/",
                 "/gradio_api/upload", "/tokenize", "/detokenize", "/models/")


def presented_key(headers: dict[bytes, bytes]) -> str:
    header = headers.get(b"authorization", b"").decode("latin-1")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return headers.get(b"x-api-key", b"").decode("latin-1").strip()


class AccessPolicy:
    def __init__(self, app, *, keys: list[str], rate_limit: int = 0):
        self.app = app
        self.keys = list(keys)
        self._secret = os.urandom(32)  # sessions end with the process: log in again after a restart
        self._sessions = {self._session(key): key for key in self.keys}
        self.limiter = TokenBudget(rate_limit) if rate_limit else None  # one request = one token

    def _session(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    def key_of(self, headers: dict[bytes, bytes]) -> str | None:
        """The valid key this request carries (header or session cookie), else None."""
        given = presented_key(headers)
        if given:
            return next((k for k in self.keys if hmac.compare_digest(given.encode(), k.encode())), None)
        cookie = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
        session = cookie[COOKIE].value if COOKIE in cookie else ""
        return next((k for s, k in self._sessions.items() if hmac.compare_digest(session, s)), None)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path, headers = scope["path"], dict(scope["headers"])
        if path == "/login" and self.keys:
            return await self._login(scope, receive, send, headers)
        if path == "/logout":
            return await _redirect(send, "/login" if self.keys else "/", clear=True)
        key = self.key_of(headers) if self.keys else None
        state = scope.setdefault("state", {})
        state["authenticated"] = key is not None or not self.keys
        if self.keys and key is None and not self._open(path):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            if scope["method"] == "GET" and b"text/html" in headers.get(b"accept", b""):
                target = path + ("?" + scope["query_string"].decode() if scope.get("query_string") else "")
                return await _redirect(send, "/login?" + urlencode({"next": target}))
            return await _json(send, 401, error_body(
                "Incorrect API key provided. Pass it as 'Authorization: Bearer <key>'.", "authentication_error",
                "invalid_api_key"))
        caller = f"key:{hashlib.sha256(key.encode()).hexdigest()[:12]}" if key else \
            f"addr:{(scope.get('client') or ('?',))[0]}"
        state["caller"] = caller
        if self.limiter is not None and scope.get("method") == "POST" and path.startswith(WORK_PREFIXES):
            try:
                self.limiter.admit(caller)
            except Overloaded as exc:
                return await _json(send, 429, error_body(
                    f"Rate limit reached: {self.limiter.per_minute} requests per minute for this "
                    f"{'key' if key else 'address'}. Retry in {int(exc.retry_after)} s.", "rate_limit_error",
                    "rate_limit_exceeded"), {"Retry-After": str(int(exc.retry_after))})
            self.limiter.spend(1, caller)
        hops = headers.get(HOP_HEADER.lower().encode(), b"0")
        hops = int(hops) if hops.isdigit() else 0
        if hops >= MAX_HOPS:  # e.g. an instance registered with the hub's own URL
            return await _json(send, 508, error_body(
                f"This request has already passed through {hops} servers: the fleet routes it in a loop.",
                "server_error", "loop_detected"))
        CALLER.set(caller)  # this request's task and the tasks it starts see who is asking
        HOPS.set(hops)
        await self.app(scope, receive, send)

    @staticmethod
    def _open(path: str) -> bool:
        return path in OPEN or path == "/health/details" or path.startswith(OPEN_PREFIXES)

    async def _login(self, scope, receive, send, headers) -> None:
        query = parse_qs(scope.get("query_string", b"").decode())
        target = _local(query.get("next", ["/"])[0])
        if scope["method"] != "POST":
            return await _page(send, 200, LOGIN_PAGE.format(next=html.escape(target), error=""))
        body = b""
        while len(body) <= 8192:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = parse_qs(body.decode("utf-8", "replace"))
        key = form.get("key", [""])[0]
        target = _local(form.get("next", [target])[0])
        if not any(hmac.compare_digest(key.encode(), k.encode()) for k in self.keys):
            return await _page(send, 401, LOGIN_PAGE.format(next=html.escape(target),
                                                             error="<p class='error'>That key is not valid.</p>"))
        secure = headers.get(b"x-forwarded-proto", scope.get("scheme", "http").encode()) == b"https"
        await _redirect(send, target, session=self._session(key), secure=secure)


def _local(target: str) -> str:
    """Only paths of this server (no open redirects)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


async def _json(send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())]})
    await send({"type": "http.response.body", "body": payload})


async def _page(send, status: int, text: str) -> None:
    payload = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": payload})


async def _redirect(send, location: str, *, session: str | None = None, clear: bool = False,
                    secure: bool = False) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0")]
    if session is not None or clear:
        value = f"{COOKIE}={session or ''}; Path=/; HttpOnly; SameSite=Lax" + ("; Max-Age=0" if clear else "")
        headers.append((b"set-cookie", (value + ("; Secure" if secure else "")).encode()))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Serverless LLM Playground</title>
<style>body{{font-family:system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;margin:0}}
form{{display:flex;flex-direction:column;gap:10px;min-width:280px}}input,button{{font-size:1rem;padding:8px}}
.error{{color:#b00020;margin:0}}</style></head><body>
<form method="post" action="/login"><h2>Serverless LLM Playground</h2>
<label for="key">API key</label>{error}
<input id="key" name="key" type="password" autocomplete="current-password" autofocus required>
<input type="hidden" name="next" value="{next}"><button type="submit">Enter</button></form></body></html>"""
