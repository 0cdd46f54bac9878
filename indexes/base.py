"""The one interface every index kind answers: FAISS's own indexes satisfy it as they are, and the two
exact searches of ``exact`` (a torch matrix product on a GPU, a block scan over vectors beyond memory)
implement it, so search, recall measurement and the index stage never ask which one they hold."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VectorIndex(Protocol):
    """Inner-product search over vectors held by position (row ids are mapped by ``SearchIndex``)."""

    d: int  # dimension of the vectors
    ntotal: int  # how many vectors it holds

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, positions) per query row, best first."""
        ...

    def reconstruct(self, position: int) -> np.ndarray:
        """The vector stored at ``position``."""
        ...
