"""How a search is asked, beyond its query: how many distinct hits, from where, above what score, among
which rows (``Ask``); and query vectors that are not a text's: a vector given as is, or "more like these,
less like those" from corpus rows. Pure: arrays in, arrays out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.errors import EncajesError


@dataclass(frozen=True)
class Ask:
    """How to ask beyond the query vector: ``k`` distinct hits after skipping ``offset``, none scoring
    below ``min_score``, near-duplicates (cosine >= ``dedup``; 0: off) folded into the better hit, only
    ``allowed`` rows (a boolean per row id; None: all), never the rows of ``leave_out``."""

    k: int = 10
    offset: int = 0
    min_score: float | None = None
    dedup: float = 0.0
    allowed: np.ndarray | None = None
    leave_out: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.k < 1 or self.offset < 0:
            raise EncajesError(
                f"k must be at least 1 and offset at least 0 (got k={self.k}, offset={self.offset})."
            )
        if not 0 <= self.dedup <= 1:
            raise EncajesError(f"dedup is a cosine between 0 (off) and 1 (got {self.dedup}).")
        if self.min_score is not None and not -1 <= self.min_score <= 1:
            raise EncajesError(f"min_score is a cosine between -1 and 1 (got {self.min_score}).")

    @property
    def wanted(self) -> int:
        return self.offset + self.k

    @property
    def folds(self) -> bool:
        return 0 < self.dedup <= 1


@dataclass
class Candidates:
    """One query's allowed candidates, best first, and whether asking for more could give more."""

    row_ids: np.ndarray
    scores: np.ndarray
    exhausted: bool


def vector_query(vector: Sequence[float] | np.ndarray, dim: int) -> np.ndarray:
    """A query vector given as numbers: checked for dimension and finiteness, L2-normalised (the corpus'
    vectors are, so cosine is the inner product)."""
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    if array.shape[0] != dim:
        raise EncajesError(
            f"The vector has {array.shape[0]} numbers; this run's vectors have {dim}: embed the query with "
            "the run's model (POST /v1/embeddings) or search by text."
        )
    return _normalised(array, "The vector")


def rows_query(positive: np.ndarray, negative: np.ndarray | None = None) -> np.ndarray:
    """ "More like these, less like those": the normalised difference of the mean of the ``positive``
    rows' vectors and the mean of the ``negative`` ones (none: the positive mean alone)."""
    if len(positive) == 0:
        raise EncajesError("Give at least one positive row id (more like these).")
    query = positive.mean(axis=0)
    if negative is not None and len(negative):
        query = query - negative.mean(axis=0)
    return _normalised(np.asarray(query, dtype=np.float32), "The positive and negative rows' difference")


def _normalised(array: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise EncajesError(f"{what} holds NaN or infinite numbers.")
    wide = array.astype(np.float64)  # float32 squares overflow past 1e19
    norm = float(np.linalg.norm(wide))
    if norm < 1e-12:
        raise EncajesError(f"{what} is all zeros: there is no direction to search in.")
    return (wide / norm).astype(np.float32)
