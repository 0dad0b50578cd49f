"""Running a node: the background tasks of its lifetime (model loading, the hub monitor, the link
to a hub, the hand-over timer) and uvicorn with a drain on the first SIGTERM/Ctrl-C."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import uvicorn

from fleet.node import Node
from fleet.succession import import_fleet


def lifespan(node: Node) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """The ASGI lifespan: start the node's tasks with the server, stop them (and leave the hub, after
    uvicorn let the requests in flight finish) when it stops."""

    @asynccontextmanager
    async def run(_app: Any) -> AsyncIterator[None]:
        jobs = [node.load_models(), node.hub.run()]
        if node.link is not None:
            jobs.append(node.link.run())
        if node.lifetime is not None:
            jobs.append(node.lifetime.run())
        if node.settings.hub_import:
            jobs.append(import_fleet(node, node.settings.hub_import, node.settings.hub_token))
        tasks = [asyncio.create_task(job) for job in jobs]
        yield
        for task in tasks:
            task.cancel()
        if node.link is not None:
            await node.link.leave()
        await node.registry.aclose()

    return run


class DrainingServer(uvicorn.Server):
    """On the first SIGTERM/SIGINT: report draining (/health 503; the hub stops routing here), keep
    answering for `--drain-grace` seconds, then let uvicorn stop accepting connections and finish the
    requests in flight; the lifespan then deregisters. A second signal stops at once."""

    def __init__(self, config: uvicorn.Config, node: Node):
        super().__init__(config)
        self.node = node

    def handle_exit(self, sig, frame) -> None:
        if self.node.draining:
            return super().handle_exit(sig, frame)
        self.node.draining = True
        asyncio.get_event_loop().call_soon_threadsafe(lambda: asyncio.ensure_future(self._drain(sig, frame)))

    async def _drain(self, sig, frame) -> None:
        if self.node.link is not None:
            await self.node.link.drain()
        await asyncio.sleep(self.node.settings.drain_grace)
        super().handle_exit(sig, frame)


def serve(app: Any, node: Node) -> None:
    settings = node.settings
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    DrainingServer(config, node).run()
