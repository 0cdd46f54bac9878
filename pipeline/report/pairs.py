"""Every pair of systems tested on the same test rows: paired-bootstrap difference of macro-F1, its 95%
interval, a two-sided p-value, and Holm's adjustment for testing many pairs at once.

Each system's macro-F1 is computed once per resample (the resamples shared by all), so k systems cost k
bootstrap passes, not k(k-1)/2 pairs of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from pipeline.stages.probe.metrics import bootstrap_indices, confusion, macro_f1_of, macro_f1_resampled

ALPHA = 0.05


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input's order."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out = np.empty_like(p)
    out[order] = adjusted
    return out.tolist()


def _codes(
    truth: Sequence, predictions: Mapping[str, Sequence]
) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    labels = sorted({str(x) for x in truth}.union(*({str(x) for x in p} for p in predictions.values())))
    code = {label: i for i, label in enumerate(labels)}
    as_codes = lambda seq: np.fromiter((code[str(x)] for x in seq), np.int64, len(seq))  # noqa: E731
    return as_codes(truth), {name: as_codes(p) for name, p in predictions.items()}, len(labels)


def all_pairs(
    truth: Sequence, predictions: Mapping[str, Sequence], n_resamples: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per pair, the better system first (``a``): observed difference a - b, its percentile
    interval, the two-sided bootstrap p-value and the Holm-adjusted one over all pairs."""
    true, codes, n_classes = _codes(truth, predictions)
    indices = bootstrap_indices(len(true), n_resamples, seed)
    observed = {name: macro_f1_of(confusion(true, pred, n_classes)) for name, pred in codes.items()}
    resampled = {name: macro_f1_resampled(true, pred, n_classes, indices) for name, pred in codes.items()}
    rows = []
    for x, y in combinations(codes, 2):
        a, b = (x, y) if observed[x] >= observed[y] else (y, x)
        diff = resampled[a] - resampled[b]
        low, high = np.percentile(diff, [2.5, 97.5])
        one_sided = (np.sum(diff <= 0) + 1) / (n_resamples + 1)
        other_side = (np.sum(diff >= 0) + 1) / (n_resamples + 1)
        rows.append(
            {
                "a": a,
                "b": b,
                "difference": observed[a] - observed[b],
                "low": float(low),
                "high": float(high),
                "p_value": float(min(1.0, 2 * min(one_sided, other_side))),
                "resamples": n_resamples,
            }
        )
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows]), strict=True):
        row["p_holm"] = adjusted
        row["significant"] = adjusted < ALPHA
    return rows


def tied_with_best(scores: Mapping[str, float], pairs: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The best system, and the others no test separates from it (Holm-adjusted p >= 0.05)."""
    best = max(scores, key=lambda name: scores[name])
    tied = [
        row["b"] if row["a"] == best else row["a"]
        for row in pairs
        if best in (row["a"], row["b"]) and not row["significant"]
    ]
    return best, sorted(tied, key=lambda name: -scores[name])


def resolution_problem(pairs: list[dict[str, Any]]) -> str:
    """With many pairs and few resamples, Holm can leave no pair significant whatever the data say: the
    smallest bootstrap p is 2/(B+1), times the number of pairs. A sentence saying so, or ''."""
    if not pairs:
        return ""
    resamples = pairs[0]["resamples"]
    smallest = min(1.0, 2 / (resamples + 1) * len(pairs))
    if smallest < ALPHA:
        return ""
    return (
        f"Warning: with {len(pairs)} pairs and {resamples} resamples the smallest possible Holm-adjusted p "
        f"is {smallest:.3f}, so no pair can be significant at {ALPHA}: rerun with --bootstrap "
        f"{int(4 * len(pairs) / ALPHA)}."
    )
