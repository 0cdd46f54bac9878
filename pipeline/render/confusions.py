"""Confusion matrices cut down to what a reader can take in at 20-64 classes: the largest classes with an
"other" column, the most-confused pairs, and whether a probe predicts only a handful of classes.

Pure data in and out (numpy and pandas, no plotting, no files), so the figure and the report agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

TOP_CLASSES = 15
TOP_PAIRS = 10
OTHER = "other"


@dataclass(frozen=True)
class RestrictedConfusion:
    """Rows are the top true classes; columns the same classes, then "other" (any prediction outside them)."""

    labels: list[str]  # the top classes, largest first
    counts: np.ndarray  # shape (k, k + 1): last column counts predictions outside ``labels``
    rates: np.ndarray  # counts over each row's support: each row sums to 1
    n_classes: int  # classes in the whole matrix
    covered: float  # share of the test rows whose true class is among ``labels``

    @property
    def columns(self) -> list[str]:
        return [*self.labels, OTHER]


def _matrix(confusion: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    cm = np.asarray(confusion, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix must be square, not {cm.shape}")
    return cm


def top_classes(
    labels: Sequence[str], confusion: Sequence[Sequence[int]] | np.ndarray, n: int = TOP_CLASSES
) -> list[str]:
    """The ``n`` classes with the most test rows, largest first; ties keep the labels' order. Classes with no
    test rows (only ever predicted) are left out: they have no recall to show."""
    support = _matrix(confusion).sum(axis=1)
    order = np.argsort(-support, kind="stable")
    return [str(labels[i]) for i in order[:n] if support[i] > 0]


def restricted_confusion(
    labels: Sequence[str], confusion: Sequence[Sequence[int]] | np.ndarray, n: int = TOP_CLASSES
) -> RestrictedConfusion:
    """The matrix over the top ``n`` classes by support, row-normalised (recall per true class), with an
    "other" column so a row still sums to 1 when the probe sends that class's rows elsewhere."""
    cm = _matrix(confusion)
    keep = top_classes(labels, cm, n)
    position = {str(label): i for i, label in enumerate(labels)}
    idx = np.array([position[label] for label in keep], dtype=np.int64)
    rows = cm[idx]
    inside = rows[:, idx]
    counts = np.column_stack([inside, rows.sum(axis=1) - inside.sum(axis=1)])
    support = rows.sum(axis=1, keepdims=True)
    total = int(cm.sum())
    return RestrictedConfusion(
        labels=keep,
        counts=counts,
        rates=counts / np.maximum(support, 1),
        n_classes=len(labels),
        covered=float(support.sum() / total) if total else 0.0,
    )


def confused_pairs(
    labels: Sequence[str], confusion: Sequence[Sequence[int]] | np.ndarray, top: int = TOP_PAIRS
) -> pd.DataFrame:
    """The off-diagonal cells with the most rows: true -> predicted, count, and the share of the true class
    sent there. Ties go to the larger share, then to the labels' order."""
    cm = _matrix(confusion)
    support = cm.sum(axis=1)
    true, pred = np.nonzero(cm * (1 - np.eye(len(cm), dtype=np.int64)))
    frame = pd.DataFrame(
        {
            "true": [str(labels[i]) for i in true],
            "predicted": [str(labels[j]) for j in pred],
            "count": cm[true, pred].astype(int),
            "share": cm[true, pred] / np.maximum(support[true], 1),
        }
    )
    frame = frame.sort_values(["count", "share"], ascending=False, kind="stable")
    return frame.head(top).reset_index(drop=True)


def predicted_classes(confusion: Sequence[Sequence[int]] | np.ndarray) -> int:
    """How many distinct classes a probe predicts at least once."""
    return int((_matrix(confusion).sum(axis=0) > 0).sum())


def narrow_prediction(
    name: str, labels: Sequence[str], confusion: Sequence[Sequence[int]] | np.ndarray
) -> str | None:
    """A sentence when a probe predicts fewer than half of the classes (a collapsed probe scores a
    respectable accuracy on a skewed corpus while ignoring most classes); None otherwise."""
    predicted, n_classes = predicted_classes(confusion), len(labels)
    if 2 * predicted >= n_classes:
        return None
    return f"{name} predicts only {predicted} of {n_classes} classes"
