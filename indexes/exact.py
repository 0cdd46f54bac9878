"""Exact inner-product search with FAISS; on L2-normalised vectors inner product is cosine similarity.

The index stores vectors by position; ``ids`` maps position -> corpus ``row_id`` and is saved beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from pipeline.errors import EncajesError
from pipeline.layout import write_atomic


@dataclass
class SearchIndex:
    index: faiss.Index
    ids: np.ndarray  # int64 row_id per index position

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, row_ids) per query, best first; rows beyond the corpus size come back as -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise EncajesError(
                f"Query vectors have dimension {queries.shape[1]} but the index holds {self.dim}-d vectors: "
                f"search with the model and pooling the index was built from."
            )
        scores, positions = self.index.search(queries, min(k, len(self)))
        row_ids = np.where(positions >= 0, self.ids[np.clip(positions, 0, None)], -1)
        return scores, row_ids

    def vector(self, position: int) -> np.ndarray:
        return self.index.reconstruct(int(position))


def build_exact(vectors: np.ndarray, ids: np.ndarray) -> SearchIndex:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return SearchIndex(index, np.asarray(ids, dtype=np.int64))


def save_index(search_index: SearchIndex, index_path: Path, ids_path: Path) -> None:
    def write_ids(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.save(handle, search_index.ids, allow_pickle=False)

    write_atomic(ids_path, write_ids)
    write_atomic(index_path, lambda tmp: faiss.write_index(search_index.index, str(tmp)))


def load_index(index_path: Path, ids_path: Path) -> SearchIndex:
    if not index_path.exists() or not ids_path.exists():
        raise EncajesError(f"No index at {index_path}: run `encajes index` for this model and pooling.")
    index = faiss.read_index(str(index_path))
    ids = np.load(ids_path, allow_pickle=False)
    if len(ids) != index.ntotal:
        raise EncajesError(
            f"{index_path} holds {index.ntotal} vectors but its id map {len(ids)}: rebuild it."
        )
    return SearchIndex(index, ids)
