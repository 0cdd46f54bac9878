"""Vectors -> 2-D map coordinates with UMAP, at any corpus size.

UMAP's own neighbour search (NN-descent) dominates its time on large corpora, so the kNN graph comes
from FAISS and is handed to UMAP as ``precomputed_knn``. Above ``fit_rows`` rows, UMAP fits on a random
sample of that many rows and every other row is placed at the membership-weighted mean of its nearest
sample points' coordinates: UMAP's own ``transform`` initialisation, without its refinement epochs,
because UMAP cannot ``transform`` a model fitted on a precomputed graph.
"""

from __future__ import annotations

import resource
import warnings
from dataclasses import dataclass, field

import faiss
import numpy as np

from pipeline.artifacts.store import Embeddings
from pipeline.core.errors import EncajesError
from pipeline.core.settings import UmapSettings
from pipeline.core.timing import Timings

PLACE_BLOCK_ROWS = 50_000  # rows placed at a time beside the fitted sample


@dataclass
class Projection:
    xy: np.ndarray  # float32 (n, 2), rows in input order
    fitted_rows: int
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    peak_rss_after_fit_mb: float = 0.0  # when a sample was fitted: placing the rest adds the difference


def knn_graph(
    vectors: np.ndarray, k: int, reference: faiss.Index | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest rows of the ``reference`` index (default: exact search of ``vectors``
    themselves, each row its own first neighbour) and their cosine distances."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = reference
    if index is None:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
    similarities, neighbours = index.search(vectors, k)
    if reference is None:  # ties can put a duplicate before the row itself: UMAP wants self first
        rows = np.arange(len(vectors))
        self_at = np.argmax(neighbours == rows[:, None], axis=1)
        missing = neighbours[rows, self_at] != rows
        self_at[missing] = k - 1
        neighbours[rows, self_at], similarities[rows, self_at] = neighbours[:, 0], similarities[:, 0]
        neighbours[:, 0], similarities[:, 0] = rows, 1.0
    distances = np.clip(1.0 - similarities, 0.0, 2.0).astype(np.float32)
    return neighbours.astype(np.int64), distances


def sample_index(sample: np.ndarray, queries: int) -> faiss.Index:
    """The index the other rows are placed against, built once: exact for small jobs; else fast-scan
    IVF-PQ with re-ranking (placing a point needs near neighbours, not the exact ones)."""
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    dim = sample.shape[1]
    if queries * len(sample) <= 2e10 or len(sample) < 1000:
        index: faiss.Index = faiss.IndexFlatIP(dim)
        index.add(sample)
        return index
    from indexes.approximate import apply_search_params, build_index, choose_index

    spec = choose_index(len(sample), dim, "ivfpq", memory_budget_bytes=float("inf"))
    index = build_index(sample, spec)
    apply_search_params(index, f"nprobe={max(1, spec.nlist // 16)},k_factor_rf=16")
    return index


def fit_umap(vectors: np.ndarray, settings: UmapSettings) -> np.ndarray:
    """Cosine UMAP to 2-D on a FAISS kNN graph, with a fixed seed (single-threaded, so reproducible)."""
    import umap

    k = min(settings.n_neighbors, len(vectors) - 1)
    neighbours, distances = knn_graph(vectors, k)
    reducer = umap.UMAP(
        n_components=2,
        metric="cosine",
        n_neighbors=k,
        min_dist=settings.min_dist,
        random_state=settings.seed,
        precomputed_knn=(neighbours, distances),
    )
    with warnings.catch_warnings():  # "n_jobs overridden by random_state": the seed is the point
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*", category=UserWarning)
        return reducer.fit_transform(vectors).astype(np.float32)


def place_by_neighbours(
    vectors: np.ndarray, sample: faiss.Index, sample_xy: np.ndarray, k: int
) -> np.ndarray:
    """Rows (one block) -> the membership-weighted mean of their k nearest sample points' coordinates
    (UMAP's ``smooth_knn_dist`` weights, as its transform uses to initialise new points)."""
    from umap.umap_ import smooth_knn_dist

    neighbours, distances = knn_graph(vectors, k, reference=sample)
    sigmas, rhos = smooth_knn_dist(distances, float(k), local_connectivity=1.0)
    weights = np.exp(-np.maximum(distances - rhos[:, None], 0.0) / sigmas[:, None])
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkd->nd", weights, sample_xy[neighbours]).astype(np.float32)


def umap_2d(vectors: np.ndarray | Embeddings, settings: UmapSettings) -> Projection:
    """Every row's 2-D coordinates, with the time of each part and the process's peak memory. Given
    file-backed ``Embeddings``, only the sample and one block of the other rows are in memory at a time."""
    source = vectors if isinstance(vectors, Embeddings) else Embeddings(vectors, np.arange(len(vectors)), {})
    n = len(source)
    if n < 4:
        raise EncajesError("UMAP needs at least 4 rows.")
    timings = Timings()
    fit_peak = 0.0
    if n <= settings.fit_rows:
        with timings.part("fit_s"):
            xy = fit_umap(source.take(np.arange(n)), settings)
        fitted = n
    else:
        chosen = np.sort(np.random.default_rng(settings.seed).choice(n, settings.fit_rows, replace=False))
        sample = np.ascontiguousarray(source.take(chosen))
        with timings.part("fit_s"):
            sample_xy = fit_umap(sample, settings)
        fit_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # does not grow with n
        with timings.part("place_rest_s"):
            xy = place_rest(source, chosen, sample, sample_xy, settings)
        fitted = settings.fit_rows
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Projection(xy, fitted, timings.rounded(), round(peak, 1), round(fit_peak, 1))


def place_rest(
    source: Embeddings, chosen: np.ndarray, sample: np.ndarray, sample_xy: np.ndarray, settings: UmapSettings
) -> np.ndarray:
    """Every row's coordinates: the sample's as fitted, the others placed block by block."""
    n = len(source)
    rest = np.ones(n, dtype=bool)
    rest[chosen] = False
    xy = np.empty((n, 2), dtype=np.float32)
    xy[chosen] = sample_xy
    index = sample_index(sample, queries=n - len(chosen))
    for begin, block in source.blocks(PLACE_BLOCK_ROWS):
        here = rest[begin : begin + len(block)]
        xy[begin : begin + len(block)][here] = place_by_neighbours(
            block[here], index, sample_xy, settings.n_neighbors
        )
    return xy
