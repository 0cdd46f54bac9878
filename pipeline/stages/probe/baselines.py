"""Baselines every comparison is read against, pure: texts and labels in, test predictions out.

- majority: every test row gets the most frequent training label (ties: the first in sorted order);
- TF-IDF: logistic regression on word 1-2-grams and character 2-5-grams (within word boundaries),
  sublinear term frequency, with C chosen by the same inner cross-validation as the embedding probes.
They are trained and scored on exactly the rows the probes use, so a run's row reads against them.

The TF-IDF matrices of a split (the full one and each inner-CV fold's, every vocabulary learnt on its
own fitted rows) are one value, ``TfidfSet``, so a stage can build them once and keep them: the
baselines and every run's combined probe read the same ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pipeline.stages.probe.estimators import Choice, LogisticFit, logistic_predict, search_C

BASELINES = ("majority", "tfidf")
# sag suits these sparse, row-normalised features (faster than Newton steps or lbfgs here); past C = 16
# the TF-IDF model stops improving and sag slows down; at tol 1e-3 it stops in a third of the epochs of
# 1e-4 with the same macro-F1 (README)
TFIDF_FIT = LogisticFit(grid=(1.0, 4.0, 16.0), solver="sag", tol=1e-3)
TITLES = {"majority": "majority class", "tfidf": "TF-IDF + logistic regression"}


def majority_predict(train_y: np.ndarray, n_test: int) -> np.ndarray:
    labels, counts = np.unique(train_y, return_counts=True)
    return np.full(n_test, labels[int(np.argmax(counts))], dtype=object)


@dataclass(frozen=True)
class TfidfMatrices:
    """One fit's TF-IDF features: vocabulary and IDF learnt on ``train``'s texts, applied to ``test``'s,
    and how long the fitted vectorizer took on the test texts (the throughput's first half)."""

    train: Any  # scipy CSR, float64
    test: Any
    transform_seconds: float = 0.0


def tfidf_matrices(train_texts: list[str], test_texts: list[str]) -> TfidfMatrices:
    """Sparse TF-IDF matrices, the vocabulary learnt on the training texts only. Terms seen in one text
    only are dropped, unless that leaves none (a tiny corpus, or texts of emoji alone)."""
    try:
        union = _tfidf(min_df=2)
        train_x = union.fit_transform(train_texts)
    except ValueError:  # "After pruning, no terms remain" / "empty vocabulary"
        union = _tfidf(min_df=1)
        train_x = union.fit_transform(train_texts)
    start = time.perf_counter()
    test_x = union.transform(test_texts)
    return TfidfMatrices(train_x.tocsr(), test_x.tocsr(), time.perf_counter() - start)


def tfidf_features(train_texts: list[str], test_texts: list[str]) -> tuple[Any, Any]:
    """``tfidf_matrices`` as a (train, test) pair: what ``search_C``'s fold features return."""
    matrices = tfidf_matrices(train_texts, test_texts)
    return matrices.train, matrices.test


def _tfidf(min_df: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion(
        [
            (
                "words",  # words, and every other symbol (an emoji, '!') as a token of its own
                TfidfVectorizer(
                    token_pattern=r"(?u)\w+|[^\w\s]", ngram_range=(1, 2), min_df=min_df, sublinear_tf=True
                ),
            ),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), min_df=min_df, sublinear_tf=True, lowercase=True
                ),
            ),
        ]
    )


@dataclass(frozen=True)
class TfidfFold:
    """One inner-CV fold's TF-IDF matrices: vocabulary from its fitted rows, applied to its held rows."""

    rows: np.ndarray  # positions among the training rows
    held: np.ndarray
    matrices: TfidfMatrices


@dataclass(frozen=True)
class TfidfSet:
    """Every TF-IDF matrix a probe on one split needs: the full fit's, and each inner-CV fold's (none
    when C is fixed or the rows are too few to tune)."""

    full: TfidfMatrices
    folds: tuple[TfidfFold, ...] = ()

    @property
    def features(self) -> int:
        return int(self.full.train.shape[1])

    def fold(self, rows: np.ndarray, held: np.ndarray) -> TfidfMatrices:
        """The fold ``search_C`` asks for, found by its rows: a fold it was not built for is an error."""
        for fold in self.folds:
            if np.array_equal(fold.rows, rows) and np.array_equal(fold.held, held):
                return fold.matrices
        raise ValueError("no TF-IDF matrices for this fold: the set was built for other folds")

    def fold_features(self, rows: np.ndarray, held: np.ndarray) -> tuple[Any, Any]:
        matrices = self.fold(rows, held)
        return matrices.train, matrices.test


def tfidf_set(
    train_texts: list[str], test_texts: list[str], splits: list[tuple[np.ndarray, np.ndarray]]
) -> TfidfSet:
    """The split's TF-IDF matrices; ``splits`` are the inner-CV folds (``inner_folds``) to build."""
    texts = np.asarray(train_texts, dtype=object)
    folds = tuple(
        TfidfFold(rows, held, tfidf_matrices(list(texts[rows]), list(texts[held]))) for rows, held in splits
    )
    return TfidfSet(tfidf_matrices(train_texts, test_texts), folds)


@dataclass(frozen=True)
class TfidfOutcome:
    """The TF-IDF baseline's test predictions, its C, its feature count and its throughput on the test
    texts (the fitted vectorizer's transform plus the fitted model's predictions, per second)."""

    predicted: np.ndarray
    choice: Choice
    features: int
    texts_per_second: float


def tfidf_baseline(
    tfidf: TfidfSet, train_y: np.ndarray, C: float | None, folds: int, seed: int, max_iter: int
) -> TfidfOutcome:
    """``tfidf_predict`` on matrices already built (kept by the stage), timed on the test texts."""
    fit = replace(TFIDF_FIT, max_iter=max_iter)
    if C is None:
        choice = search_C(tfidf.full.train, train_y, folds, seed, fit, features=tfidf.fold_features)[0]
    else:
        choice = Choice(C, False)
    model = fit.fit(tfidf.full.train, train_y, choice.value, seed)
    start = time.perf_counter()
    predicted = model.predict(tfidf.full.test)
    seconds = tfidf.full.transform_seconds + time.perf_counter() - start
    rate = len(predicted) / seconds if seconds > 0 else 0.0
    return TfidfOutcome(predicted, choice, tfidf.features, rate)


def tfidf_predict(
    train_texts: list[str],
    train_y: np.ndarray,
    test_texts: list[str],
    C: float | None,
    folds: int,
    seed: int,
    max_iter: int,
) -> tuple[np.ndarray, Choice]:
    """Test predictions of a TF-IDF logistic regression, and how its C was set."""
    fit = replace(TFIDF_FIT, max_iter=max_iter)
    texts = np.asarray(train_texts, dtype=object)
    if C is None:  # each fold's vocabulary and IDF from its own fitted rows: held-out texts shape nothing
        fold_features = lambda rows, held: tfidf_features(list(texts[rows]), list(texts[held]))  # noqa: E731
        choice = search_C(texts, train_y, folds, seed, fit, features=fold_features)[0]
    else:
        choice = Choice(C, False)
    train_x, test_x = tfidf_features(train_texts, test_texts)
    predicted, _ = logistic_predict(train_x, train_y, test_x, choice.value, folds, seed, fit)
    return predicted, choice
