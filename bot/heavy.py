"""CPU-bound work besides generation: its own threads and a bounded queue.

Drawing a /neuron picture, finding a model's showcase cell and scoring post candidates each keep a
core busy for a while. In asyncio's default thread pool they would take the threads that every
database call waits for (`Database.run`), so a crowd of /neuron requests would stall everyone's
plain completions. Here they get `workers` threads of their own, and at most `queue_size` more
wait; past that `run` raises Busy at once and the handler says so.

    heavy = HeavyWork(workers=1, queue_size=8)
    png = await heavy.run(draw, generator, text)            # Busy when full
    scores = await heavy.run(score, texts, wait=True)        # background work waits its turn
    heavy.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

T = TypeVar("T")


class Busy(Exception):
    """Heavy work is queued up to its limit: try again shortly."""


class HeavyWork:
    def __init__(self, workers: int = 1, queue_size: int = 8):
        self.workers, self.queue_size = workers, queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="heavy")
        self._taken = 0  # jobs running or waiting for a thread
        self._freed = asyncio.Condition()

    @property
    def pending(self) -> int:
        return self._taken

    @property
    def full(self) -> bool:
        """Whether `run` would raise Busy now."""
        return self._taken >= self.workers + self.queue_size

    async def run(self, fn: Callable[..., T], *args, wait: bool = False) -> T:
        """fn(*args) on a heavy thread. Full: raise Busy, or with `wait` wait for room."""
        limit = self.workers + self.queue_size
        if self.full:
            if not wait:
                raise Busy
            async with self._freed:
                await self._freed.wait_for(lambda: self._taken < limit)
        loop = asyncio.get_running_loop()
        try:
            job = self._executor.submit(partial(fn, *args))
        except RuntimeError:  # closed: the service is stopping
            raise Busy from None
        self._taken += 1

        def done(_) -> None:
            # Freed when the thread is done, not when the caller stops waiting (a cancelled
            # handler's drawing still holds its thread).
            try:
                loop.call_soon_threadsafe(self._release)
            except RuntimeError:  # the event loop has closed
                pass

        job.add_done_callback(done)
        return await asyncio.wrap_future(job)

    def _release(self) -> None:
        self._taken -= 1
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._freed:
            self._freed.notify()

    def close(self) -> None:
        """Stop taking work; what is queued is dropped, what runs finishes on its own."""
        self._executor.shutdown(wait=False, cancel_futures=True)
