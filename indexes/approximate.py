"""Index kinds beyond exact search, a pure heuristic to pick one (in the spirit of autofaiss), and the
recall@k of any index against exact search.

All kinds use inner product on L2-normalised vectors (cosine). Search-time knobs (``nprobe``,
``efSearch``) are stored as a FAISS parameter string and applied after loading.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import faiss
import numpy as np

from pipeline.errors import EncajesError

KINDS = ("auto", "exact", "hnsw", "ivf", "ivfpq")
EXACT_BELOW = 100_000  # rows: under this, exact search is fast enough and perfect


@dataclass(frozen=True)
class IndexSpec:
    kind: str
    factory: str  # faiss.index_factory string
    search_params: str  # faiss.ParameterSpace string, "" for none
    why: str

    def bytes_per_vector(self, dim: int) -> float:
        if self.kind == "ivfpq":
            return int(self.factory.split("PQ")[1].split("x")[0])
        if self.kind == "hnsw":
            return dim * 4 + 32 * 2 * 4  # vectors + ~2M links of 4 bytes
        return dim * 4


def ivf_lists(n: int) -> int:
    """About 4 sqrt(n) lists, with at least 39 training points per list (FAISS's guidelines)."""
    return max(1, min(65536, int(4 * math.sqrt(n)), n // 39))


def choose_index(n: int, dim: int, kind: str = "auto", memory_budget_bytes: float = 4e9) -> IndexSpec:
    """Pure: corpus size, dimension and a memory budget -> which index, with its parameters and why."""
    if kind not in KINDS:
        raise EncajesError(f"Unknown index kind {kind!r}: use one of {', '.join(KINDS)}.")
    flat_bytes = n * dim * 4
    nlist = ivf_lists(n)
    nprobe = max(1, min(nlist, nlist // 16 or 1))
    specs = {
        "exact": IndexSpec("exact", "Flat", "", "exact inner product"),
        "hnsw": IndexSpec("hnsw", "HNSW32,Flat", "efSearch=128", "graph index, vectors kept in full"),
        "ivf": IndexSpec("ivf", f"IVF{nlist},Flat", f"nprobe={nprobe}", f"{nlist} lists, {nprobe} probed"),
        "ivfpq": IndexSpec(
            "ivfpq",
            f"IVF{nlist},PQ{max(1, dim // 8)}x8",
            f"nprobe={max(nprobe, 32)}",
            f"{nlist} lists, vectors compressed to {max(1, dim // 8)} bytes",
        ),
    }
    if kind == "ivfpq" and n < 1000:
        raise EncajesError(
            f"IVF-PQ needs at least 1,000 vectors to train its codebooks ({n:,} here): use exact."
        )
    if kind != "auto":
        return specs[kind]
    if n < EXACT_BELOW:
        return IndexSpec(
            **{**specs["exact"].__dict__, "why": f"{n:,} rows < {EXACT_BELOW:,}: exact is fast enough"}
        )
    if flat_bytes * 1.3 <= memory_budget_bytes:
        spec = specs["hnsw"]
        return IndexSpec(
            **{
                **spec.__dict__,
                "why": f"{flat_bytes / 1e9:.1f} GB of vectors fits the "
                f"{memory_budget_bytes / 1e9:.0f} GB budget: {spec.why}",
            }
        )
    spec = specs["ivfpq"]
    return IndexSpec(
        **{**spec.__dict__, "why": f"{flat_bytes / 1e9:.1f} GB of vectors exceeds the budget: {spec.why}"}
    )


def build_index(
    vectors: np.ndarray, spec: IndexSpec, seed: int = 0, train_sample: int = 100_000
) -> faiss.Index:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.index_factory(vectors.shape[1], spec.factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        sample = vectors[rng.choice(len(vectors), min(len(vectors), train_sample), replace=False)]
        index.train(sample)
    index.add(vectors)
    apply_search_params(index, spec.search_params)
    return index


def apply_search_params(index: faiss.Index, params: str) -> None:
    if params:
        faiss.ParameterSpace().set_index_parameters(index, params)


def recall_at_k(index: faiss.Index, exact: faiss.Index, queries: np.ndarray, k: int = 10) -> dict[str, float]:
    """Share of the exact top-k that the index returns, and both indexes' query throughput."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    start = time.perf_counter()
    _, truth = exact.search(queries, k)
    exact_s = time.perf_counter() - start
    start = time.perf_counter()
    _, found = index.search(queries, k)
    approx_s = time.perf_counter() - start
    hits = sum(len(set(t[t >= 0]) & set(f[f >= 0])) for t, f in zip(truth, found, strict=True))
    return {
        "recall_at_k": hits / (k * len(queries)),
        "k": k,
        "queries": len(queries),
        "queries_per_s": len(queries) / approx_s,
        "exact_queries_per_s": len(queries) / exact_s,
        "speedup_over_exact": exact_s / approx_s,
    }


def clustered_vectors(n: int, dim: int, clusters: int = 100, seed: int = 0) -> np.ndarray:
    """Synthetic unit vectors around random centres: structure like real embeddings, unlike pure noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def bench_indexes(
    n: int, dim: int, queries: int = 1000, seed: int = 0, memory_budget_bytes: float = 4e9
) -> dict[str, object]:
    """Every kind (and what ``auto`` picks) on the same synthetic corpus: build time, size, queries/s,
    speed-up over exact search and recall@10 against it, on held-out queries (not in the index)."""
    data = clustered_vectors(n + queries, dim, seed=seed)
    vectors, held_out = data[:n], data[n:]
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    results = {}
    auto = choose_index(n, dim, "auto", memory_budget_bytes)
    for kind in ("exact", "hnsw", "ivf", "ivfpq"):
        spec = choose_index(n, dim, kind, memory_budget_bytes)
        start = time.perf_counter()
        index = exact if kind == "exact" else build_index(vectors, spec, seed)
        build_s = time.perf_counter() - start
        measured = recall_at_k(index, exact, held_out, 10)
        results[kind] = {
            "build_s": round(build_s, 3),
            "bytes": int(faiss.serialize_index(index).size),
            **{k: round(v, 4) for k, v in measured.items()},
            "factory": spec.factory,
            "search_params": spec.search_params,
        }
    return {
        "n": n,
        "dim": dim,
        "queries": queries,
        "auto": {"kind": auto.kind, "why": auto.why, **results[auto.kind]},
        "kinds": results,
    }
