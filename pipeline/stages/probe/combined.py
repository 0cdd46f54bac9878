"""Does an encoder add what n-grams miss? One logistic probe on the TF-IDF features and a run's
embeddings side by side, pure: matrices in, test predictions out.

Each block is scaled so its mean row L2 norm over the fitted rows is 1 (the embeddings are unit
vectors already; the TF-IDF union's rows, two unit blocks, are not), so neither dominates the
regularised fit by size alone. C is tuned as the TF-IDF baseline's is (``TFIDF_FIT``, the same folds),
and each fold scales its blocks from its own fitted rows, as it learns its own vocabulary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from pipeline.stages.probe.baselines import TFIDF_FIT, TfidfSet
from pipeline.stages.probe.estimators import Choice, search_C


@dataclass(frozen=True)
class Scales:
    """The factor each block was multiplied by (on the final fit's training rows)."""

    tfidf: float
    embeddings: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def mean_row_norm(x: Any) -> float:
    """Mean L2 norm of the rows of a dense or sparse matrix."""
    if hasattr(x, "multiply"):  # scipy sparse
        squares = np.asarray(x.multiply(x).sum(axis=1)).ravel()
    else:
        squares = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    return float(np.sqrt(squares).mean()) if len(squares) else 0.0


def block_scale(x: Any) -> float:
    """The factor that brings the mean row norm to 1 (1 for a block of empty rows: nothing to scale)."""
    norm = mean_row_norm(x)
    return 1.0 / norm if norm > 0 else 1.0


def combine(
    tfidf_fit: Any, tfidf_held: Any, emb_fit: np.ndarray, emb_held: np.ndarray
) -> tuple[Any, Any, Scales]:
    """Both blocks side by side in one CSR matrix per side, scaled by the fitted rows' norms."""
    import scipy.sparse as sp

    scales = Scales(block_scale(tfidf_fit), block_scale(emb_fit))

    def stack(tfidf: Any, emb: np.ndarray) -> Any:
        dense = sp.csr_matrix(np.asarray(emb, dtype=np.float64) * scales.embeddings)
        return sp.hstack([tfidf * scales.tfidf, dense], format="csr")

    return stack(tfidf_fit, emb_fit), stack(tfidf_held, emb_held), scales


@dataclass(frozen=True)
class CombinedOutcome:
    """The combined probe's test predictions, how its C was set, and the final fit's block scales."""

    predicted: np.ndarray
    choice: Choice
    scales: Scales
    refit: dict[str, Any]  # scikit-learn's ``LogisticRegression`` arguments of the final fit


def combined_predict(
    tfidf: TfidfSet,
    emb_train: np.ndarray,
    emb_test: np.ndarray,
    train_y: np.ndarray,
    C: float | None,
    folds: int,
    seed: int,
    max_iter: int,
) -> CombinedOutcome:
    """Test predictions of one logistic regression on TF-IDF + embeddings; ``tfidf`` must hold the
    folds ``inner_folds(train_y, folds, seed)`` when C is tuned."""
    fit = replace(TFIDF_FIT, max_iter=max_iter)
    train_x, test_x, scales = combine(tfidf.full.train, tfidf.full.test, emb_train, emb_test)
    if C is None:

        def fold_features(rows: np.ndarray, held: np.ndarray) -> tuple[Any, Any]:
            matrices = tfidf.fold(rows, held)
            return combine(matrices.train, matrices.test, emb_train[rows], emb_train[held])[:2]

        choice = search_C(train_x, train_y, folds, seed, fit, features=fold_features)[0]
    else:
        choice = Choice(C, False)
    predicted = fit.fit(train_x, train_y, choice.value, seed).predict(test_x)
    return CombinedOutcome(predicted, choice, scales, fit.params(choice.value))
