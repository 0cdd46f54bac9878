"""Learning curves, pure: which training sizes, which rows at each size, and the probes (or the
baselines) fitted on one subsample and scored on every test row.

A subsample depends on (seed, size, resample) and the training labels only, so a run's curve and the
baselines' curve are fitted on the same rows and read against each other point by point. The full size
is every training row: its figure is the probe's (or baseline's) own, read back rather than refitted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from pipeline.core.settings import ProbeSettings
from pipeline.stages.probe.baselines import majority_predict, tfidf_predict
from pipeline.stages.probe.metrics import classification_report
from pipeline.stages.probe.stage import fit_probes

AUTO = "auto"
AUTO_POINTS = 6
PER_CLASS = 8  # the smallest auto size: this many rows a class (a few-shot benchmark's budget)


def requested_sizes(spec: str) -> list[int] | None:
    """A user's sizes as typed ('160, 800' -> [160, 800]); None for 'auto'."""
    if spec.strip() == AUTO:
        return None
    return [int(item) for item in spec.split(",") if item.strip()]


def curve_sizes(spec: str, y_train: np.ndarray) -> list[int]:
    """The curve's training sizes, ascending and distinct, the last exactly every training row. 'auto':
    six log-spaced sizes from 8 rows a class; a user's list as given, less sizes above the training rows
    (``dropped_sizes``)."""
    rows = len(y_train)
    asked = requested_sizes(spec)
    if asked is None:
        start = min(PER_CLASS * len(np.unique(y_train)), rows)
        asked = [int(size) for size in np.rint(np.geomspace(start, rows, AUTO_POINTS))]
    counts = np.unique(y_train, return_counts=True)[1]
    # a size whose per-class floors already take every row would only repeat the full point
    below = {size for size in asked if size < rows and class_quotas(counts, size).sum() < rows}
    return [*sorted(below), rows]


def dropped_sizes(spec: str, train_rows: int) -> list[int]:
    """The sizes of a user's list that exceed the training rows: the curve leaves them out."""
    return sorted({size for size in requested_sizes(spec) or [] if size > train_rows})


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """``total`` split in proportion to integer ``weights``, whole units, remainders to the largest
    fractions (ties: the first)."""
    if len(weights) == 0 or total <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    whole, rest = np.divmod(total * weights, weights.sum())
    order = np.argsort(-rest, kind="stable")
    whole[order[: total - int(whole.sum())]] += 1
    return whole


def class_quotas(counts: np.ndarray, size: int) -> np.ndarray:
    """Rows a class gets in a subsample of ``size``: its proportional share, but at least min(8, its
    count). Classes whose share falls short are fixed at that floor and the rest share what is left, so
    the total is ``size`` unless the floors alone exceed it."""
    counts = np.asarray(counts, dtype=np.int64)
    floor = np.minimum(PER_CLASS, counts)
    fixed = np.zeros(len(counts), dtype=bool)
    while True:
        free = np.flatnonzero(~fixed)
        share = _largest_remainder(counts[free], size - int(floor[fixed].sum()))
        short = share < floor[free]
        if not short.any():
            quotas = floor.copy()
            quotas[free] = share
            return quotas
        fixed[free[short]] = True


def subsample(y_train: np.ndarray, size: int, resample: int, seed: int) -> np.ndarray:
    """Sorted positions into the training rows: a stratified draw of ``size`` rows (``class_quotas``),
    the same for the same (seed, size, resample) whatever the run, so every curve is paired. The full
    size (or more) is every row."""
    rows = len(y_train)
    if size >= rows:
        return np.arange(rows)
    classes, codes, counts = np.unique(y_train, return_inverse=True, return_counts=True)
    rng = np.random.default_rng([seed, size, resample])
    quotas = class_quotas(counts, size)
    taken = [rng.choice(np.flatnonzero(codes == c), quotas[c], replace=False) for c in range(len(classes))]
    return np.sort(np.concatenate(taken))


def subsample_folds(y: np.ndarray, folds: int) -> int:
    """Inner-CV folds that fit a subsample: no more than its smallest class has rows, at least two."""
    return max(2, min(folds, int(np.unique(y, return_counts=True)[1].min())))


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """The test figure every curve point is: the probe stage's macro-F1."""
    return float(classification_report(truth, predicted)["macro_f1"])


@dataclass(frozen=True)
class Fitted:
    """One probe fitted on one subsample: its test macro-F1 and its chosen C or k (None: a baseline
    without one)."""

    macro_f1: float
    choice: float | None = None


@dataclass(frozen=True)
class ProbeData:
    """A run's training and test rows as the probes see them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class TextData:
    """The corpus' training and test texts as the baselines see them."""

    train_texts: np.ndarray
    y_train: np.ndarray
    test_texts: list[str]
    y_test: np.ndarray


def fit_probes_on(positions: np.ndarray, data: ProbeData, settings: ProbeSettings) -> dict[str, Fitted]:
    """Both probes as the probe stage fits them (C and k by inner CV inside the subsample, with folds
    that fit it), scored on every test row."""
    y = data.y_train[positions]
    tuned = replace(settings, cv_folds=subsample_folds(y, settings.cv_folds))
    predicted, choices = fit_probes(data.x_train[positions], y, data.x_test, tuned)
    return {
        name: Fitted(macro_f1(data.y_test, predicted[name]), choices[name]["value"]) for name in predicted
    }


def fit_baselines_on(positions: np.ndarray, data: TextData, settings: ProbeSettings) -> dict[str, Fitted]:
    """TF-IDF (C by inner CV inside the subsample) and the majority class, scored on every test row."""
    y = data.y_train[positions]
    folds = subsample_folds(y, settings.cv_folds)
    texts = list(data.train_texts[positions])
    tfidf, C = tfidf_predict(texts, y, data.test_texts, settings.C, folds, settings.seed, settings.max_iter)
    majority = majority_predict(y, len(data.y_test))
    return {
        "tfidf": Fitted(macro_f1(data.y_test, tfidf), C.value),
        "majority": Fitted(macro_f1(data.y_test, majority)),
    }


@dataclass(frozen=True)
class CurvePoint:
    """One training size: the rows each subsample holds (above ``size`` only when the per-class floors
    ask for more), and per probe its test macro-F1 and its C or k, one per resample."""

    size: int
    rows: int
    scores: dict[str, list[float]]
    choices: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CurvePoint:
        return cls(int(data["size"]), int(data["rows"]), dict(data["scores"]), dict(data["choices"]))


@dataclass(frozen=True)
class Curve:
    """A learning curve as curve.json holds it; ``subsamples_sha256`` is over the row ids of every
    subsample in order, equal for two curves fitted on the same rows."""

    sizes: list[int]
    resamples: int
    seed: int
    train_rows: int
    points: list[CurvePoint]
    subsamples_sha256: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"points": [point.to_dict() for point in self.points]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Curve:
        points = [CurvePoint.from_dict(point) for point in data["points"]]
        return cls(**(data | {"points": points}))

    def means(self) -> dict[str, list[float]]:
        """Each probe's mean macro-F1 at each size."""
        names = self.points[0].scores if self.points else {}
        return {name: [float(np.mean(p.scores[name])) for p in self.points] for name in names}


def _digest(row_ids: np.ndarray, draws: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for positions in draws:
        digest.update(np.asarray(row_ids[positions], dtype="<i8").tobytes())
    return digest.hexdigest()


def draw_curve(
    y_train: np.ndarray,
    row_ids: np.ndarray,
    sizes: list[int],
    resamples: int,
    seed: int,
    fit_one: Callable[[np.ndarray], dict[str, Fitted]],
    full: dict[str, Fitted],
    n_jobs: int | None = None,
) -> Curve:
    """The curve over ``sizes``: ``fit_one`` on each subsample below the full size (in ``n_jobs``
    threads), then ``full``, the figures on every training row, as the last point. ``row_ids`` are the
    training rows' ids, which ``subsamples_sha256`` hashes."""
    rows = len(y_train)
    below = [size for size in sizes if size < rows]
    draws = [subsample(y_train, size, r, seed) for size in below for r in range(resamples)]
    fitted = _fit_all(fit_one, draws, n_jobs)
    points = [
        _point(size, len(draws[i * resamples]), fitted[i * resamples : (i + 1) * resamples])
        for i, size in enumerate(below)
    ]
    points.append(_point(rows, rows, [full]))
    digest = _digest(row_ids, [*draws, np.arange(rows)])
    return Curve([*below, rows], resamples, seed, rows, points, digest)


def _point(size: int, rows: int, fits: list[dict[str, Fitted]]) -> CurvePoint:
    """One size's point from its resamples' fits (in resample order)."""
    names = fits[0]
    return CurvePoint(
        size,
        rows,
        {name: [fit[name].macro_f1 for fit in fits] for name in names},
        {name: [fit[name].choice for fit in fits] for name in names if names[name].choice is not None},
    )


def _fit_all(
    fit_one: Callable[[np.ndarray], dict[str, Fitted]], draws: list[np.ndarray], n_jobs: int | None
) -> list[dict[str, Fitted]]:
    """Each subsample's fits, in order; in ``n_jobs`` threads (default: one a core), largest subsample
    first so no thread is left with a large one at the end, under one BLAS thread each, set once here:
    the fits' own one-thread limits then nest inside it."""
    n_jobs = min(len(draws), n_jobs or os.cpu_count() or 1)
    if n_jobs <= 1:
        return [fit_one(positions) for positions in draws]
    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits

    order = sorted(range(len(draws)), key=lambda i: -len(draws[i]))
    with threadpool_limits(1, user_api="blas"):
        found = Parallel(n_jobs=n_jobs, backend="threading", batch_size=1)(
            delayed(fit_one)(draws[i]) for i in order
        )
    fitted: dict[int, dict[str, Fitted]] = dict(zip(order, found, strict=True))
    return [fitted[i] for i in range(len(draws))]
