# ruff: noqa: F811  (the fixtures imported from test_serve are parameters here)
"""The server's search page data and result shapes beyond plain search: the map it draws (positions,
labels, kept fields) and near-duplicates folded into the better hit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tests.test_serve import brute_force, client, served  # noqa: F401 (fixtures)


def test_map_serves_the_runs_umap_points_and_a_run_without_one_says_how_to_draw_it(served, client):
    from pipeline.artifacts.runs import find_run

    ws, service, model = served
    stored = pd.read_parquet(find_run(ws.workdir, model, "mean").paths.umap)
    expected = {r.row_id: (float(r.x), float(r.y), str(r.label)) for r in stored.itertuples()}

    def points(body: dict) -> dict:
        """row id -> (x, y, corpus label): labels come as codes into ``label_values``."""
        columns = [body["row_id"], body["x"], body["y"], body["label"]]
        assert len({len(column) for column in columns}) == 1  # one entry per point in each column
        labels = body["label_values"]
        return {r: (x, y, str(labels[code])) for r, x, y, code in zip(*columns, strict=True)}

    def assert_same(got: dict, want: dict) -> None:
        assert set(got) == set(want) and [got[r][2] for r in want] == [want[r][2] for r in want]
        np.testing.assert_allclose([got[r][:2] for r in want], [want[r][:2] for r in want], atol=5e-5, rtol=0)

    default = client.get("/map")  # the default run is the mean one
    assert default.status_code == 200
    assert_same(points(default.json()), expected)
    assert client.get("/map", params={"model": model, "pooling": "mean"}).json() == default.json()
    sample = points(json.loads(service.map_points(service.pick(None, "mean"), limit=3)))  # a sample
    assert len(sample) == 3 and list(sample) == sorted(sample)
    assert_same(sample, {r: expected[r] for r in sample})
    missing = client.get("/map", params={"pooling": "cls"})
    assert missing.status_code == 404 and "encajes plot" in missing.json()["error"]["message"]
    assert [(r["pooling"], r["has_map"]) for r in client.get("/info").json()["runs"]] == [
        ("mean", True),
        ("cls", False),
    ]


def test_near_duplicates_fold_into_the_better_hit_and_k_counts_distinct_hits(served, client):
    """Folding is greedy in score order: a row is a hit unless a better hit is within the threshold, and
    then it is listed in that hit's ``similar``; nothing is lost, only grouped."""
    ws, _, model = served
    stored = ws.embeddings(model=model, pooling="mean")
    vectors = dict(zip(stored.row_ids.tolist(), stored.vectors, strict=True))
    rows, _ = brute_force(ws, model, "mean", "playa", len(vectors))
    for threshold in (0.9, 0.99):
        body = client.post("/search", json={"query": "playa", "k": 5, "pooling": "mean", "dedup": threshold})
        hits = body.json()["results"][0]
        heads, expected = [], {}
        for row in rows:  # the fold, by hand
            near = [h for h in heads if float(vectors[h] @ vectors[row]) >= threshold]
            if near:
                expected[max(near, key=lambda h: float(vectors[h] @ vectors[row]))].append(row)
            elif len(heads) < 5:
                heads.append(row)
                expected[row] = []
        assert [h["row_id"] for h in hits] == heads  # every distinct row, at most k
        for hit in hits:  # folded rows among the candidates fetched (4 x k): a prefix of the full fold
            assert hit["similar"] == expected[hit["row_id"]][: len(hit["similar"])]
            assert all(float(vectors[hit["row_id"]] @ vectors[r]) >= threshold for r in hit["similar"])
    assert any(
        hit["similar"]
        for hit in client.post("/search", json={"query": "playa", "k": 5, "dedup": 0.9}).json()["results"][0]
    )


def test_vector_positive_offset_and_a_get_filter_ask_the_same_search(served, client):
    ws, _, model = served
    stored = ws.embeddings(model=model, pooling="mean")
    like = client.post("/search", json={"positive": [1], "k": 3, "dedup": 0}).json()["results"][0]
    similar = client.get("/similar/1?k=3&dedup=0").json()["results"][0]
    assert [h["row_id"] for h in like] == [h["row_id"] for h in similar] and 1 not in [
        h["row_id"] for h in like
    ]
    vector = (stored.vectors[list(stored.row_ids).index(1)] * 2.5).tolist()  # normalised by the server
    by_vector = client.post("/search", json={"vector": vector, "k": 1, "dedup": 0}).json()["results"][0]
    assert by_vector[0]["row_id"] == 1 and abs(by_vector[0]["score"] - 1) < 1e-5
    four = client.post("/search", json={"query": "playa", "k": 4, "dedup": 0}).json()["results"][0]
    page = client.post("/search", json={"query": "playa", "k": 2, "offset": 2, "dedup": 0}).json()["results"][
        0
    ]
    assert [(h["rank"], h["row_id"]) for h in page] == [(h["rank"], h["row_id"]) for h in four[2:]]
    tests = client.get("/similar/1", params={"k": 5, "filter": json.dumps({"split": "test"})}).json()
    corpus = ws.corpus.set_index("row_id")
    assert tests["results"][0] and all(
        corpus.loc[h["row_id"], "split"] == "test" for h in tests["results"][0]
    )
    bad = client.get("/similar/1", params={"filter": "{lang"})
    assert bad.status_code == 422 and "not valid JSON" in bad.json()["error"]["message"]
    assert client.get("/items?row_ids=1").json()["items"][0]["fields"] == {}  # this corpus keeps none
