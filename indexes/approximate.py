"""Index kinds beyond exact search, a pure heuristic to pick one (in the spirit of autofaiss), and the
recall@k of any index against exact search.

All kinds use inner product on L2-normalised vectors (cosine). Search-time knobs (``nprobe``,
``efSearch``) are stored as a FAISS parameter string and applied after loading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import faiss
import numpy as np

from pipeline.core.errors import EncajesError
from pipeline.core.settings import INDEX_KINDS as KINDS
from pipeline.core.timing import Timings

EXACT_BELOW = 100_000  # rows: under this, exact search is fast enough and perfect


@dataclass(frozen=True)
class IndexSpec:
    kind: str
    factory: str  # faiss.index_factory string
    search_params: str  # faiss.ParameterSpace string, "" for none; tuned after building
    why: str

    @property
    def nlist(self) -> int:
        """Inverted lists of an IVF index (1 for the others)."""
        head = self.factory.split(",")[0]
        return int(head.removeprefix("IVF")) if head.startswith("IVF") else 1


def ivf_lists(n: int) -> int:
    """About 4 sqrt(n) lists, with at least 39 training points per list (FAISS's guidelines)."""
    return max(1, min(65536, int(4 * math.sqrt(n)), n // 39))


def choose_index(n: int, dim: int, kind: str = "auto", memory_budget_bytes: float = 4e9) -> IndexSpec:
    """Pure: corpus size, dimension and a memory budget -> which index, with its parameters and why.

    ``auto``: exact under 100k rows; above, IVF with 4-bit fast-scan PQ codes, whose candidates are
    re-ranked with the full vectors when those fit the budget, else with 8-bit scalar-quantised copies
    (``dim`` bytes a vector), else not at all (the codes alone, ``dim / 8`` bytes: recall suffers). IVF
    over HNSW by default because it searched faster at the same recall and built sooner in
    ``encajes bench index`` (figures in docs/BENCHMARKS.md). HNSW stays available by name."""
    if kind not in KINDS:
        raise EncajesError(f"Unknown index kind {kind!r}: use one of {', '.join(KINDS)}.")
    flat_bytes = n * dim * 4
    overhead = 1.15  # + PQ codes + lists
    refine = ""
    if flat_bytes * overhead <= memory_budget_bytes:
        refine, how = "RFlat", ", re-ranked with the full vectors"
    elif flat_bytes / 4 * overhead <= memory_budget_bytes:
        refine, how = (
            "Refine(SQ8)",
            ", re-ranked with 8-bit scalar-quantised vectors (full ones exceed the budget)",
        )
    else:
        enough = math.ceil(flat_bytes / 4 * overhead / 1e8) / 10  # GB, rounded up to 0.1
        how = (
            " only (even 8-bit vectors exceed the memory budget: expect lower recall; "
            f"--memory-budget-gb {enough:g} re-ranks with them)"
        )
    nlist = ivf_lists(n)
    subquantizers = max(1, dim // 4) if dim % 4 == 0 else dim
    pq = f"PQ{subquantizers}x4fs"
    specs = {
        "exact": IndexSpec("exact", "Flat", "", "exact inner product"),
        "hnsw": IndexSpec("hnsw", "HNSW32,Flat", "efSearch=128", "graph index, vectors kept in full"),
        "ivf": IndexSpec("ivf", f"IVF{nlist},Flat", f"nprobe={max(1, nlist // 16)}", f"{nlist} lists"),
        "ivfpq": IndexSpec(
            "ivfpq",
            f"IVF{nlist},{pq}" + (f",{refine}" if refine else ""),
            f"nprobe={max(1, nlist // 16)}" + (",k_factor_rf=8" if refine else ""),
            f"{nlist} lists, fast-scan codes of {subquantizers // 2} bytes{how}",
        ),
    }
    if kind == "ivfpq" and n < 1000:
        raise EncajesError(f"IVF-PQ needs at least 1,000 vectors to train its codes ({n:,} here): use exact.")
    if kind != "auto":
        return specs[kind]
    if n < EXACT_BELOW:
        return replace(specs["exact"], why=f"{n:,} rows < {EXACT_BELOW:,}: exact is fast enough")
    budget = f"{flat_bytes / 1e9:.1f} GB of vectors, {memory_budget_bytes / 1e9:g} GB budget"
    return replace(specs["ivfpq"], why=f"{n:,} rows, {budget}: {specs['ivfpq'].why}")


def training_rows(n: int, spec: IndexSpec, seed: int = 0) -> np.ndarray:
    """Sorted positions of the rows an index trains on (k-means wants >= 39 points per list)."""
    rows = min(n, max(100_000, 40 * spec.nlist))
    return np.sort(np.random.default_rng(seed).choice(n, rows, replace=False))


def empty_index(dim: int, spec: IndexSpec, training: np.ndarray) -> faiss.Index:
    """The index of ``spec``, trained on ``training`` vectors if it needs training, holding nothing yet."""
    index = faiss.index_factory(dim, spec.factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(np.ascontiguousarray(training, dtype=np.float32))
    apply_search_params(index, spec.search_params)
    return index


def build_index(vectors: np.ndarray, spec: IndexSpec, seed: int = 0) -> faiss.Index:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = empty_index(vectors.shape[1], spec, vectors[training_rows(len(vectors), spec, seed)])
    index.add(vectors)
    return index


def apply_search_params(index: faiss.Index, params: str) -> None:
    if params:
        faiss.ParameterSpace().set_index_parameters(index, params)


def _top_k_without_self(
    index: faiss.Index, queries: np.ndarray, k: int, own: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """Top-k positions per query (one extra fetched and the query's own position dropped when the queries
    are corpus rows), and the seconds the search took."""
    timings = Timings()
    with timings.part("search"):
        _, found = index.search(queries, k + (own is not None))
    if own is None:
        return found, timings["search"]
    kept = [row[row != self_position][:k] for row, self_position in zip(found, own, strict=True)]
    return np.array([np.pad(r, (0, k - len(r)), constant_values=-1) for r in kept]), timings["search"]


def _share_found(truth: np.ndarray, found: np.ndarray) -> float:
    hits = sum(len(set(t[t >= 0]) & set(f[f >= 0])) for t, f in zip(truth, found, strict=True))
    return hits / max(1, int((truth >= 0).sum()))


def recall_at_k(
    index: faiss.Index,
    exact: faiss.Index,
    queries: np.ndarray,
    k: int = 10,
    own_positions: np.ndarray | None = None,
    repeats: int = 1,
) -> dict[str, float]:
    """Share of the exact top-k that the index returns, and both indexes' query throughput (the median
    of ``repeats`` timed runs each, alternated). ``own_positions``: the queries are these corpus rows;
    each one's trivial match with itself is left out of both lists, so the recall is that of its true
    neighbours (as for held-out queries)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    exact_times, approx_times = [], []
    for _ in range(repeats):
        truth, seconds = _top_k_without_self(exact, queries, k, own_positions)
        exact_times.append(seconds)
        found, seconds = _top_k_without_self(index, queries, k, own_positions)
        approx_times.append(seconds)
    exact_s, approx_s = float(np.median(exact_times)), float(np.median(approx_times))
    return {
        "recall_at_k": _share_found(truth, found),
        "k": k,
        "queries": len(queries),
        "queries_per_s": len(queries) / approx_s,
        "exact_queries_per_s": len(queries) / exact_s,
        "speedup_over_exact": exact_s / approx_s,
    }


REFINE_FACTORS = (8, 16, 32)  # candidates re-ranked per result, for indexes with a re-ranking stage


def search_ladders(spec: IndexSpec) -> list[list[str]]:
    """Search settings from fastest to most exact, one ladder per re-rank depth (re-ranking more
    candidates lets fewer lists be probed: it pays at 1M rows, not at 200k, so both are tried)."""
    if spec.kind == "hnsw":
        return [[f"efSearch={ef}" for ef in (16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024)]]
    if spec.kind in ("ivf", "ivfpq"):
        nlist = spec.nlist
        shares = [1 / 256, 1 / 128, *(i / 64 for i in range(1, 33)), 1.0]  # up to half the lists, then all
        probes = sorted({max(1, round(nlist * share)) for share in shares})
        if not spec.factory.endswith(("RFlat", "Refine(SQ8)")):
            return [[f"nprobe={p}" for p in probes]]
        return [[f"nprobe={p},k_factor_rf={factor}" for p in probes] for factor in REFINE_FACTORS]
    return [[""]]


@dataclass(frozen=True)
class Tuned:
    search_params: str
    recall_at_k: float
    reached_target: bool
    trials: list[dict[str, float | str]]


def tune_search(
    index: faiss.Index,
    exact: faiss.Index,
    spec: IndexSpec,
    queries: np.ndarray,
    target_recall: float = 0.95,
    k: int = 10,
    own_positions: np.ndarray | None = None,
) -> Tuned:
    """The fastest search setting whose recall@k on ``queries`` reaches ``target_recall`` (autofaiss's
    "min recall" mode); the most exact one if none does. Along each ladder recall grows, so it is
    bisected for its first step that reaches the target; between ladders, the faster (median of 3
    timed runs) wins. Leaves the index set to the chosen setting; every setting tried is in ``trials``."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    truth, _ = _top_k_without_self(exact, queries, k, own_positions)
    trials: dict[str, float] = {}

    def recall_of(params: str) -> float:
        if params not in trials:
            apply_search_params(index, params)
            trials[params] = _share_found(truth, _top_k_without_self(index, queries, k, own_positions)[0])
        return trials[params]

    def seconds_of(params: str) -> float:
        apply_search_params(index, params)
        return float(np.median([_top_k_without_self(index, queries, k, own_positions)[1] for _ in range(3)]))

    reached = []
    for ladder in search_ladders(spec):
        low, high = 0, len(ladder) - 1
        if recall_of(ladder[high]) < target_recall:
            continue
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if recall_of(ladder[middle]) >= target_recall else (middle + 1, high)
        reached.append(ladder[high])
    if reached:
        chosen = reached[0] if len(reached) == 1 else min(reached, key=seconds_of)
    else:
        chosen = max(trials, key=trials.__getitem__)
    apply_search_params(index, chosen)
    return Tuned(
        chosen,
        trials[chosen],
        trials[chosen] >= target_recall,
        [{"search_params": params, "recall_at_k": round(r, 4)} for params, r in trials.items()],
    )
