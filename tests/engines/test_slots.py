"""The slot pool on its own: fairness, 429 when the queue is full, 503 after the queue timeout."""

from __future__ import annotations

import asyncio
import threading

import pytest

from engines.errors import Overloaded, Unavailable
from engines.slots import SlotPool


def test_slots_queue_and_release_from_another_thread():
    async def main():
        pool = SlotPool(["a", "b"], max_queue=2, queue_timeout=5, name="m")
        first, second = await pool.acquire(), await pool.acquire()
        assert {first, second} == {"a", "b"} and pool.active == 2
        waiters = [asyncio.create_task(pool.acquire()) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert pool.queued == 2
        with pytest.raises(Overloaded) as full:
            await pool.acquire()
        assert full.value.retry_after >= 1
        threading.Thread(target=pool.release, args=(first,)).start()
        assert await waiters[0] == first  # first come, first served
        pool.release(second)
        assert await waiters[1] == second and pool.queued == 0

    asyncio.run(main())


def test_queue_timeout_and_cancelled_waiters_leave_the_queue():
    async def main():
        pool = SlotPool(["only"], max_queue=1, queue_timeout=0.2, name="m")
        await pool.acquire()
        with pytest.raises(Unavailable, match="0.2 s"):
            await pool.acquire()
        assert pool.queued == 0
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.sleep(0.01)
        assert pool.queued == 0
        pool.release("only")
        assert await pool.acquire() == "only"  # the cancelled waiter did not swallow the slot

    asyncio.run(main())
