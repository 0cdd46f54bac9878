"""The vectors.npy store for corpora beyond memory: same vectors as embeddings.pt, read block by block,
ids checked on load, and every stage gives the same answers from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pipeline.artifacts.store as store_module
from indexes.exact import BlockScanIP
from pipeline.artifacts.store import Embeddings, load_embeddings
from pipeline.core.errors import EncajesError
from pipeline.core.settings import EmbedSettings, IndexSettings, ProbeSettings, UmapSettings
from pipeline.stages.embed.stage import embed_corpus
from pipeline.stages.index.stage import index_run
from pipeline.stages.ingest.stage import ingest
from pipeline.stages.plot.projection import umap_2d
from pipeline.stages.probe.stage import probe_run
from tests.conftest import SAMPLE_ROWS, write_csv

ROWS = [
    (f"r{i}", f"{text} numero {i}", label, split) for i, (_, text, label, split) in enumerate(SAMPLE_ROWS * 6)
]


@pytest.fixture
def two_stores(tmp_path, tiny_model, monkeypatch):
    """The same corpus embedded twice, vectors inside embeddings.pt and in vectors.npy (4-row read blocks,
    so every reader crosses block boundaries)."""
    monkeypatch.setattr(store_module, "BLOCK_ROWS", 4)
    csv = write_csv(tmp_path / "tweets.csv", ROWS)
    runs = {}
    for store in ("pt", "npy"):
        ingest([csv], tmp_path / store)
        runs[store] = embed_corpus(
            tmp_path / store, EmbedSettings(model=str(tiny_model), chunk_rows=5, store=store), progress=False
        )
    return tmp_path, runs


def test_npy_store_holds_the_same_vectors_and_row_ids(two_stores):
    _, runs = two_stores
    in_memory, on_disk = (load_embeddings(runs[s].embeddings) for s in ("pt", "npy"))
    assert on_disk.file is not None and in_memory.file is None
    assert (runs["npy"].run_dir / "vectors.npy").exists() and not (
        runs["pt"].run_dir / "vectors.npy"
    ).exists()
    assert "embeddings" not in torch.load(runs["npy"].embeddings, weights_only=True)
    np.testing.assert_array_equal(on_disk.row_ids, in_memory.row_ids)
    np.testing.assert_allclose(np.asarray(on_disk.vectors), in_memory.vectors, atol=1e-6)
    blocks = list(on_disk.blocks())
    assert [begin for begin, _ in blocks] == list(range(0, len(ROWS), 4))
    np.testing.assert_allclose(np.concatenate([b for _, b in blocks]), in_memory.vectors, atol=1e-6)
    scattered = np.array([30, 2, 17, 2, 47, 0])
    np.testing.assert_allclose(on_disk.take(scattered), in_memory.vectors[scattered], atol=1e-6)


def test_a_truncated_or_misaligned_vectors_file_is_a_clear_error(two_stores):
    _, runs = two_stores
    vectors = runs["npy"].run_dir / "vectors.npy"
    data = vectors.read_bytes()
    vectors.write_bytes(data[:-4])
    with pytest.raises(EncajesError, match="truncated"):
        load_embeddings(runs["npy"].embeddings)
    np.save(vectors, np.zeros((len(ROWS) - 1, 32), dtype=np.float32))
    with pytest.raises(EncajesError, match="row ids"):
        load_embeddings(runs["npy"].embeddings)


def test_rerun_is_fresh_and_switching_to_pt_removes_the_npy(two_stores, tiny_model):
    tmp_path, _ = two_stores
    again = embed_corpus(tmp_path / "npy", EmbedSettings(model=str(tiny_model), store="npy"), progress=False)
    assert again.skipped
    redone = embed_corpus(
        tmp_path / "npy", EmbedSettings(model=str(tiny_model), store="pt"), force=True, progress=False
    )
    assert not (redone.run_dir / "vectors.npy").exists()
    assert load_embeddings(redone.embeddings).file is None


def test_a_deleted_vectors_file_makes_the_run_stale(two_stores, tiny_model):
    tmp_path, runs = two_stores
    (runs["npy"].run_dir / "vectors.npy").unlink()
    again = embed_corpus(tmp_path / "npy", EmbedSettings(model=str(tiny_model), store="npy"), progress=False)
    assert not again.skipped and load_embeddings(again.embeddings).file is not None


def test_unknown_store_is_refused_before_any_work():
    with pytest.raises(EncajesError, match="--store"):
        EmbedSettings(store="parquet")


def test_block_scan_equals_exact_search():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((103, 16)).astype(np.float32)
    queries = rng.standard_normal((7, 16)).astype(np.float32)
    source = Embeddings(vectors, np.arange(103), {})
    scan = BlockScanIP(lambda: source.blocks(10), 103, 16)
    scores, positions = scan.search(queries, 5)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, expected, axis=1), rtol=1e-5)


def test_index_probe_and_umap_answer_the_same_from_either_store(two_stores, tiny_model):
    tmp_path, _ = two_stores
    model = str(tiny_model)
    exact = {
        s: index_run(tmp_path / s, model=model, settings=IndexSettings(kind="exact")) for s in ("pt", "npy")
    }
    assert exact["pt"].vectors == exact["npy"].vectors == len(ROWS)
    hnsw = index_run(
        tmp_path / "npy", model=model, settings=IndexSettings(kind="hnsw")
    )  # recall measured by the block scan
    assert hnsw.recall["recall_at_k"] > 0.9
    probes = {s: probe_run(tmp_path / s, model=model, settings=ProbeSettings(k=3)) for s in ("pt", "npy")}
    assert probes["pt"].logistic == probes["npy"].logistic and probes["pt"].knn == probes["npy"].knn
    settings = UmapSettings(n_neighbors=5, fit_rows=20)
    maps = {s: umap_2d(load_embeddings(embed_run(tmp_path / s, model)), settings).xy for s in ("pt", "npy")}
    np.testing.assert_allclose(maps["pt"], maps["npy"], atol=1e-4)


def embed_run(workdir, model):
    return embed_corpus(workdir, EmbedSettings(model=model), progress=False).embeddings


def test_status_rehashes_the_vectors_file(two_stores):
    from pipeline.artifacts.status import workdir_status

    tmp_path, runs = two_stores

    def embed_state() -> dict[str, str]:
        (run,) = workdir_status(tmp_path / "npy").runs.values()
        return run["embed"]

    assert embed_state()["state"] == "fresh"
    vectors = runs["npy"].run_dir / "vectors.npy"
    original = vectors.read_bytes()
    changed = bytearray(original)
    changed[-1] ^= 0x01  # one bit of the last vector: same size, same header
    vectors.write_bytes(bytes(changed))
    assert embed_state() == {
        "state": "stale",
        "why": "vectors.npy was modified after it was written: rerun embed with --force",
    }
    vectors.write_bytes(original[:-4])
    assert embed_state()["state"] == "stale" and "truncated" in embed_state()["why"]
    vectors.unlink()
    assert embed_state()["why"].startswith("vectors.npy is missing")
    vectors.write_bytes(original)
    assert embed_state()["state"] == "fresh"


def test_auto_store_switches_to_vectors_npy_past_the_memory_limit(tmp_path, tiny_model, monkeypatch):
    """Under the limit the vectors stay in embeddings.pt; past it, embed streams them to vectors.npy."""
    import pipeline.stages.embed.vectors as embed_module

    csv = write_csv(tmp_path / "tweets.csv", ROWS)  # 48 rows x 32 dims x 4 bytes = 6,144 bytes
    for name, limit in (("small", 6144), ("large", 6143)):
        monkeypatch.setattr(embed_module, "IN_MEMORY_LIMIT_BYTES", limit)
        ingest([csv], tmp_path / name)
        report = embed_corpus(tmp_path / name, EmbedSettings(model=str(tiny_model)), progress=False)
        stored = load_embeddings(report.embeddings)
        assert report.settings["store"] == ("pt" if name == "small" else "npy")
        assert (stored.file is None) == (name == "small")
        assert (report.run_dir / "vectors.npy").exists() == (name == "large")
    small, large = (
        load_embeddings(tmp_path / n / "runs" / report.run_dir.name / "embeddings.pt")
        for n in ("small", "large")
    )
    np.testing.assert_array_equal(np.asarray(large.vectors), small.vectors)
