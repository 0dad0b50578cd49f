"""A local server that speaks the Hugging Face hub's file API — what huggingface-hub's downloads use — and
serves real files: HEAD/GET /{owner}/{repo}/resolve/{revision}/{path} with the commit, ETag and size
headers, Range requests (resumed downloads), and errors in the hub's shape (X-Error-Code). Point
`HF_ENDPOINT` at `url` and the real client downloads over real HTTP.

Faults a real hub shows only by chance are on demand: `rate` (bytes/s, so progress can be watched),
`cut_first` (the first download stops halfway, as a dropped connection does), `token` (a private repo).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CHUNK = 256 * 1024


class HubServer:
    def __init__(self, files: dict[str, Path], *, token: str | None = None, rate: float | None = None,
                 cut_first: bool = False):
        """`files`: "owner/repo/path/file.gguf" -> the file to serve under that name."""
        self.files = {name: Path(path) for name, path in files.items()}
        self.etags = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in self.files.items()}
        self.token, self.rate, self.cut_first = token, rate, cut_first
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) as received
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def downloads(self) -> list[dict[str, str]]:
        """The headers of every GET of a file."""
        return [headers for method, path, headers in self.requests if method == "GET" and "/resolve/" in path]

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _error(self, status: int, code: str, message: str) -> None:
                payload = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _answer(self, *, body: bool) -> None:
                hub.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "RepoNotFound", "Repository not found")
                repo, name = "/".join(parts[:2]), "/".join(parts[:2] + parts[4:])
                if hub.token and self.headers.get("Authorization") != f"Bearer {hub.token}":
                    return self._error(401, "RepoNotFound", "Invalid credentials")
                if not any(f.startswith(repo + "/") for f in hub.files):
                    return self._error(404, "RepoNotFound", "Repository not found")
                if name not in hub.files:
                    return self._error(404, "EntryNotFound", "Entry not found")
                path, size = hub.files[name], hub.files[name].stat().st_size
                start = 0
                if self.headers.get("Range", "").startswith("bytes="):
                    start = int(self.headers["Range"][6:].split("-")[0] or 0)
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hub.etags[name]}"')
                self.send_header("X-Linked-Etag", f'"{hub.etags[name]}"')
                self.send_header("X-Linked-Size", str(size))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(size - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.end_headers()
                if body:
                    self._send_file(path, start, size)

            def _send_file(self, path: Path, start: int, size: int) -> None:
                cut = hub.cut_first and len(hub.downloads()) == 1
                stop_at = size // 2 if cut else size
                with path.open("rb") as file:
                    file.seek(start)
                    sent = start
                    while sent < stop_at:
                        chunk = file.read(min(CHUNK, stop_at - sent))
                        try:
                            self.wfile.write(chunk)
                        except (BrokenPipeError, ConnectionResetError):
                            return
                        sent += len(chunk)
                        if hub.rate:
                            time.sleep(len(chunk) / hub.rate)
                if cut:  # as a dropped connection: fewer bytes than promised, then the end
                    self.close_connection = True
                    self.connection.shutdown(2)

        return Handler
