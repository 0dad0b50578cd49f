"""One address in front of several servers, as a named tunnel with several connectors (or a load
balancer with health checks) is: each new connection goes to the next backend whose /health answered
200 at the last check (every 0.2 s); a backend that refuses the connection is skipped."""

from __future__ import annotations

import asyncio
import itertools
import threading
from urllib.parse import urlsplit

import httpx

from tests.support.servers import free_port, wait_for


class SharedAddress:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backends: list[str] = []  # URLs, in the order they joined
        self.healthy: set[str] = set()
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        assert self._started.wait(10)

    def add(self, url: str) -> None:
        if url not in self.backends:
            self.backends.append(url)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", self.port))
        self._checker = self._loop.create_task(self._check())
        self._started.set()
        self._loop.run_forever()

    async def _check(self) -> None:
        async with httpx.AsyncClient(timeout=1) as client:
            while True:
                for url in list(self.backends):
                    try:
                        ok = (await client.get(url + "/health")).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    (self.healthy.add if ok else self.healthy.discard)(url)
                await asyncio.sleep(0.2)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        candidates = [url for url in self.backends if url in self.healthy]
        start = next(self._turn)
        for url in (candidates[(start + i) % len(candidates)] for i in range(len(candidates))):
            parts = urlsplit(url)
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(parts.hostname, parts.port)
            except OSError:
                continue
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            return
        writer.close()  # nobody to serve it: as a tunnel without a connector

    def wait_healthy(self, url: str, timeout: float = 60) -> bool:
        return wait_for(lambda: url in self.healthy, timeout=timeout)

    def close(self) -> None:
        async def shutdown() -> None:
            self._checker.cancel()
            await asyncio.gather(self._checker, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
