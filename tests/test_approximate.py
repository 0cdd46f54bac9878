"""Index choice is a pure function of size and budget; approximate indexes report honest recall."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.approximate import bench_indexes, build_index, choose_index, clustered_vectors, recall_at_k
from pipeline.errors import EncajesError


def test_choice_follows_size_and_memory_budget():
    assert choose_index(50_000, 384).kind == "exact"
    assert choose_index(1_000_000, 384, memory_budget_bytes=4e9).kind == "hnsw"  # 1.5 GB fits
    squeezed = choose_index(10_000_000, 384, memory_budget_bytes=4e9)  # 15 GB does not
    assert squeezed.kind == "ivfpq" and "PQ48x8" in squeezed.factory and "exceeds" in squeezed.why
    assert choose_index(10, 8, "ivf").kind == "ivf"
    with pytest.raises(EncajesError, match="Unknown index kind"):
        choose_index(10, 8, "lsh")


def test_recall_is_counted_against_exact_search():
    import faiss

    vectors = clustered_vectors(3000, 32, seed=1)
    queries = clustered_vectors(200, 32, seed=2)
    exact = faiss.IndexFlatIP(32)
    exact.add(vectors)
    assert recall_at_k(exact, exact, queries, 10)["recall_at_k"] == 1.0
    hnsw = build_index(vectors, choose_index(3000, 32, "hnsw"))
    measured = recall_at_k(hnsw, exact, queries, 10)
    _, truth = exact.search(queries, 10)
    _, found = hnsw.search(queries, 10)
    by_hand = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert measured["recall_at_k"] == pytest.approx(by_hand) and measured["recall_at_k"] > 0.9


def test_bench_reports_every_kind():
    result = bench_indexes(5000, 32, queries=200)
    assert set(result["kinds"]) == {"exact", "hnsw", "ivf", "ivfpq"}
    assert result["kinds"]["exact"]["recall_at_k"] == 1.0
    assert result["kinds"]["ivfpq"]["bytes"] < result["kinds"]["exact"]["bytes"] / 4
    assert result["auto"]["kind"] == "exact"  # 5,000 rows


def test_index_stage_with_an_approximate_kind(tmp_path, sample_csv, tiny_model):
    from pipeline import Workspace

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), progress=False)
    report = ws.index(model=str(tiny_model))
    assert report.kind == "exact" and report.recall is None
    from pipeline.index import index_run

    ivf = index_run(tmp_path / "w", str(tiny_model), kind="ivf")
    assert ivf.kind == "ivf" and 0 <= ivf.recall["recall_at_k"] <= 1
    hits = Workspace(tmp_path / "w").similar_to("a3", k=3, model=str(tiny_model))  # no direct map in IVF
    assert len(hits) == 3 and "a3" not in hits["id"].tolist()
