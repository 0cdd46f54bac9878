"""Micro-batching: requests that arrive while the encoder is busy, or within a short wait of the first one,
run as one batch, up to a token budget, in one worker thread. Throughput then grows with concurrency
instead of queueing one forward pass per request, and the event loop never runs the model.

The worker thread is the only place the model (and the index) run, so two requests never compete for
the CPU's cores with two forward passes at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Busy(Exception):
    """More work is queued than the server accepts; the client should retry later (HTTP 503)."""


@dataclass
class _Pending(Generic[T]):
    item: T
    cost: int
    future: asyncio.Future = field(repr=False)


@dataclass
class BatcherStats:
    batches: int = 0
    items: int = 0
    largest_batch: int = 0
    busy_s: float = 0.0  # time the worker spent processing batches

    def to_dict(self) -> dict[str, float]:
        mean = self.items / self.batches if self.batches else 0.0
        return {"batches": self.batches, "items": self.items, "mean_batch": round(mean, 2),
                "largest_batch": self.largest_batch, "busy_s": round(self.busy_s, 3)}  # fmt: skip


class MicroBatcher(Generic[T, R]):
    """``await submit(item, cost)`` -> ``process([...items])[i]``, with concurrent items processed together.

    ``cost``: an item's share of the ``budget`` (tokens); a batch takes queued items in arrival order until
    the next would pass the budget (always at least one). ``wait_s``: how long a batch that is not full
    waits for more. ``max_queued``: cost waiting beyond which ``submit`` raises ``Busy`` at once."""

    def __init__(
        self,
        process: Callable[[list[T]], list[R]],
        budget: int,
        wait_s: float = 0.001,
        max_queued: int = 1 << 30,
        name: str = "encoder",
    ) -> None:
        self.process, self.budget, self.wait_s, self.max_queued = process, budget, wait_s, max_queued
        self.stats = BatcherStats()
        self._queue: deque[_Pending[T]] = deque()
        self._queued_cost = 0
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def submit(self, item: T, cost: int) -> R:
        if self._queue and self._queued_cost + cost > self.max_queued:
            raise Busy(f"the server has {self._queued_cost} units of work queued; retry shortly")
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._wakeup = asyncio.Event()  # (re)started in this loop: a test client may bring its own
            self._worker = loop.create_task(self._run())
        pending = _Pending(item, cost, loop.create_future())
        self._queue.append(pending)
        self._queued_cost += cost
        assert self._wakeup is not None
        self._wakeup.set()
        return await pending.future

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function`` in the worker thread, between batches (index look-ups that must not block)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _take_batch(self) -> list[_Pending[T]]:
        batch: list[_Pending[T]] = []
        cost = 0
        while self._queue and (not batch or cost + self._queue[0].cost <= self.budget):
            pending = self._queue.popleft()
            self._queued_cost -= pending.cost
            if pending.future.done():  # its client went away
                continue
            batch.append(pending)
            cost += pending.cost
        return batch

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                if self.wait_s > 0 and self._queued_cost < self.budget:
                    await asyncio.sleep(self.wait_s)  # let concurrent requests join this batch
                batch = self._take_batch()
                if not batch:
                    continue
                self.stats.batches += 1
                self.stats.items += len(batch)
                self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
                started = time.perf_counter()
                try:
                    results = await loop.run_in_executor(
                        self._executor, self.process, [p.item for p in batch]
                    )
                except Exception as error:  # every request of the batch hears of it; the worker goes on
                    for pending in batch:
                        if not pending.future.done():
                            pending.future.set_exception(error)
                    continue
                finally:
                    self.stats.busy_s += time.perf_counter() - started
                for pending, result in zip(batch, results, strict=True):
                    if not pending.future.done():
                        pending.future.set_result(result)

    async def aclose(self) -> None:
        if self._worker is not None and self._worker.get_loop() is asyncio.get_running_loop():
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)
