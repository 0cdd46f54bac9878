"""What clients of ``encajes serve`` meet: OpenAI's own Python client against a running server (2,000
inputs in one call, float and base64, vectors equal to the stored ones; token ids and shortened vectors
refused with a message that says what to do), the API key, /health once a worker has died, and /metrics
in Prometheus' format."""

from __future__ import annotations

import base64
import threading
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from pipeline import Workspace
from pipeline.core.serve_settings import ServeSettings
from pipeline.serve.app import create_app
from pipeline.serve.server import bind
from pipeline.serve.service import Service

openai = pytest.importorskip("openai")

KEY = "s3cret-key"
ROWS = 2000


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model):
    """A corpus of 2,000 texts of 1 to 40 words (so the batcher cuts one request into many passes of
    mixed lengths), embedded with the tiny model."""
    from tests.conftest import WORDS, write_csv

    rng = np.random.default_rng(0)
    rows = [
        (f"t{i}", " ".join(rng.choice(WORDS, size=int(rng.integers(1, 41)))), "ab"[i % 2], "train")
        for i in range(ROWS)
    ]
    root = tmp_path_factory.mktemp("clients")
    ws = Workspace(root / "w")
    ws.ingest([write_csv(root / "tweets.csv", rows)])
    ws.embed(model=str(tiny_model), pooling="mean", progress=False)
    return ws, str(tiny_model)


@pytest.fixture(scope="module")
def url(workspace):
    """The app served by uvicorn in a thread, on a free loopback port, with an API key."""
    import uvicorn

    ws, _ = workspace
    service = Service.load(ws.workdir.root, ServeSettings(api_key=KEY))
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(30)


def stored(ws, model) -> tuple[list[str], np.ndarray]:
    """The corpus' texts and the vectors `encajes embed` stored for them, in corpus order."""
    corpus, run = ws.corpus, ws.embeddings(model=model, pooling="mean")
    by_row = dict(zip(run.row_ids.tolist(), run.vectors, strict=True))
    return corpus["text"].tolist(), np.stack([by_row[r] for r in corpus["row_id"]])


def vector(embedding: list[float] | str) -> np.ndarray:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.asarray(embedding, dtype=np.float32)


def test_openai_client_embeds_2000_inputs_in_one_call_as_stored(workspace, url):
    ws, model = workspace
    texts, expected = stored(ws, model)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=120)
    for encoding in ("base64", "float"):  # base64 asked for explicitly: the client hands it on as is
        answer = client.embeddings.create(input=texts, model=model, encoding_format=encoding)
        got = np.array([vector(item.embedding) for item in answer.data], dtype=np.float32)
        assert [item.index for item in answer.data] == list(range(ROWS))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-5)
    default = client.embeddings.create(input=texts[:3], model=model)  # asks for base64, decodes it
    assert isinstance(default.data[0].embedding, list)
    np.testing.assert_allclose(np.array([d.embedding for d in default.data]), expected[:3], atol=1e-5)
    dim = expected.shape[1]
    same = client.embeddings.create(input=texts[:2], model=model, dimensions=dim)
    assert len(same.data[0].embedding) == dim


def test_token_ids_and_shortened_vectors_are_refused_with_what_to_do(workspace, url):
    _, model = workspace
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    for ids in ([101, 7592, 102], [[101, 7592], [101, 102]]):
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            client.embeddings.create(input=ids, model=model)
        message = refused.value.body["message"]
        assert "another tokenizer" in message and "send the texts" in message
        assert "check_embedding_ctx_length=False" in message
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.embeddings.create(input=["hola"], model=model, dimensions=8)
    assert "not trained for shortened vectors; leave dimensions out" in refused.value.body["message"]


def test_every_route_but_health_needs_the_key(workspace, url):
    _, model = workspace
    for path in ("/info", "/v1/models", "/metrics", "/items?row_ids=0", "/docs"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            answer = httpx.get(url + path, headers=headers)
            assert answer.status_code == 401 and "Authorization: Bearer" in answer.json()["error"]["message"]
        assert httpx.get(url + path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert httpx.post(f"{url}/search", json={"query": "hola"}).status_code == 401
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="nope", max_retries=0).embeddings.create(
            input="hola", model=model
        )


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value in Prometheus' text format (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_count_requests_errors_latency_and_passes_by_route(workspace, url):
    auth = {"Authorization": f"Bearer {KEY}"}
    scrape = lambda: httpx.get(f"{url}/metrics", headers=auth).text  # noqa: E731
    before = scrape()
    for row in (1, 2, 3):
        assert httpx.get(f"{url}/similar/{row}?k=2", headers=auth).status_code == 200
    assert httpx.get(f"{url}/similar/999999", headers=auth).status_code == 404
    texts = [f"hola {'que tal ' * n}" for n in range(70)]  # more than one pass of 64 texts
    assert httpx.post(f"{url}/v1/embeddings", json={"input": texts}, headers=auth).status_code == 200
    after = scrape()
    similar = {"method": "GET", "route": "/similar/{row_id}"}
    grew = lambda name, **labels: metric(after, name, **labels) - metric(before, name, **labels)  # noqa: E731
    assert grew("encajes_requests_total", **similar) == 4
    assert grew("encajes_errors_total", **similar, status="404") == 1
    assert grew("encajes_request_seconds_count", **similar) == 4
    assert grew("encajes_request_seconds_count", method="POST", route="/v1/embeddings") == 1
    assert not any("/similar/1" in line for line in after.splitlines() if "route=" in line)
    assert grew("encajes_texts_per_pass_sum") == 70 and grew("encajes_texts_per_pass_count") >= 2
    assert "encajes_queued_texts" in after and metric(after, "encajes_queued_texts") == 0


def test_health_answers_503_once_a_worker_has_died(workspace):
    ws, _ = workspace
    service = Service.load(ws.workdir.root, ServeSettings())
    with TestClient(create_app(service)) as client:
        assert client.get("/health").status_code == 200
        service.runs[0].batcher.close()  # the worker thread ends
        answer = client.get("/health")
        assert answer.status_code == 503
        body = answer.json()
        assert body["status"] == "unavailable" and "restart" in body["why"]
