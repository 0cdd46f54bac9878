"""Continuous batching: one worker thread runs the model, one forward pass at a time, over the texts of
every request waiting, shortest first, up to a row and token budget per pass. A request that arrives
while a pass runs joins the next one, and the pool each pass is cut from holds every waiting text, so
padding stays low (a small pool pads more: docs/BENCHMARKS.md has the figures) and short
search queries are not stuck behind long texts. Throughput then grows with concurrency, and the event
loop never runs the model.

A served run's worker thread is the only place its model and index run, so two of its requests never
compete for the CPU's cores with two forward passes at once (several served runs do share the cores).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def settle(done: Future, result: Any = None, error: Exception | None = None) -> None:
    """Complete a running future once; one already completed (or cancelled) is left as it is."""
    if done.done():
        return
    try:
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)
    except InvalidStateError:  # cancelled by its waiter in between
        pass


STARVING_S = 5.0  # a request waiting longer than this goes first, whatever its texts' lengths


class Busy(Exception):
    """More work is queued than the server accepts; the client should retry later (HTTP 503)."""


class Closed(Busy):
    """The batcher was closed (the server is stopping): it takes no more work (HTTP 503)."""


@dataclass
class Job:
    """One request's texts; the worker fills ``token_ids``, ``vectors`` and (for searches) ``hits``."""

    texts: list[str]
    ask: Any = None  # a search's Ask (k, filter, folding): searched once encoded; None: vectors only
    token_ids: list[list[int]] = field(default_factory=list)
    vectors: np.ndarray | None = None
    hits: list[list[dict[str, Any]]] | None = None
    remaining: int = 0
    arrived: float = field(default_factory=time.perf_counter)
    done: Future = field(default_factory=Future, repr=False)

    @property
    def tokens(self) -> int:
        return sum(len(ids) for ids in self.token_ids)


@dataclass
class BatcherStats:
    requests: int = 0
    passes: int = 0
    rows: int = 0
    largest_pass: int = 0
    busy_s: float = 0.0  # time the worker spent encoding and searching

    def to_dict(self) -> dict[str, float]:
        mean = self.rows / self.passes if self.passes else 0.0
        return {"requests": self.requests, "forward_passes": self.passes, "texts": self.rows,
                "mean_texts_per_pass": round(mean, 2), "largest_pass": self.largest_pass,
                "busy_s": round(self.busy_s, 3)}  # fmt: skip


class EncoderBatcher:
    """``await encode(job)``: ``job`` comes back with its vectors (and hits), encoded with whatever else
    was waiting. ``tokenize``: texts -> token ids; ``forward``: token ids -> unit vectors (one pass);
    ``finish``: the jobs a pass completed (searches them). A pass takes at most ``rows`` texts and
    ``tokens`` padded tokens; ``wait_s``: how long a pass that is not full waits for more texts, once
    requests have come concurrently (a lone client never waits); ``max_queued``: texts waiting beyond
    which a request gets ``Busy`` at once."""

    def __init__(
        self,
        tokenize: Callable[[list[str]], list[list[int]]],
        forward: Callable[[list[list[int]]], np.ndarray],
        finish: Callable[[list[Job]], None],
        rows: int,
        tokens: int,
        wait_s: float = 0.002,
        max_queued: int = 4096,
        name: str = "encoder",
    ) -> None:
        self.tokenize, self.forward, self.finish = tokenize, forward, finish
        self.rows, self.tokens, self.wait_s, self.max_queued = rows, tokens, wait_s, max_queued
        self.stats = BatcherStats()
        self.on_pass: Callable[[int], None] | None = None  # told each pass's texts (metrics)
        self._inbox: queue.SimpleQueue[Job | Callable[[], None] | None] = queue.SimpleQueue()
        self._queued = 0  # texts submitted and not yet finished
        self._pool: list[tuple[int, int, Job, int]] = []  # (length, order, job, row): a heap
        self._order = itertools.count()
        self._concurrent = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        """Texts submitted and not yet encoded."""
        return self._queued

    @property
    def alive(self) -> bool:
        """Whether the worker thread runs (False once ``close`` has returned)."""
        return self._thread.is_alive()

    async def encode(self, job: Job) -> Job:
        if not self.alive:
            raise Closed("the encoder has stopped")
        if self._queued and self._queued + len(job.texts) > self.max_queued:
            raise Busy(f"{self._queued} texts are waiting for the encoder; retry shortly")
        self._queued += len(job.texts)
        self.stats.requests += 1
        self._inbox.put(job)
        try:
            return await asyncio.wrap_future(job.done)
        finally:
            self._queued -= len(job.texts)

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function`` in the worker thread between passes (index look-ups that must not block)."""
        if not self.alive:
            raise Closed("the encoder has stopped")
        done: Future = Future()

        def run() -> None:
            if not done.set_running_or_notify_cancel():
                return
            try:
                done.set_result(function(*args))
            except Exception as error:
                done.set_exception(error)

        self._inbox.put(run)
        return await asyncio.wrap_future(done)

    def close(self) -> None:
        self._inbox.put(None)
        self._thread.join(timeout=30)

    # --- the worker thread ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                if not self._admit(block=not self._pool):
                    return
                if self._pool and len(self._pool) < self.rows and self._concurrent and self.wait_s > 0:
                    time.sleep(self.wait_s)  # others are asking too: let them join this pass
                    if not self._admit(block=False):
                        return
                if self._pool:
                    self._pass()
            except Exception as error:  # never let the worker die: fail what is in the pool, go on
                self._fail([entry[2] for entry in self._pool], error)

    def _admit(self, block: bool) -> bool:
        """Move requests from the inbox into the pool (tokenising them); False once closed."""
        admitted = 0
        while True:
            try:
                item = self._inbox.get(block=block)
            except queue.Empty:
                break
            block = False
            if item is None:
                return False
            if callable(item) and not isinstance(item, Job):
                item()
                continue
            if not item.done.set_running_or_notify_cancel():  # its client went away: skip it
                continue
            admitted += 1
            try:
                item.token_ids = self.tokenize(item.texts)
            except Exception as error:
                settle(item.done, error=error)
                continue
            item.remaining = len(item.texts)
            item.vectors = None
            for row, ids in enumerate(item.token_ids):
                heapq.heappush(self._pool, (len(ids), next(self._order), item, row))
        if admitted:
            self._concurrent = admitted > 1 or len({id(e[2]) for e in self._pool}) > 1
        return True

    def _pass(self) -> None:
        """One forward pass over the shortest waiting texts (or, once a request has waited over
        ``STARVING_S``, over its texts first), then finish the jobs it completed."""
        oldest = min((entry[2] for entry in self._pool), key=lambda job: job.arrived)
        if time.perf_counter() - oldest.arrived > STARVING_S:  # long texts are not left behind forever:
            # the pass starts at the oldest request's shortest text left (first among equals, being the
            # oldest) and goes on with texts at least as long, so it pads as little as any other pass
            start = min(entry[0] for entry in self._pool if entry[2] is oldest)
            candidates = heapq.nsmallest(self.rows, (entry for entry in self._pool if entry[0] >= start))
        else:
            candidates = heapq.nsmallest(self.rows, self._pool)
        taken = candidates[: self._fits(candidates)]
        gone = {entry[1] for entry in taken}
        self._pool = [entry for entry in self._pool if entry[1] not in gone]
        heapq.heapify(self._pool)
        started = time.perf_counter()
        try:
            vectors = self.forward([job.token_ids[row] for _, _, job, row in taken])
        except Exception as error:  # the requests of this pass hear of it; the others go on
            self._fail({id(job): job for _, _, job, _ in taken}.values(), error)
            return
        finished = []
        for (_, _, job, row), vector in zip(taken, vectors, strict=True):
            if job.vectors is None:
                job.vectors = np.empty((len(job.texts), len(vector)), dtype=np.float32)
            job.vectors[row] = vector
            job.remaining -= 1
            if job.remaining == 0:
                finished.append(job)
        try:
            self.finish([job for job in finished if job.ask is not None])
        except Exception as error:
            self._fail(finished, error)
            return
        finally:
            self.stats.passes += 1
            self.stats.rows += len(taken)
            self.stats.largest_pass = max(self.stats.largest_pass, len(taken))
            self.stats.busy_s += time.perf_counter() - started
            if self.on_pass is not None:
                self.on_pass(len(taken))
        for job in finished:
            settle(job.done, result=job)

    def _fits(self, entries: list[tuple[int, int, Job, int]]) -> int:
        """How many of these texts (shortest first) one pass takes: padded to the longest, within the
        token budget; always at least one."""
        count = 1
        while count < len(entries) and entries[count][0] * (count + 1) <= self.tokens:
            count += 1
        return count

    def _fail(self, jobs: Any, error: Exception) -> None:
        failed = {id(job) for job in jobs}
        self._pool = [entry for entry in self._pool if id(entry[2]) not in failed]
        heapq.heapify(self._pool)
        for job in {id(job): job for job in jobs}.values():
            settle(job.done, error=error)
