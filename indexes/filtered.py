"""Search restricted to some rows (a filter), for any index kind, and its recall against exact search
over the same rows: the one place that decides how a filter is answered, so what ``encajes index``
measures is what search does.

A filter that keeps few rows is scored exactly on them (fast, and exact whatever the index); a broader
one searches the index and fetches 4x more until enough of the results pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexes.exact import SearchIndex

SUBSET_EXACT = 20_000  # a filter keeping at most this many rows is scored exactly on them


@dataclass
class Fetched:
    """Index results of a query block: scores and row ids (best first), which of them pass the filter,
    and whether the whole index was read (nothing more to fetch)."""

    scores: np.ndarray
    row_ids: np.ndarray
    keep: np.ndarray
    whole: bool


def scored_exactly(allowed: np.ndarray | None) -> bool:
    """Does search score this filter's rows exactly instead of asking the index?"""
    return allowed is not None and int(allowed.sum()) <= SUBSET_EXACT


def fetch_allowed(
    index: SearchIndex,
    queries: np.ndarray,
    fetch: int,
    allowed: np.ndarray | None,
    leave_out: Sequence[int] = (),
) -> Fetched:
    """At least ``fetch`` results per query that pass ``allowed`` (a boolean per row id; None: all) and are
    not in ``leave_out``, asking the index for 4x more each time too few pass."""
    size = fetch + len(leave_out)
    while True:
        scores, row_ids = index.search(queries, size)
        keep = row_ids >= 0
        if allowed is not None:
            inside = row_ids < len(allowed)
            keep &= inside & allowed[np.where(inside, row_ids, 0)]
        if len(leave_out):
            keep &= ~np.isin(row_ids, np.asarray(leave_out, dtype=np.int64))
        whole = size >= len(index)
        if allowed is None or keep.sum(axis=1).min() >= fetch or whole:
            return Fetched(scores, row_ids, keep, whole)
        size = min(len(index), size * 4)


def filtered_recall(
    index: SearchIndex,
    blocks: Iterable[tuple[int, np.ndarray]],
    queries: np.ndarray,
    share: float,
    leave_out: np.ndarray,
    k: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Recall@k of filtered search through ``index`` against exact search over the rows that a random
    filter keeping ``share`` of them allows. ``blocks``: (first position, vectors) of every row in index
    order, read once; ``leave_out``: the queries' own positions, never allowed. A filter that search
    scores exactly is reported as such, recall 1."""
    n = len(index)
    keep = np.zeros(n, dtype=bool)
    keep[np.random.default_rng(seed).choice(n, min(n, max(k, round(share * n))), replace=False)] = True
    keep[leave_out] = False
    allowed = np.zeros(int(index.ids.max(initial=-1)) + 1, dtype=bool)
    allowed[index.ids[keep]] = True
    out = {"share": share, "rows": int(keep.sum()), "recall_at_k": 1.0, "exact": True}
    if scored_exactly(allowed):
        return out
    best = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_at = np.zeros((len(queries), 0), dtype=np.int64)
    for begin, block in blocks:  # exact top-k among the kept rows, a block at a time
        inside = np.flatnonzero(keep[begin : begin + len(block)])
        scores = np.concatenate([best, queries @ np.asarray(block[inside], dtype=np.float32).T], axis=1)
        at = np.concatenate([best_at, np.broadcast_to(inside + begin, (len(queries), len(inside)))], axis=1)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best, best_at = np.take_along_axis(scores, top, axis=1), np.take_along_axis(at, top, axis=1)
    found = fetch_allowed(index, queries, k, allowed)
    truth = index.ids[best_at].tolist()
    hits = sum(
        len(set(t) & set(ids[passed][:k].tolist()))
        for t, ids, passed in zip(truth, found.row_ids, found.keep, strict=True)
    )
    return out | {"recall_at_k": round(hits / max(1, best_at.size), 4), "exact": False}
