"""The HTTP API: answers equal brute force and the stored embeddings, concurrent requests share encoder
batches, and every bad request gets a 4xx JSON message while the server keeps serving."""

from __future__ import annotations

import asyncio
import base64
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from pipeline import Workspace, embed_texts
from pipeline.core.settings import ServeSettings
from pipeline.serve.app import create_app
from pipeline.serve.batcher import Busy, EncoderBatcher, Job
from pipeline.serve.service import Service

CAPS = {"max_k": 5, "max_texts": 4, "max_text_chars": 60, "max_row_ids": 3}


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model):
    from tests.conftest import SAMPLE_ROWS, write_csv

    root = tmp_path_factory.mktemp("serve")
    ws = Workspace(root / "w")
    ws.ingest([write_csv(root / "tweets.csv", SAMPLE_ROWS)])
    for pooling in ("mean", "cls"):
        ws.embed(model=str(tiny_model), pooling=pooling, prefix="hola ", progress=False)
    service = Service.load(ws.workdir.root, ServeSettings(batch_wait_ms=20, **CAPS))
    return ws, service, str(tiny_model)


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served[1])) as client:
        yield client


def brute_force(ws, model, pooling, query, k, keep=lambda row: True):
    stored = ws.embeddings(model=model, pooling=pooling)
    vector = embed_texts([query], model=model, pooling=pooling, prefix="hola ")[0]
    corpus = ws.corpus.set_index("row_id")
    scores = {int(r): float(v @ vector) for r, v in zip(stored.row_ids, stored.vectors, strict=True)}
    ranked = sorted((r for r in scores if keep(corpus.loc[r])), key=lambda r: -scores[r])[:k]
    return ranked, [scores[r] for r in ranked]


def test_search_equals_brute_force_for_each_query_and_run(served, client):
    ws, _, model = served
    for pooling in ("mean", "cls"):
        queries = ["me gusta la playa", "te quiero amor"]
        body = client.post("/search", json={"query": queries, "k": 3, "pooling": pooling}).json()
        assert body["pooling"] == pooling and len(body["results"]) == 2
        for query, hits in zip(queries, body["results"], strict=True):
            rows, scores = brute_force(ws, model, pooling, query, 3)
            assert [h["row_id"] for h in hits] == rows
            np.testing.assert_allclose([h["score"] for h in hits], scores, atol=1e-5)
            assert [h["rank"] for h in hits] == [1, 2, 3]
            assert {"id", "label", "text"} <= set(hits[0])
    one = client.post("/search", json={"query": "gol", "k": 2}).json()
    assert len(one["results"]) == 1 and len(one["results"][0]) == 2  # a string: a list of one list


def test_a_filter_matching_no_row_answers_an_empty_list(client):
    body = client.post("/search", json={"query": ["playa", "gol"], "k": 3, "filter": {"label": "nope"}})
    assert body.status_code == 200 and body.json()["results"] == [[], []]


def test_broad_and_narrow_filters_give_the_same_hits(served, monkeypatch):
    import pipeline.search.searcher

    _, service, _ = served
    searcher = service.pick(None, "mean").searcher
    allowed = searcher.rows.allowed("🔥", None)
    vectors = searcher.encoder.encode(["playa", "gol"]).vectors
    narrow = searcher.nearest(vectors, 2, allowed)  # few rows: scored exactly on them
    monkeypatch.setattr(pipeline.search.searcher, "SUBSET_EXACT", 0)
    broad = searcher.nearest(vectors, 2, allowed)  # over-fetching from the index
    assert [[h["row_id"] for h in q] for q in narrow] == [[h["row_id"] for h in q] for q in broad]
    np.testing.assert_allclose(
        [h["score"] for q in narrow for h in q], [h["score"] for q in broad for h in q]
    )


def test_a_chunked_body_over_the_cap_gets_413(client):
    def chunks():
        for _ in range(100):
            yield b"x" * 100_000

    response = client.post("/search", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "over" in response.json()["error"]["message"]
    assert client.post("/search", json={"query": "hola", "k": 1}).status_code == 200


def test_a_filter_returns_only_matching_rows_best_first(served, client):
    ws, _, model = served
    body = client.post(
        "/search", json={"query": "playa", "k": 5, "pooling": "mean", "filter": {"label": "🔥"}}
    ).json()
    rows, _ = brute_force(ws, model, "mean", "playa", 5, keep=lambda row: row["label"] == "🔥")
    assert [h["row_id"] for h in body["results"][0]] == rows and len(rows) == 3
    test_only = client.post(
        "/search", json={"query": "playa", "k": 5, "filter": {"split": "test"}, "pooling": "mean"}
    ).json()
    assert {h["id"] for h in test_only["results"][0]} == {"a5", "a6", "a7"}


def test_similar_leaves_the_row_out_and_echoes_it(served, client):
    body = client.get("/similar/1?k=5&pooling=mean").json()
    assert body["row"]["row_id"] == 1 and body["row"]["text"] == "me gusta la playa y el sol"
    hits = body["results"][0]
    assert len(hits) == 5 and 1 not in [h["row_id"] for h in hits]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_embeddings_equal_what_embed_stored(served, client):
    ws, _, model = served
    corpus = ws.corpus
    texts = corpus["text"].tolist()[:4]
    stored = ws.embeddings(model=model, pooling="mean")
    by_row = dict(zip(stored.row_ids.tolist(), stored.vectors, strict=True))
    expected = np.stack([by_row[r] for r in corpus["row_id"][:4]])
    body = client.post("/v1/embeddings", json={"input": texts, "pooling": "mean"}).json()
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert body["object"] == "list" and [d["index"] for d in body["data"]] == [0, 1, 2, 3]
    assert (got * expected).sum(axis=1).min() >= 0.999999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 4
    packed = client.post(
        "/v1/embeddings", json={"input": texts[0], "encoding_format": "base64", "pooling": "mean"}
    ).json()
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, got[0], atol=1e-7)


def test_items_and_info_state_rows_runs_and_caps(served, client):
    items = client.get("/items?row_ids=2,0").json()["items"]
    assert [i["row_id"] for i in items] == [2, 0] and items[1]["id"] == "a1" and items[1]["split"] == "train"
    info = client.get("/info").json()
    assert [(r["pooling"], r["rows"], r["index_kind"]) for r in info["runs"]] == [
        ("mean", 8, "exact"),  # the default run of requests that name none: mean pooling first
        ("cls", 8, "exact"),
    ]
    assert {k: info["limits"][k] for k in CAPS} == CAPS and info["runs"][0]["prefix"] == "hola "
    assert client.get("/health").json() == {"status": "ok"}
    assert "<canvas" in client.get("/").text and client.get("/docs").status_code == 200


def test_concurrent_requests_share_encoder_batches_and_get_their_own_answers(served, client):
    _, service, _ = served
    queries = ["hola que tal", "playa sol", "gato perro", "triste lunes", "gol fiesta", "jaja risa"] * 2
    ask = [{"query": q, "k": 3, "pooling": "mean"} for q in queries]
    alone = [client.post("/search", json=one).json()["results"][0] for one in ask]
    stats = service.pick(None, "mean").batcher.stats
    before = (stats.passes, stats.rows)

    async def together() -> list[dict]:
        transport = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            requests = [http.post("/search", json=one) for one in ask]
            return [r.json()["results"][0] for r in await asyncio.gather(*requests)]

    assert asyncio.run(together()) == alone
    passes, rows = stats.passes - before[0], stats.rows - before[1]
    assert rows == len(queries) and passes < rows / 2  # gathered, not one forward pass each


BAD_REQUESTS = [
    ("post", "/search", b'{"query": "hola", "k": ', 422, "not valid JSON"),
    ("post", "/search", {"query": ""}, 422, "empty"),
    ("post", "/search", {"query": ["hola", "   "]}, 422, "text 1 is empty"),
    ("post", "/search", {"query": []}, 422, "empty list"),
    ("post", "/search", {"query": "hola", "k": 0}, 422, "between 1 and 5"),
    ("post", "/search", {"query": "hola", "k": 6}, 422, "between 1 and 5"),
    ("post", "/search", {"query": "hola", "k": "3"}, 422, "k"),
    ("post", "/search", {"query": 42}, 422, "query"),
    ("post", "/search", {"querry": "hola"}, 422, "querry"),
    ("post", "/search", {"query": ["a"] * 5}, 413, "at most 4"),
    ("post", "/search", {"query": "x" * 61}, 413, "at most 60"),
    ("post", "/search", {"query": "hola", "model": "nope"}, 404, "served are"),
    ("post", "/search", {"query": "hola", "filter": {"colour": "red"}}, 422, "colour"),
    ("post", "/search", [1, 2], 422, "body"),
    ("post", "/v1/embeddings", {"input": ""}, 422, "empty"),
    ("post", "/v1/embeddings", {"input": ["a"] * 5}, 413, "at most 4"),
    ("post", "/v1/embeddings", {"input": "a", "encoding_format": "int8"}, 422, "encoding_format"),
    ("post", "/v1/embeddings", b"x" * 2_000_000, 413, "over"),
    ("get", "/similar/999", None, 404, "No row 999"),
    ("get", "/similar/-1", None, 404, "No row -1"),
    ("get", "/similar/abc", None, 422, "row_id"),
    ("get", "/similar/1?k=0", None, 422, "between 1 and 5"),
    ("get", "/items?row_ids=1,x", None, 422, "whole numbers"),
    ("get", "/items?row_ids=1,2,3,4", None, 413, "at most 3"),
    ("get", "/items?row_ids=99", None, 404, "No rows [99]"),
    ("get", "/items?row_ids=100000000000000000000000000000", None, 422, "whole numbers"),
    ("get", "/items?row_ids=²", None, 422, "whole numbers"),
    ("get", "/similar/100000000000000000000000000000", None, 404, "No row"),
    ("post", "/search", {"query": "hola", "model": "a" * 300}, 404, "served are"),
    ("post", "/search", {"query": "hola", "model": "~nouser/x"}, 404, "served are"),
    ("get", "/items", None, 422, "row_ids"),
    ("get", "/nowhere", None, 404, "/docs"),
    ("get", "/search", None, 405, "/docs"),
]


@pytest.mark.parametrize(("method", "path", "payload", "status", "says"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_that_says_what_to_fix_and_the_server_keeps_serving(
    client, method, path, payload, status, says
):
    if isinstance(payload, bytes):
        response = client.post(path, content=payload, headers={"Content-Type": "application/json"})
    elif method == "post":
        response = client.post(path, json=payload)
    else:
        response = client.get(path)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]
    assert client.post("/search", json={"query": "hola", "k": 1}).status_code == 200


def fake_batcher(rows: int = 64, tokens: int = 10_000, max_queued: int = 100):
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

    batcher = EncoderBatcher(tokenize, forward, lambda jobs: None, rows, tokens, 0.0, max_queued)
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
    assert [[4]] not in passes and batcher._thread.is_alive()  # "tres" (ids [4]) never ran
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


def test_a_taken_port_is_a_clear_error_before_anything_loads():
    import socket

    from pipeline.core.errors import EncajesError
    from pipeline.serve.server import bind

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    with pytest.raises(EncajesError, match="pick another --port"):
        bind("127.0.0.1", port)
    taken.close()


def test_a_folder_model_picked_by_name_is_served(served):
    from pipeline.serve.service import open_runs

    ws, _, model = served
    (searcher,) = open_runs(ws.workdir.root, [model], ["cls"])  # its run folder name is a squashed path
    assert (searcher.run.model, searcher.run.pooling) == (str(Path(model).resolve()), "cls")


def test_serve_help_names_the_routes():
    from click.testing import CliRunner

    from cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for words in ("/v1/embeddings", "--max-k", "--batch-wait-ms", "127.0.0.1"):
        assert words in result.output
