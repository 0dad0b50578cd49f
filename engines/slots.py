"""A fixed set of slots with a bounded, time-limited wait queue.

A slot is a ticket for one generation at a time (for the local engine: one sequence of its batch).
Full queue -> `Overloaded` (HTTP 429); waiting longer than `queue_timeout` -> `Unavailable` (503).
Slots are given back from any thread, because generations finish on the decode thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Generic, TypeVar

from engines.errors import Overloaded, Unavailable

SlotT = TypeVar("SlotT")


class SlotPool(Generic[SlotT]):
    def __init__(self, slots: Iterable[SlotT], *, max_queue: int, queue_timeout: float, name: str):
        self._free: asyncio.Queue[SlotT] = asyncio.Queue()
        for slot in slots:
            self._free.put_nowait(slot)
        self.size = self._free.qsize()
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.name = name
        self.queued = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def active(self) -> int:
        return self.size - self._free.qsize()

    async def acquire(self) -> SlotT:
        self._loop = asyncio.get_running_loop()
        if not self._free.empty() and self.queued == 0:
            return self._free.get_nowait()
        if self.queued >= self.max_queue:
            raise Overloaded(
                f"Model '{self.name}' is busy: all {self.size} slots are in use and "
                f"{self.queued} requests are already waiting. Retry shortly.",
                retry_after=max(1.0, min(self.queue_timeout, 5.0)),
            )
        self.queued += 1
        try:
            return await asyncio.wait_for(self._free.get(), self.queue_timeout)
        except TimeoutError:
            raise Unavailable(
                f"Model '{self.name}' did not free a slot within {self.queue_timeout:g} s; "
                "the server is overloaded, retry later.", retry_after=max(1.0, min(self.queue_timeout, 5.0))
            ) from None
        finally:
            self.queued -= 1

    def release(self, slot: SlotT) -> None:
        """Give a slot back; safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._free.put_nowait(slot)
        else:
            loop.call_soon_threadsafe(self._free.put_nowait, slot)
