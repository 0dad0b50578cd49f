"""Refuses request bodies over a size limit with 413 in OpenAI's error shape, before they reach a
route: by Content-Length when given, else by reading the (chunked) body up to the limit first.
The API and the Gradio calls share one limit; UI uploads (photos) have their own."""

from __future__ import annotations

import json

from api.errors import error_body

UPLOADS = "/gradio_api/upload"


class BodySizeLimit:
    def __init__(self, app, *, max_bytes: int, upload_bytes: int,
                 prefixes: tuple[str, ...] = ("/v1", "/hub", "/gradio_api", "/login", "/tokenize", "/detokenize",
                                                   "/models")):
        self.app, self.prefixes = app, prefixes
        self.max_bytes, self.upload_bytes = max_bytes, upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            return await self.app(scope, receive, send)
        limit = self.upload_bytes if scope["path"].startswith(UPLOADS) else self.max_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                return await self._refuse(send, limit)
            return await self.app(scope, receive, send)
        body = bytearray()
        while True:  # no length given: buffer up to the limit, then hand the app the whole body
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                return await self._refuse(send, limit)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # afterwards only the disconnect can come

        await self.app(scope, replay, send)

    async def _refuse(self, send, limit: int) -> None:
        flag = "--max-upload-bytes" if limit == self.upload_bytes else "--max-body-bytes"
        body = json.dumps(error_body(
            f"The request body is larger than the {limit} bytes this server accepts; send less, or raise {flag}.",
            "invalid_request_error", "request_too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
