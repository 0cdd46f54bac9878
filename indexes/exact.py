"""Exact inner-product search with FAISS; on L2-normalised vectors inner product is cosine similarity.

The index stores vectors by position; ``ids`` maps position -> corpus ``row_id`` and is saved beside it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from indexes.base import VectorIndex
from pipeline.core.atomic import write_atomic
from pipeline.core.errors import EncajesError


@dataclass
class SearchIndex:
    index: VectorIndex  # a faiss index, TorchFlatIP or BlockScanIP
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
        scores, positions = serial_search(self.index, queries, min(k, len(self)))
        row_ids = np.where(positions >= 0, self.ids[np.clip(positions, 0, None)], -1)
        return scores, row_ids

    def vector(self, position: int) -> np.ndarray:
        return self.index.reconstruct(int(position))


SERIAL_QUERIES = 4  # a block this small is searched on one thread


def serial_search(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A person's query or two searched on one OpenMP thread: a flat scan of one query gains nothing
    from a second thread and waits for it (on a busy 2-core machine, longer than the scan). Batches keep
    every thread. The setting is the calling thread's own, restored after."""
    threads = faiss.omp_get_max_threads()
    if len(queries) > SERIAL_QUERIES or threads == 1:
        return index.search(queries, k)
    faiss.omp_set_num_threads(1)
    try:
        return index.search(queries, k)
    finally:
        faiss.omp_set_num_threads(threads)


class TorchFlatIP(VectorIndex):
    """Exact inner-product search as a torch matrix product, query block by query block: the GPU path
    for machines with CUDA whose faiss has no GPU build (faiss-cpu). Duck-types the faiss calls that
    ``SearchIndex`` makes."""

    def __init__(self, vectors: np.ndarray, device: str = "cuda", block: int = 4096) -> None:
        import torch

        self.vectors = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)
        self.d, self.ntotal, self.block = int(vectors.shape[1]), int(vectors.shape[0]), block

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        scores, positions = [], []
        with torch.inference_mode():
            for begin in range(0, len(queries), self.block):
                block = torch.from_numpy(np.ascontiguousarray(queries[begin : begin + self.block]))
                top = torch.topk(block.to(self.vectors.device) @ self.vectors.T, min(k, self.ntotal), dim=1)
                scores.append(top.values.cpu().numpy())
                positions.append(top.indices.cpu().numpy().astype(np.int64))
        return np.concatenate(scores), np.concatenate(positions)

    def reconstruct(self, position: int) -> np.ndarray:
        return self.vectors[position].cpu().numpy()


class BlockScanIP(VectorIndex):
    """Exact inner-product search over vectors read block by block (a ``vectors.npy`` beyond memory): the
    ground truth that recall is measured against when a flat index would not fit. ``blocks()`` yields
    (first row, vectors) in row order."""

    def __init__(self, blocks: Callable[[], Iterable[tuple[int, np.ndarray]]], rows: int, dim: int) -> None:
        self.blocks, self.ntotal, self.d = blocks, rows, dim

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.ntotal)
        best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        best_positions = np.zeros((len(queries), 0), dtype=np.int64)
        for begin, block in self.blocks():
            scores, positions = faiss.knn(
                queries, np.ascontiguousarray(block), min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT
            )
            scores = np.concatenate([best_scores, scores], axis=1)
            positions = np.concatenate([best_positions, positions + begin], axis=1)
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            best_scores = np.take_along_axis(scores, top, axis=1)
            best_positions = np.take_along_axis(positions, top, axis=1)
        return best_scores, best_positions

    def reconstruct(self, position: int) -> np.ndarray:
        for begin, block in self.blocks():
            if begin <= position < begin + len(block):
                return np.asarray(block[position - begin], dtype=np.float32)
        raise IndexError(f"position {position} is beyond the {self.ntotal} vectors")


def on_gpu(search_index: SearchIndex) -> SearchIndex:
    """The same index searched on a GPU when there is one: faiss-gpu when installed, else (for exact
    indexes) a torch matrix product on CUDA when this process already uses torch; unchanged on CPU-only
    machines. (Importing torch only to ask takes a second; a CLI query without it starts faster.)"""
    if hasattr(faiss, "index_cpu_to_all_gpus") and faiss.get_num_gpus() > 0:
        return SearchIndex(faiss.index_cpu_to_all_gpus(search_index.index), search_index.ids)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and isinstance(search_index.index, faiss.IndexFlat):
        vectors = search_index.index.reconstruct_n(0, search_index.index.ntotal)
        return SearchIndex(TorchFlatIP(vectors, "cuda"), search_index.ids)
    return search_index


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
