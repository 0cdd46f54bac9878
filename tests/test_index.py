"""FAISS exact search answers exactly what numpy brute force answers, and maps positions to row ids."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.exact import build_exact, load_index, save_index
from pipeline.core.errors import EncajesError


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_index_equals_brute_force(tmp_path):
    vectors, queries = unit_rows(500, 48, 0), unit_rows(20, 48, 1)
    row_ids = np.arange(1000, 1500)[::-1].copy()  # ids that are not positions
    index = build_exact(vectors, row_ids)
    save_index(index, tmp_path / "i.faiss", tmp_path / "ids.npy")
    loaded = load_index(tmp_path / "i.faiss", tmp_path / "ids.npy")
    scores, got = loaded.search(queries, k=10)
    brute = queries @ vectors.T
    top = np.argsort(-brute, axis=1)[:, :10]
    np.testing.assert_array_equal(got, row_ids[top])
    np.testing.assert_allclose(scores, np.take_along_axis(brute, top, axis=1), atol=1e-5)


def test_k_larger_than_corpus_and_dimension_mismatch():
    index = build_exact(unit_rows(3, 8, 0), np.array([7, 8, 9]))
    _scores, ids = index.search(unit_rows(1, 8, 1), k=10)
    assert sorted(ids[0].tolist()) == [7, 8, 9]
    with pytest.raises(EncajesError, match="dimension 4"):
        index.search(unit_rows(1, 4, 1), k=1)


def test_torch_matrix_product_search_equals_faiss_exact_search():
    """The CUDA fallback (torch matmul + top-k, in query blocks) answers like FAISS; run here on CPU."""
    from indexes.exact import SearchIndex, TorchFlatIP

    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((500, 24)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1000, 1500)
    queries = rng.standard_normal((70, 24)).astype(np.float32)
    expected_scores, expected_ids = build_exact(vectors, ids).search(queries, 7)
    torch_index = SearchIndex(TorchFlatIP(vectors, device="cpu", block=16), ids)  # 5 blocks, last short
    scores, found = torch_index.search(queries, 7)
    assert np.array_equal(found, expected_ids)
    assert np.allclose(scores, expected_scores, atol=1e-5)
    assert np.allclose(torch_index.vector(3), vectors[3])


def test_every_exact_search_answers_the_one_index_interface_alike():
    """FAISS's flat index, the torch matrix product and the block scan are all ``VectorIndex``es and
    give the same neighbours and the same stored vectors."""
    import faiss

    from indexes.base import VectorIndex
    from indexes.exact import BlockScanIP, TorchFlatIP

    vectors = unit_rows(300, 16, 3)
    queries = unit_rows(9, 16, 4)
    flat = faiss.IndexFlatIP(16)
    flat.add(vectors)

    def blocks():
        for begin in range(0, len(vectors), 64):
            yield begin, vectors[begin : begin + 64]

    kinds = [flat, TorchFlatIP(vectors, device="cpu", block=4), BlockScanIP(blocks, len(vectors), 16)]
    assert all(isinstance(kind, VectorIndex) for kind in kinds)
    _, expected = flat.search(queries, 5)
    for kind in kinds:
        assert (kind.d, kind.ntotal) == (16, 300)
        assert np.array_equal(kind.search(queries, 5)[1], expected), type(kind).__name__
        assert np.allclose(kind.reconstruct(130), vectors[130]), type(kind).__name__
    assert not isinstance(object(), VectorIndex)
