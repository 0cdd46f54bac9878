"""Baselines every comparison is read against, pure: texts and labels in, test predictions out.

- majority: every test row gets the most frequent training label (ties: the first in sorted order);
- TF-IDF: logistic regression on word 1-2-grams and character 2-5-grams (within word boundaries),
  sublinear term frequency, with C chosen by the same inner cross-validation as the embedding probes.
They are trained and scored on exactly the rows the probes use, so a run's row reads against them.
"""

from __future__ import annotations

from dataclasses import replace
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


def tfidf_features(train_texts: list[str], test_texts: list[str]) -> tuple[Any, Any]:
    """Sparse TF-IDF matrices, the vocabulary learnt on the training texts only. Terms seen in one text
    only are dropped, unless that leaves none (a tiny corpus, or texts of emoji alone)."""
    try:
        union = _tfidf(min_df=2)
        return union.fit_transform(train_texts), union.transform(test_texts)
    except ValueError:  # "After pruning, no terms remain" / "empty vocabulary"
        union = _tfidf(min_df=1)
        return union.fit_transform(train_texts), union.transform(test_texts)


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
