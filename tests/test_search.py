"""Search embeds a query exactly as its run embedded the corpus."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import Workspace, embed_texts
from pipeline.core.settings import IndexSettings


def test_text_search_embeds_the_query_at_the_corpus_dtype(tmp_path, sample_csv, tiny_model):
    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), dtype="bf16", progress=False)
    query = "me gusta la playa y el sol"
    hits = ws.search(query, k=8, model=str(tiny_model))
    stored = ws.embeddings(model=str(tiny_model))
    by_row = dict(zip(stored.row_ids.tolist(), stored.vectors, strict=True))
    bf16, fp32 = (embed_texts([query], model=str(tiny_model), dtype=d)[0] for d in ("bf16", "fp32"))
    expected = np.array([by_row[row] @ bf16 for row in hits["row_id"]])
    other = np.array([by_row[row] @ fp32 for row in hits["row_id"]])
    assert np.abs(expected - other).max() > 1e-4  # the two precisions give scores the test tells apart
    np.testing.assert_allclose(hits["score"].to_numpy(), expected, atol=1e-6)


def test_queries_use_the_runs_prefix_and_max_length_with_one_encoder(tmp_path, sample_csv, tiny_model):
    from pipeline.search.searcher import Searcher

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), prefix="hola ", max_length=8, progress=False)
    searcher = Searcher.open(str(tmp_path / "w"), str(tiny_model))
    first = searcher.search_texts(["gol"], k=1)
    assert searcher.encoder.prefix == "hola " and searcher.encoder.transformer.max_length == 8
    assert first["text"].tolist() == searcher.search_texts(["gol"], k=1)["text"].tolist()


def test_a_one_off_search_uses_onnx_runtime_without_torch_and_finds_what_torch_finds(
    tmp_path, sample_csv, tiny_model
):
    import json
    import subprocess
    import sys

    from pipeline.search.command import search
    from pipeline.search.searcher import Searcher

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), prefix="hola ", max_length=8, progress=False)
    queries = ["me gusta la playa", "gol gol gol y una fiesta en la noche con musica"]  # the 2nd is truncated
    by_torch = Searcher.open(str(tmp_path / "w"), str(tiny_model)).search_texts(queries, k=8)
    first = search(tmp_path / "w", str(tiny_model), k=8, query=queries[1])  # exports, then answers
    assert first.hits["row_id"].tolist() == by_torch.loc[by_torch["query"] == queries[1], "row_id"].tolist()
    code = (
        "import json, sys; from pipeline.search.command import search; "
        f"r = search({str(tmp_path / 'w')!r}, {str(tiny_model)!r}, k=8, query={queries[0]!r}); "
        "print(json.dumps([r.hits['row_id'].tolist(), r.hits['score'].tolist(), 'torch' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    row_ids, scores, imported_torch = json.loads(done.stdout)
    expected = by_torch[by_torch["query"] == queries[0]]
    assert row_ids == expected["row_id"].tolist() and not imported_torch
    np.testing.assert_allclose(scores, expected["score"].to_numpy(), atol=1e-5)


def test_printed_hits_show_label_names_where_the_corpus_has_them():
    import pandas as pd

    from pipeline.search.command import SearchResult

    hits = pd.DataFrame(
        {
            "query": ["q"],
            "rank": [1],
            "score": [0.9],
            "row_id": [4],
            "id": ["a"],
            "label": ["0"],
            "text": ["hola"],
        }
    )
    printed = "\n".join(SearchResult(hits, "run", 1, False, {"0": "❤"}).lines())
    assert "❤" in printed and "  0  " not in printed
    assert (
        SearchResult(hits, "run", 1, False).to_dict()["results"][0]["hits"][0]["label"] == "0"
    )  # JSON: codes


def test_a_run_embedded_in_fp16_is_queried_in_fp32_on_a_cpu(tmp_path, sample_csv, tiny_model):
    """fp16 runs come from a GPU; a CPU refuses fp16, so the queries of such a run are embedded in fp32
    there (every other setting as the run recorded it), and search answers instead of failing."""
    import torch

    from pipeline.artifacts.runs import find_run
    from pipeline.core.manifest import record_stage, stage_entry
    from pipeline.search.searcher import query_settings

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), prefix="hola ", max_length=16, progress=False)
    run = find_run(ws.workdir, str(tiny_model))
    entry = stage_entry(run.paths.manifest, "embed")
    inputs = {**entry["inputs"], "dtype": "fp16"}  # as `encajes embed --dtype fp16` records it on a GPU
    record_stage(
        run.paths.manifest, "embed", inputs, entry["outputs"], embeddings_sha256=entry["embeddings_sha256"]
    )
    run = find_run(ws.workdir, str(tiny_model))
    assert run.embed.dtype == "fp16"
    on_cpu = query_settings(run, device="cpu")
    assert on_cpu.dtype == "fp32"
    assert (on_cpu.model, on_cpu.pooling, on_cpu.prefix, on_cpu.max_length) == (
        run.model,
        "mean",
        "hola ",
        16,
    )
    if torch.cuda.is_available():  # where fp16 runs, the query is embedded in it
        assert query_settings(run).dtype == "fp16"
        return
    assert query_settings(run).dtype == "fp32"
    query = "me gusta la playa"
    hits = Workspace(tmp_path / "w").search(query, k=8, model=str(tiny_model), dedup=0)
    stored = ws.embeddings(model=str(tiny_model))
    by_row = dict(zip(stored.row_ids.tolist(), stored.vectors, strict=True))
    fp32 = embed_texts([query], model=str(tiny_model), prefix="hola ", max_length=16)[0]
    np.testing.assert_allclose(hits["score"], [by_row[r] @ fp32 for r in hits["row_id"]], atol=1e-6)
    assert hits["row_id"].tolist() == sorted(by_row, key=lambda r: -float(by_row[r] @ fp32))


# --- filtered search: a filter of few rows is scored exactly on them, one of many rows over-fetches from
# the index; either way the hits are those of brute force over the rows the filter keeps ------------------

FILTERS = [
    ("rare", None),
    ("rare", "test"),
    (None, "test"),
    ("wide", None),
    ("wide", "test"),
    ("other", None),
]


@pytest.fixture(scope="module")
def filtered(tmp_path_factory):
    """A corpus that straddles ``SUBSET_EXACT``: a rare label, a label on more rows than it and a third;
    the same random unit vectors embedded as two runs, one with an exact index and one with IVF."""
    from indexes.filtered import SUBSET_EXACT
    from pipeline.stages.index.stage import index_run
    from tests.conftest import write_csv, write_vectors_run

    root = tmp_path_factory.mktemp("filtered")
    rng = np.random.default_rng(0)
    labels = np.array(["rare"] * 40 + ["wide"] * (SUBSET_EXACT + 1) + ["other"] * 300)
    rng.shuffle(labels)
    splits = np.where(np.arange(len(labels)) % 3 == 0, "test", "train")
    rows = [
        (f"t{i}", f"tuit {i}", label, split)
        for i, (label, split) in enumerate(zip(labels, splits, strict=True))
    ]
    ws = Workspace(root / "w")
    ws.ingest([write_csv(root / "tweets.csv", rows)])
    assert ws.corpus["row_id"].tolist() == list(range(len(rows)))  # vectors below are in row order
    vectors = rng.standard_normal((len(rows), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    write_vectors_run(root / "w", vectors, "synthetic/exact")
    write_vectors_run(root / "w", vectors, "synthetic/ivf")
    assert index_run(root / "w", "synthetic/ivf", settings=IndexSettings(kind="ivf")).kind == "ivf"
    queries = rng.standard_normal((40, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return root / "w", vectors, labels, splits, queries


def kept_by(labels, splits, label=None, split=None):
    """Which rows have ``label`` and ``split`` (None: any)."""
    keep = np.ones(len(labels), dtype=bool)
    if label is not None:
        keep &= labels == label
    if split is not None:
        keep &= splits == split
    return keep


def brute_force(vectors, labels, splits, queries, k, label=None, split=None, leave_out=None):
    """Row ids and scores of the k best rows that have ``label`` and ``split``, by numpy alone."""
    keep = kept_by(labels, splits, label, split)
    if leave_out is not None:
        keep[leave_out] = False
    kept = np.flatnonzero(keep)
    scores = queries @ vectors[kept].T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [kept[o].tolist() for o in order], [s[o] for s, o in zip(scores, order, strict=True)]


def allowed_by(searcher, label=None, split=None):
    """The rows a label/split filter keeps, through the structured filters (all rows for no filter)."""
    from pipeline.search.filters import conditions_from

    wanted = {name: value for name, value in (("label", label), ("split", split)) if value is not None}
    allowed = searcher.rows.allowed(conditions_from(wanted))
    return np.ones(len(searcher.rows), dtype=bool) if allowed is None else allowed


def assert_same_hits(hits, rows, scores):
    assert [[h["row_id"] for h in q] for q in hits] == rows
    np.testing.assert_allclose([h["score"] for q in hits for h in q], np.concatenate(scores), atol=1e-5)


def test_the_filters_straddle_the_exact_subset_size(filtered):
    from indexes.filtered import SUBSET_EXACT
    from pipeline.search.searcher import Searcher

    workdir, _, labels, splits, _ = filtered
    searcher = Searcher.open(str(workdir), "synthetic/exact", "mean")
    kept = {(label, split): allowed_by(searcher, label, split) for label, split in FILTERS}
    for (label, split), allowed in kept.items():
        assert np.array_equal(allowed, kept_by(labels, splits, label, split))  # a boolean per row id
    assert kept[("rare", None)].sum() <= SUBSET_EXACT < kept[("wide", None)].sum()  # both ways are taken


@pytest.mark.parametrize("model", ["synthetic/exact", "synthetic/ivf"])
def test_filtered_search_equals_brute_force_over_the_kept_rows(filtered, model):
    """Exact index: every filter. IVF: a filter of few rows even at the tuned nprobe (those rows are
    scored exactly, their vectors read from the stored embeddings: IVF keeps no position -> vector map);
    one of many rows once every list is probed (then IVF finds what exact search finds)."""
    import faiss

    from indexes.approximate import apply_search_params
    from indexes.filtered import SUBSET_EXACT
    from pipeline.search.searcher import Searcher

    workdir, vectors, labels, splits, queries = filtered
    searcher = Searcher.open(str(workdir), model, "mean")
    if model == "synthetic/ivf":
        assert searcher.index_report.kind == "ivf"
        unfiltered, _ = brute_force(vectors, labels, splits, queries, 10)
        found = [[h["row_id"] for h in q] for q in searcher.nearest(queries, 10)]
        assert found != unfiltered  # at the tuned nprobe IVF misses rows, so exactness below is earned
    for label, split in FILTERS:
        allowed = allowed_by(searcher, label, split)
        if model == "synthetic/ivf" and allowed.sum() > SUBSET_EXACT:  # approximate at the tuned nprobe:
            for hits in searcher.nearest(queries, 10, allowed):  # k rows the filter keeps, best first
                assert len(hits) == 10 and all(allowed[h["row_id"]] for h in hits)
                assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
            continue
        rows, scores = brute_force(vectors, labels, splits, queries, 10, label, split)
        assert_same_hits(searcher.nearest(queries, 10, allowed), rows, scores)
        for row_id in (rows[0][0], rows[1][3]):  # a corpus row's neighbours, itself left out
            rows_, scores_ = brute_force(vectors, labels, splits, vectors[[row_id]], 5, label, split, row_id)
            assert_same_hits([searcher.similar(row_id, 5, allowed)], rows_, scores_)
    if model == "synthetic/ivf":
        ivf = faiss.extract_index_ivf(searcher.index.index)
        apply_search_params(searcher.index.index, f"nprobe={ivf.nlist}")
        for label, split in FILTERS:
            rows, scores = brute_force(vectors, labels, splits, queries, 10, label, split)
            assert_same_hits(searcher.nearest(queries, 10, allowed_by(searcher, label, split)), rows, scores)
