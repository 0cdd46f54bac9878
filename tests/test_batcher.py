"""The server's batcher without a model: requests that arrive during a pass share the next one, a
starving request goes first, a failing pass fails only its requests, a full queue answers busy, and a
closed batcher finishes its pass then refuses work at once."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from pipeline.serve.batcher import Busy, Closed, EncoderBatcher, Job


def fake_batcher(rows: int = 64, tokens: int = 10_000, max_queued: int = 100, name: str = "encoder"):
    """Token ids = word lengths; a vector = (sum of ids, count): each row's vector says which text it is."""
    passes: list[list[list[int]]] = []
    gate = threading.Event()
    gate.set()

    def forward(token_ids: list[list[int]]) -> np.ndarray:
        gate.wait(timeout=10)
        passes.append(token_ids)
        if any(666 in ids for ids in token_ids):
            raise RuntimeError("model broke")
        return np.array([[sum(ids), len(ids)] for ids in token_ids], dtype=np.float32)

    def tokenize(texts: list[str]) -> list[list[int]]:
        return [[666] if t == "boom" else [len(w) for w in t.split()] for t in texts]

    batcher = EncoderBatcher(tokenize, forward, lambda jobs: None, rows, tokens, 0.0, max_queued, name)
    return batcher, passes, gate


def expected(texts: list[str]) -> list[list[float]]:
    return [[float(sum(len(w) for w in t.split())), float(len(t.split()))] for t in texts]


def test_requests_that_arrive_during_a_pass_share_the_next_one_shortest_first():
    batcher, passes, gate = fake_batcher(rows=3)
    texts = [["uno"], ["a b c d e f", "dos tres"], ["cuatro cinco seis siete ocho"], ["x y"]]

    async def scenario() -> list[Job]:
        gate.clear()  # the first pass holds the worker while the others arrive
        first = asyncio.ensure_future(batcher.encode(Job(texts[0])))
        await asyncio.sleep(0.2)
        rest = [asyncio.ensure_future(batcher.encode(Job(t))) for t in texts[1:]]
        await asyncio.sleep(0.2)
        gate.set()
        return await asyncio.gather(first, *rest)

    jobs = asyncio.run(scenario())
    for job, sent in zip(jobs, texts, strict=True):
        assert job.vectors.tolist() == expected(sent)
    assert [len(p) for p in passes] == [1, 3, 1]  # 4 waiting texts: the 3 shortest, then the longest
    assert sorted(len(ids) for ids in passes[1]) == [2, 2, 5] and batcher.stats.passes == 3
    batcher.close()


def test_a_request_its_client_abandons_does_not_stop_the_worker():
    batcher, passes, gate = fake_batcher()

    async def scenario() -> None:
        gate.clear()
        first = asyncio.ensure_future(batcher.encode(Job(["uno dos"])))
        await asyncio.sleep(0.1)
        abandoned = asyncio.ensure_future(batcher.encode(Job(["tres"])))
        await asyncio.sleep(0.1)
        abandoned.cancel()  # its client went away while it waited
        await asyncio.sleep(0.05)
        gate.set()
        assert (await first).vectors.tolist() == expected(["uno dos"])
        assert (await batcher.encode(Job(["cuatro"]))).vectors.tolist() == expected(["cuatro"])

    asyncio.run(scenario())
    assert [[4]] not in passes and batcher.alive  # "tres" (ids [4]) never ran
    batcher.close()


def test_a_request_that_waited_too_long_goes_first_whatever_its_length(monkeypatch):
    import pipeline.serve.batcher

    monkeypatch.setattr(pipeline.serve.batcher, "STARVING_S", 0.0)
    batcher, passes, gate = fake_batcher(rows=1)

    async def scenario() -> None:
        gate.clear()
        jobs = [asyncio.ensure_future(batcher.encode(Job([t]))) for t in ("a", "uno dos tres cuatro", "b c")]
        await asyncio.sleep(0.2)
        gate.set()
        await asyncio.gather(*jobs)

    asyncio.run(scenario())
    assert [len(p[0]) for p in passes] == [1, 4, 2]  # in arrival order, not shortest first
    batcher.close()


def test_a_failing_pass_fails_its_requests_only_and_a_full_queue_answers_busy():
    batcher, _, gate = fake_batcher(rows=1, max_queued=3)

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="model broke"):
            await batcher.encode(Job(["boom"]))
        gate.clear()
        waiting = asyncio.ensure_future(batcher.encode(Job(["a b", "c"])))
        await asyncio.sleep(0.1)
        with pytest.raises(Busy):
            await batcher.encode(Job(["d", "e"]))  # 2 waiting + 2 > 3
        gate.set()
        assert (await waiting).vectors.tolist() == expected(["a b", "c"])
        assert (await batcher.encode(Job(["hola"]))).vectors.tolist() == expected(["hola"])

    asyncio.run(scenario())
    batcher.close()


def test_a_closed_batcher_finishes_its_pass_then_refuses_work_at_once_with_its_thread_gone():
    batcher, _, gate = fake_batcher(rows=1, name="encoder-closing")
    closing = threading.Thread(target=batcher.close)

    async def scenario() -> Job:
        gate.clear()
        in_flight = asyncio.ensure_future(batcher.encode(Job(["uno dos"])))
        await asyncio.sleep(0.1)  # its pass has started and waits on the gate
        closing.start()
        await asyncio.sleep(0.1)
        assert batcher.alive and closing.is_alive()  # close waits for the pass in flight
        gate.set()
        return await asyncio.wait_for(in_flight, 5)

    assert asyncio.run(scenario()).vectors.tolist() == expected(["uno dos"])
    closing.join(5)
    assert not closing.is_alive() and not batcher.alive
    assert "encoder-closing" not in {thread.name for thread in threading.enumerate()}

    async def after_close() -> None:
        with pytest.raises(Closed, match="stopped"):  # at once: no worker would ever answer it
            await asyncio.wait_for(batcher.encode(Job(["tres"])), 2)
        with pytest.raises(Closed):
            await asyncio.wait_for(batcher.call(lambda: 1), 2)

    asyncio.run(after_close())
    assert issubclass(Closed, Busy)  # the app answers it 503, as a busy server
