"""Index choice is a pure function of size and budget; approximate indexes report honest recall."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.approximate import (
    apply_search_params,
    build_index,
    choose_index,
    recall_at_k,
    search_ladders,
    tune_search,
)
from pipeline.core.errors import EncajesError
from pipeline.core.settings import IndexSettings
from pipeline.tools.bench.index import bench_indexes, clustered_vectors


def test_choice_follows_size_and_memory_budget():
    assert choose_index(50_000, 384).kind == "exact"
    roomy = choose_index(1_000_000, 384, memory_budget_bytes=4e9)  # 1.5 GB of vectors fits: re-rank
    assert roomy.kind == "ivfpq" and roomy.factory.endswith(",RFlat") and "re-ranked" in roomy.why
    tight = choose_index(3_000_000, 384, memory_budget_bytes=4e9)  # 4.6 GB does not, 8-bit copies do
    assert tight.factory.endswith(",Refine(SQ8)") and "scalar-quantised" in tight.why
    squeezed = choose_index(10_000_000, 384, memory_budget_bytes=4e9)  # 15 GB, 3.8 GB at 8 bits: codes only
    assert squeezed.kind == "ivfpq" and squeezed.factory.endswith("PQ96x4fs") and "exceed" in squeezed.why
    enough = float(squeezed.why.split("--memory-budget-gb ")[1].split()[0])  # the budget it suggests works
    assert "SQ8" in choose_index(10_000_000, 384, memory_budget_bytes=enough * 1e9).factory
    assert choose_index(10, 8, "ivf").kind == "ivf"
    with pytest.raises(EncajesError, match="Unknown index kind"):
        choose_index(10, 8, "lsh")


def test_recall_is_counted_against_exact_search():
    import faiss

    data = clustered_vectors(3200, 32, seed=1)
    vectors, queries = data[:3000], data[3000:]
    exact = faiss.IndexFlatIP(32)
    exact.add(vectors)
    assert recall_at_k(exact, exact, queries, 10)["recall_at_k"] == 1.0
    hnsw = build_index(vectors, choose_index(3000, 32, "hnsw"))
    measured = recall_at_k(hnsw, exact, queries, 10)
    _, truth = exact.search(queries, 10)
    _, found = hnsw.search(queries, 10)
    by_hand = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert measured["recall_at_k"] == pytest.approx(by_hand) and measured["recall_at_k"] > 0.9


def test_recall_of_corpus_rows_leaves_their_self_match_out():
    import faiss

    vectors = clustered_vectors(2000, 16, seed=3)
    exact = faiss.IndexFlatIP(16)
    exact.add(vectors)
    rows = np.arange(0, 2000, 10)
    assert recall_at_k(exact, exact, vectors[rows], 10, own_positions=rows)["recall_at_k"] == 1.0

    class SelfOnly:  # answers each row with itself first, then nothing useful
        def search(self, queries, k):
            found = np.full((len(queries), k), -1)
            found[:, 0] = rows
            return np.zeros_like(found, dtype=np.float32), found

    assert recall_at_k(SelfOnly(), exact, vectors[rows], 10, own_positions=rows)["recall_at_k"] == 0.0


def test_tuning_picks_the_first_setting_that_reaches_the_target():
    import faiss

    data = clustered_vectors(20_300, 32, seed=4)
    vectors, queries = data[:20_000], data[20_000:]
    exact = faiss.IndexFlatIP(32)
    exact.add(vectors)
    spec = choose_index(20_000, 32, "ivf")
    index = build_index(vectors, spec)
    tuned = tune_search(index, exact, spec, queries, target_recall=0.9)
    (ladder,) = search_ladders(spec)
    chosen = ladder.index(tuned.search_params)
    assert tuned.reached_target and tuned.recall_at_k >= 0.9
    assert recall_at_k(index, exact, queries)["recall_at_k"] == pytest.approx(tuned.recall_at_k)  # left set
    assert chosen > 0  # the cheapest setting is not enough on these vectors...
    apply_search_params(index, ladder[chosen - 1])
    assert recall_at_k(index, exact, queries)["recall_at_k"] < 0.9  # ...and one step cheaper falls short
    impossible = tune_search(index, exact, spec, queries, target_recall=1.01)
    assert not impossible.reached_target and impossible.search_params == ladder[-1]


def test_bench_reports_every_kind():
    result = bench_indexes(5000, 32, queries=200)
    assert set(result["kinds"]) == {"exact", "hnsw", "ivf", "ivfpq"}
    assert result["kinds"]["exact"]["recall_at_k"] == 1.0
    assert result["auto"]["kind"] == "exact"  # 5,000 rows
    for kind in ("hnsw", "ivf", "ivfpq"):  # tuned to 0.95 on other held-out queries
        assert result["kinds"][kind]["recall_at_k"] > 0.85
    squeezed = bench_indexes(5000, 32, queries=200, memory_budget_bytes=1e5, kinds=("exact", "ivfpq"))
    assert squeezed["kinds"]["ivfpq"]["bytes"] < squeezed["kinds"]["exact"]["bytes"] / 4
    tight = bench_indexes(5000, 32, queries=200, memory_budget_bytes=3e5, kinds=("exact", "ivfpq"))
    assert tight["kinds"]["ivfpq"]["factory"].endswith("Refine(SQ8)")
    assert tight["kinds"]["ivfpq"]["recall_at_k"] > 0.85  # 8-bit re-ranking still reaches the target
    assert tight["kinds"]["ivfpq"]["bytes"] < tight["kinds"]["exact"]["bytes"] / 2


def test_index_stage_with_an_approximate_kind(tmp_path, sample_csv, tiny_model):
    from pipeline import Workspace

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), progress=False)
    report = ws.index(model=str(tiny_model))
    assert report.kind == "exact" and report.recall is None
    from pipeline.stages.index.stage import index_run

    ivf = index_run(tmp_path / "w", str(tiny_model), settings=IndexSettings(kind="ivf"))
    assert ivf.kind == "ivf" and ivf.recall["trials"]
    assert ivf.recall["recall_at_k"] == 1.0  # 8 rows make one inverted list: IVF is exact here
    rows = ivf.vectors
    assert ivf.recall["queries"] == rows - rows // 3  # tuned on a third, measured on the other rows
    assert ivf.search_params.startswith("nprobe=")
    hits = Workspace(tmp_path / "w").similar_to("a3", k=3, model=str(tiny_model))  # no direct map in IVF
    assert len(hits) == 3 and "a3" not in hits["id"].tolist()


def synthetic_run(workdir, vectors, model="synthetic/vectors"):
    """A finished embed of ``vectors`` (no model needed): what the index stage reads."""
    from tests.conftest import write_vectors_run

    return write_vectors_run(workdir, vectors, model)


def test_index_stage_reports_the_recall_its_index_really_has(tmp_path):
    """The recall@10 the stage stores equals the one measured by hand on the saved index, over every
    corpus row (each row's match with itself left out), against brute force."""
    from indexes.exact import load_index
    from pipeline.stages.index.stage import index_run

    vectors = clustered_vectors(3000, 32, seed=7)
    run = synthetic_run(tmp_path / "w", vectors)
    report = index_run(
        tmp_path / "w", "synthetic/vectors", settings=IndexSettings(kind="ivf", target_recall=0.9)
    )
    loaded = load_index(run.index, run.index_ids)
    apply_search_params(loaded.index, report.search_params)
    _, found = loaded.search(vectors, 11)
    truth = np.argsort(-(vectors @ vectors.T), axis=1)[:, :11]
    rows = np.arange(len(vectors))
    hits = [
        len(set(f[f != r][:10]) & set(t[t != r][:10])) for r, f, t in zip(rows, found, truth, strict=True)
    ]
    by_hand = np.mean(hits) / 10
    assert 0.5 < by_hand < 0.999  # really approximate, so the figure is not trivially 1
    assert report.recall["recall_at_k"] == pytest.approx(by_hand, abs=0.03)
    assert report.recall["queries"] == 1000  # measured on 1,000 rows, tuned on 500 others
