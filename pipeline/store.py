"""``embeddings.pt``: tensors and plain values only, so it loads with ``torch.load(weights_only=True)``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.errors import EncajesError
from pipeline.layout import write_atomic


@dataclass
class Embeddings:
    """L2-normalised float32 vectors with the corpus ``row_ids`` they belong to, row for row."""

    vectors: np.ndarray
    row_ids: np.ndarray
    meta: dict[str, Any]

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.row_ids):
            raise EncajesError(
                f"Embeddings and row ids are misaligned ({self.vectors.shape} vs {len(self.row_ids)} ids)."
            )

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def save_embeddings(path: Path, embeddings: Embeddings) -> None:
    payload = {
        "embeddings": torch.from_numpy(np.require(embeddings.vectors, np.float32, ["C", "W"])),
        "row_ids": torch.from_numpy(np.array(embeddings.row_ids, dtype=np.int64)),
        **embeddings.meta,
        "dim": embeddings.dim,
        "dtype": "float32",
    }
    write_atomic(path, lambda tmp: torch.save(payload, tmp))


def load_embeddings(path: Path) -> Embeddings:
    if not path.exists():
        raise EncajesError(f"No embeddings at {path}: run `encajes embed` for this model and pooling first.")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    vectors = payload.pop("embeddings").numpy()
    row_ids = payload.pop("row_ids").numpy()
    return Embeddings(vectors=vectors, row_ids=row_ids, meta=payload)
