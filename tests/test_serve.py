"""The HTTP API: answers equal brute force and the stored embeddings, concurrent requests share encoder
batches, and every bad request gets a 4xx JSON message while the server keeps serving."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipeline import Workspace, embed_texts
from pipeline.core.serve_settings import ServeSettings
from pipeline.serve.app import create_app
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
    write_map(ws, str(tiny_model), "mean")  # the cls run has none
    service = Service.load(ws.workdir.root, ServeSettings(batch_wait_ms=20, **CAPS))
    return ws, service, str(tiny_model)


def write_map(ws, model, pooling):
    """A run's umap.parquet as ``encajes plot`` writes it (row_id, x, y, label), without UMAP's
    compilation: float coordinates with more digits than /map sends, rows not in row_id order."""
    from pipeline.artifacts.runs import find_run

    corpus = ws.corpus.sample(frac=1.0, random_state=1)
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "row_id": corpus["row_id"].to_numpy(),
            "x": rng.normal(0, 5, len(corpus)).astype(np.float32),
            "y": rng.normal(0, 5, len(corpus)).astype(np.float32),
            "label": corpus["label"].to_numpy(),
        }
    )
    frame.to_parquet(find_run(ws.workdir, model, pooling).paths.umap, index=False)


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
        body = client.post("/search", json={"query": queries, "k": 3, "pooling": pooling, "dedup": 0}).json()
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
        "/search",
        json={"query": "playa", "k": 5, "pooling": "mean", "filter": {"label": "🔥"}, "dedup": 0},
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
    ("post", "/search", {"query": "hola", "k": 2, "filter": {"colour": "red"}}, 422, "colour"),
    ("post", "/search", {"query": "hola", "k": 2, "filter": {"label": {"gte": 3}}}, 422, "ranges"),
    ("post", "/search", {"query": "hola", "k": 2, "filter": {"label": {"like": 3}}}, 422, "like"),
    ("post", "/search", {"vector": [0.1, 0.2], "k": 2}, 422, "numbers"),
    ("post", "/search", {"query": "hola", "vector": [0.1], "k": 2}, 422, "exactly one"),
    ("post", "/search", {"positive": [99999], "k": 2}, 404, "99999"),
    ("post", "/search", {"query": "hola", "k": 2, "dedup": 2}, 422, "dedup"),
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


def documented_routes(help_text: str) -> set[tuple[str, str]]:
    """(method, path) of each route ``serve --help`` names before its examples; a bare path is a GET."""
    about = help_text.split("Example")[0]
    found = re.findall(r"(?:\b(GET|POST)\s+)?(?<![\w:./-])(/[A-Za-z0-9_/]*)", about)
    return {(method or "GET", path.replace("ROW_ID", "{row_id}")) for method, path in found}


ROUTE_CALLS = {  # a request that each documented route must answer, and what its answer holds
    ("GET", "/"): ("/", None, lambda r: "<canvas" in r.text),
    ("POST", "/search"): ("/search", {"query": "playa", "k": 2}, lambda r: len(r.json()["results"][0]) == 2),
    ("GET", "/similar/{row_id}"): ("/similar/3?k=2", None, lambda r: r.json()["row"]["row_id"] == 3),
    ("POST", "/v1/embeddings"): ("/v1/embeddings", {"input": "hola"}, lambda r: len(r.json()["data"]) == 1),
    ("GET", "/v1/models"): (
        "/v1/models",
        None,
        lambda r: {m["object"] for m in r.json()["data"]} == {"model"},
    ),
    ("GET", "/items"): ("/items?row_ids=4", None, lambda r: r.json()["items"][0]["id"] == "a5"),
    ("GET", "/map"): ("/map", None, lambda r: len(r.json()["row_id"]) == 8),
    ("GET", "/info"): ("/info", None, lambda r: len(r.json()["runs"]) == 2),
    ("GET", "/health"): ("/health", None, lambda r: r.json() == {"status": "ok"}),
    ("GET", "/metrics"): ("/metrics", None, lambda r: "encajes_requests_total" in r.text),
    ("GET", "/docs"): ("/docs", None, lambda r: "swagger" in r.text.lower()),
}
FASTAPI_OWN = {"/openapi.json", "/redoc", "/docs/oauth2-redirect"}  # /docs is named in the help


def app_routes(routes) -> set[tuple[str, str]]:
    """(method, path) of every route, FastAPI's own pages aside; an included router (which newer FastAPI
    wraps, keeping it as ``original_router``) is walked into (ours is included without a prefix)."""
    found = set()
    for route in routes:
        if (included := getattr(route, "original_router", None)) is not None:
            found |= app_routes(included.routes)
        elif route.path not in FASTAPI_OWN:
            found |= {(method, route.path) for method in set(route.methods or ()) - {"HEAD"}}
    return found


def test_the_app_has_the_routes_serve_help_names_and_each_answers(client):
    from click.testing import CliRunner

    from cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    documented = documented_routes(result.output)
    assert documented == set(ROUTE_CALLS), "a route named in `serve --help` needs a request in ROUTE_CALLS"
    # a route added to the app is named in the help, and then needs a request above
    assert app_routes(client.app.routes) == documented
    for (method, _), (url, body, holds) in ROUTE_CALLS.items():
        response = client.request(method, url, json=body)
        assert response.status_code == 200 and holds(response), (method, url, response.text[:300])
    example = re.search(r"curl -s [\w.]+:\d+(/\S*) .*-d '(.*)'", result.output)  # the help's own example
    response = client.post(example.group(1), json=json.loads(example.group(2)))
    assert response.status_code == 200 and len(response.json()["results"][0]) == 5


def test_sigterm_stops_encajes_serve_cleanly(served):
    """The real command in its own process, on a free loopback port: it answers, then SIGTERM makes it
    finish and exit with status 0 within seconds (not killed by the signal, no traceback)."""
    import queue
    import signal
    import subprocess
    import sys

    ws, _, _ = served
    command = [sys.executable, "-m", "cli", "serve", "-w", str(ws.workdir.root), "--pooling", "mean"]
    server = subprocess.Popen(
        [*command, "--port", "0"], cwd=Path(__file__).resolve().parents[1], stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in server.stderr], daemon=True)
    reader.start()
    said: list[str] = []
    try:
        port, deadline = None, time.monotonic() + 90  # importing torch on a busy machine takes a while
        while port is None:
            try:
                said.append(lines.get(timeout=0.2))
            except queue.Empty:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"serve never said where it serves (exit status {server.poll()}): {said}")
                continue
            if found := re.search(r"serving on http://127\.0\.0\.1:(\d+)", said[-1]):
                port = int(found.group(1))
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/health", timeout=10).json() == {"status": "ok"}
        hits = httpx.post(f"{url}/search", json={"query": "playa", "k": 2}, timeout=30).json()["results"]
        assert len(hits[0]) == 2
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    reader.join(5)  # it has read the last lines once the process is gone
    while not lines.empty():
        said.append(lines.get())
    assert said[-1].strip() == "-> stopped" and not any("Traceback" in line for line in said), said
