"""Classification metrics from a confusion matrix, and bootstrap intervals for macro-F1.

Computed with numpy (not by calling scikit-learn per resample) so a 1,000-resample bootstrap over 50k
test rows takes well under a second; tests check every figure against scikit-learn on the same predictions.
Macro averages follow scikit-learn's default: over the labels present in the truth or the predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def encode_labels(y_true: Sequence, y_pred: Sequence) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labels -> integer codes over their sorted union (as scikit-learn's ``unique_labels`` does)."""
    true, pred = np.asarray(y_true, dtype=object).astype(str), np.asarray(y_pred, dtype=object).astype(str)
    labels = sorted(set(true.tolist()) | set(pred.tolist()))
    code = {label: i for i, label in enumerate(labels)}
    return (
        np.fromiter((code[x] for x in true), np.int64, len(true)),
        np.fromiter((code[x] for x in pred), np.int64, len(pred)),
        labels,
    )


def confusion(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    return np.bincount(true * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support per class; 0 where undefined (scikit-learn's zero_division=0)."""
    tp = np.diag(cm).astype(float)
    predicted, support = cm.sum(axis=0).astype(float), cm.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    return precision, recall, f1, support


def macro_f1_of(cm: np.ndarray) -> float:
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    return float(per_class(cm)[2][present].mean())


def classification_report(y_true: Sequence, y_pred: Sequence) -> dict[str, Any]:
    """Macro-F1 (the primary figure), accuracy, weighted F1, per-class P/R/F1 and the confusion matrix."""
    true, pred, labels = encode_labels(y_true, y_pred)
    cm = confusion(true, pred, len(labels))
    precision, recall, f1, support = per_class(cm)
    return {
        "macro_f1": macro_f1_of(cm),
        "accuracy": float(np.trace(cm) / cm.sum()),
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "labels": labels,
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion": cm.tolist(),
    }


def bootstrap_indices(n_rows: int, n_resamples: int, seed: int) -> np.ndarray:
    """Resampled row positions, shape (n_resamples, n_rows): shared by every run so tests are paired."""
    return np.random.default_rng(seed).integers(0, n_rows, size=(n_resamples, n_rows))


def macro_f1_resampled(true: np.ndarray, pred: np.ndarray, n_classes: int, indices: np.ndarray) -> np.ndarray:
    """Macro-F1 on each bootstrap resample of the test rows."""
    return np.array([macro_f1_of(confusion(true[idx], pred[idx], n_classes)) for idx in indices])


def bootstrap_macro_f1(
    y_true: Sequence, y_pred: Sequence, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Percentile interval of macro-F1 over resamples of the test rows."""
    true, pred, labels = encode_labels(y_true, y_pred)
    scores = macro_f1_resampled(true, pred, len(labels), bootstrap_indices(len(true), n_resamples, seed))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return {"low": float(low), "high": float(high), "level": level, "resamples": n_resamples, "seed": seed}


def paired_bootstrap(
    y_true: Sequence, pred_a: Sequence, pred_b: Sequence, n_resamples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Does A beat B on the same test rows? Difference of macro-F1, its 95% interval, one-sided p-value."""
    labels = sorted(set(map(str, y_true)) | set(map(str, pred_a)) | set(map(str, pred_b)))
    code = {label: i for i, label in enumerate(labels)}
    true, a, b = (np.array([code[str(x)] for x in seq], dtype=np.int64) for seq in (y_true, pred_a, pred_b))
    indices = bootstrap_indices(len(true), n_resamples, seed)
    diff = macro_f1_resampled(true, a, len(labels), indices) - macro_f1_resampled(
        true, b, len(labels), indices
    )
    observed = macro_f1_of(confusion(true, a, len(labels))) - macro_f1_of(confusion(true, b, len(labels)))
    low, high = np.percentile(diff, [2.5, 97.5])
    return {
        "difference": float(observed),
        "low": float(low),
        "high": float(high),
        "p_value": float((np.sum(diff <= 0) + 1) / (n_resamples + 1)),
        "resamples": n_resamples,
    }
