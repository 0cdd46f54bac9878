"""The HTTP API: answers equal brute force and the stored embeddings, concurrent requests share encoder
batches, and every bad request gets a 4xx JSON message while the server keeps serving."""

from __future__ import annotations

import asyncio
import base64

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from pipeline import Workspace, embed_texts
from pipeline.serve.app import create_app
from pipeline.serve.batcher import Busy, MicroBatcher
from pipeline.serve.service import Service
from pipeline.settings import ServeSettings

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
        ("cls", 8, "exact"),
        ("mean", 8, "exact"),
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
    before = (stats.batches, stats.items)

    async def together() -> list[dict]:
        transport = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            requests = [http.post("/search", json=one) for one in ask]
            return [r.json()["results"][0] for r in await asyncio.gather(*requests)]

    assert asyncio.run(together()) == alone
    batches, items = stats.batches - before[0], stats.items - before[1]
    assert items == len(queries) and batches < items / 2  # gathered, not one forward pass each


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


def test_a_failing_batch_fails_its_requests_only_and_a_full_queue_answers_busy():
    calls: list[list[str]] = []

    def process(items: list[str]) -> list[str]:
        calls.append(items)
        if "boom" in items:
            raise RuntimeError("model broke")
        return [item.upper() for item in items]

    async def scenario() -> None:
        batcher: MicroBatcher[str, str] = MicroBatcher(process, budget=10, wait_s=0.01, max_queued=3)
        with pytest.raises(RuntimeError, match="model broke"):
            await batcher.submit("boom", 1)
        first = asyncio.ensure_future(batcher.submit("a", 2))
        await asyncio.sleep(0)
        with pytest.raises(Busy):
            await batcher.submit("b", 2)  # 2 queued + 2 > 3
        assert await first == "A"
        assert await asyncio.gather(batcher.submit("c", 1), batcher.submit("d", 1)) == ["C", "D"]
        await batcher.aclose()

    asyncio.run(scenario())
    assert calls[-1] == ["c", "d"]  # concurrent submissions shared one call


def test_a_taken_port_is_a_clear_error_before_anything_loads():
    import socket

    from pipeline.errors import EncajesError
    from pipeline.serve.server import bind

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    with pytest.raises(EncajesError, match="pick another --port"):
        bind("127.0.0.1", port)
    taken.close()


def test_serve_help_names_the_routes():
    from click.testing import CliRunner

    from cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for words in ("/v1/embeddings", "--max-k", "--batch-wait-ms", "127.0.0.1"):
        assert words in result.output
