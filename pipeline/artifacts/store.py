"""``embeddings.pt``: tensors and plain values only, so it loads with ``torch.load(weights_only=True)``.

Two shapes of the same artifact. When the vectors fit in memory (``IN_MEMORY_LIMIT_BYTES``) the file holds
them. Past that it holds the row ids, the metadata and the name and sha256 of a ``vectors.npy`` beside it,
written shard by shard and read block by block (``Embeddings.blocks`` / ``take``), so no stage needs all
vectors in memory. Either way the file's own sha256 changes with the vectors: downstream freshness checks
stay one hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.atomic import write_atomic
from pipeline.core.errors import EncajesError

IN_MEMORY_LIMIT_BYTES = 2 << 30  # 2 GiB of float32, 1.4M x 384: above, vectors go to vectors.npy
BLOCK_ROWS = 65_536  # rows read at a time from vectors.npy (96 MiB at 384-d)


@dataclass(frozen=True)
class NpyVectors:
    """A float32 (rows, dim) .npy read by explicit reads: blocks pass through the page cache, not RSS."""

    path: Path
    memmap: np.memmap  # read-only; its .npy header gives the shape and where the data starts

    @classmethod
    def open(cls, path: Path) -> NpyVectors:
        try:
            memmap = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as error:  # numpy: "mmap length is greater than file size"
            raise EncajesError(f"{path} is truncated ({error}): re-embed.") from None
        if memmap.dtype != np.dtype("<f4") or memmap.ndim != 2 or not memmap.flags.c_contiguous:
            raise EncajesError(
                f"{path} is not a C-order float32 matrix ({memmap.dtype}, {memmap.shape}): re-embed."
            )
        expected = memmap.offset + memmap.nbytes
        if path.stat().st_size != expected:
            raise EncajesError(f"{path} is truncated ({path.stat().st_size} of {expected} bytes): re-embed.")
        return cls(path, memmap)

    @property
    def rows(self) -> int:
        return int(self.memmap.shape[0])

    @property
    def dim(self) -> int:
        return int(self.memmap.shape[1])

    def read(self, begin: int, end: int) -> np.ndarray:
        end = min(end, self.rows)
        with self.path.open("rb") as handle:
            handle.seek(self.memmap.offset + begin * self.dim * 4)
            data = np.fromfile(handle, dtype="<f4", count=max(0, end - begin) * self.dim)
        return data.reshape(-1, self.dim)


@dataclass
class Embeddings:
    """L2-normalised float32 vectors with the corpus ``row_ids`` they belong to, row for row.

    ``vectors`` is an array when they were stored in memory, and a read-only memmap of ``vectors.npy``
    otherwise (correct everywhere, but touching it all pages it all in): stages that must scale use
    ``blocks`` and ``take``, which read only what they need in both cases."""

    vectors: np.ndarray
    row_ids: np.ndarray
    meta: dict[str, Any]
    file: NpyVectors | None = None

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.row_ids):
            raise EncajesError(
                f"Embeddings and row ids are misaligned ({self.vectors.shape} vs {len(self.row_ids)} ids)."
            )

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.row_ids)

    def blocks(self, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, vectors) for consecutive blocks of at most ``rows`` (BLOCK_ROWS) rows, in order."""
        rows = rows or BLOCK_ROWS
        for begin in range(0, len(self), rows):
            if self.file is None:
                yield begin, self.vectors[begin : begin + rows]
            else:
                yield begin, self.file.read(begin, begin + rows)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Rows at ``positions``: a few through the memmap (only their pages are read), many by
        ``take`` (block by block)."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.file is None or len(positions) > BLOCK_ROWS // 8:
            return self.take(positions)
        return np.asarray(self.file.memmap[positions], dtype=np.float32)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """Rows at ``positions`` (any order), reading only the blocks that hold them."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.file is None:
            return np.asarray(self.vectors[positions])
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        order = np.argsort(positions, kind="stable")
        ordered = positions[order]
        block_of = ordered // BLOCK_ROWS
        for block in np.unique(block_of):
            here = np.flatnonzero(block_of == block)
            begin = int(block) * BLOCK_ROWS
            rows = self.file.read(begin, begin + BLOCK_ROWS)
            out[order[here]] = rows[ordered[here] - begin]
        return out


def save_embeddings(path: Path, embeddings: Embeddings) -> None:
    """In-memory vectors -> one self-contained ``embeddings.pt``."""
    import torch

    payload = {
        "embeddings": torch.from_numpy(np.require(embeddings.vectors, np.float32, ["C", "W"])),
        **_header(embeddings.row_ids, embeddings.dim, embeddings.meta),
    }
    write_atomic(path, lambda tmp: torch.save(payload, tmp))


def save_embeddings_streamed(
    path: Path, vectors_path: Path, blocks: Iterable[np.ndarray], rows: int, dim: int, row_ids, meta
) -> None:
    """Blocks of vectors (in row order) -> ``vectors.npy`` written as they come, then an ``embeddings.pt``
    that points to it with its sha256; memory holds one block at a time."""
    import torch

    digest = hashlib.sha256()

    def write_vectors(tmp: Path) -> None:
        written = 0
        with tmp.open("wb") as handle:
            header = {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)}
            np.lib.format.write_array_header_1_0(handle, header)
            for block in blocks:
                data = np.ascontiguousarray(block, dtype="<f4")
                if data.ndim != 2 or data.shape[1] != dim:
                    raise EncajesError(f"A block of shape {data.shape} does not fit ({rows}, {dim}) vectors.")
                handle.write(data)
                digest.update(data)
                written += len(data)
        if written != rows:
            raise EncajesError(f"Wrote {written} vectors for {rows} rows: re-embed with --force.")

    write_atomic(vectors_path, write_vectors)
    payload = {
        "vectors_file": vectors_path.name,
        "vectors_sha256": digest.hexdigest(),
        **_header(row_ids, dim, meta),
    }
    write_atomic(path, lambda tmp: torch.save(payload, tmp))


def _header(row_ids, dim: int, meta: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {
        "row_ids": torch.from_numpy(np.array(row_ids, dtype=np.int64)),
        **meta,
        "dim": dim,
        "dtype": "float32",
    }


def load_embeddings(path: Path) -> Embeddings:
    """Either shape of ``embeddings.pt``; a ``vectors.npy`` must match its row ids and dimension."""
    import torch  # here, not at the top: search reads no .pt and starts without torch

    if not path.exists():
        raise EncajesError(f"No embeddings at {path}: run `encajes embed` for this model and pooling first.")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    row_ids = payload.pop("row_ids").numpy()
    if "embeddings" in payload:
        return Embeddings(vectors=payload.pop("embeddings").numpy(), row_ids=row_ids, meta=payload)
    vectors_path = path.parent / payload["vectors_file"]
    if not vectors_path.exists():
        raise EncajesError(f"{path} points to {vectors_path}, which is missing: run embed with --force.")
    file = NpyVectors.open(vectors_path)
    if (file.rows, file.dim) != (len(row_ids), payload["dim"]):
        raise EncajesError(
            f"{vectors_path} holds {file.rows} x {file.dim} vectors but {path} lists {len(row_ids)} row ids "
            f"of dimension {payload['dim']}: run embed with --force."
        )
    return Embeddings(vectors=file.memmap, row_ids=row_ids, meta=payload, file=file)


def vectors_file_problem(path: Path) -> str | None:
    """Why the ``vectors.npy`` an ``embeddings.pt`` points to is not what embed wrote (gone, resized or
    changed: its data is re-hashed), with the fix; None, also when the vectors are in ``embeddings.pt``."""
    import torch

    header = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # reads no vectors
    if "vectors_file" not in header:
        return None
    fix = ": rerun embed with --force"
    if not (path.parent / header["vectors_file"]).exists():
        return f"{header['vectors_file']} is missing{fix}"
    try:
        embeddings = load_embeddings(path)  # checks the file's size, dtype and shape
    except EncajesError as error:
        return str(error)
    digest = hashlib.sha256()
    for _, block in embeddings.blocks():
        digest.update(block)
    if digest.hexdigest() != header["vectors_sha256"]:
        return f"{header['vectors_file']} was modified after it was written{fix}"
    return None
