"""Embedding shards: each chunk of rows is written as soon as it is encoded (atomically), so memory holds
one chunk at a time and a killed run resumes from the last finished shard.

Shards live in the run's shard folder and carry the hash of the inputs they were made with in their
names (``RunPaths.shard``); shards of other inputs are stale and removed. Once every shard exists they
are assembled into the run's ``embeddings.pt`` (or streamed into its ``vectors.npy`` when they outgrow
memory) and deleted.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.atomic import write_atomic
from pipeline.core.errors import EncajesError
from pipeline.core.layout import RunPaths


def layer_key(j: int) -> str:
    return f"vectors_{j}"


@dataclass
class ShardSet:
    run: RunPaths
    inputs_hash: str
    rows: int
    chunk_size: int

    @property
    def folder(self) -> Path:
        return self.run.shards

    def path(self, start: int) -> Path:
        return self.run.shard(self.inputs_hash, self.chunk_size, start)

    @property
    def starts(self) -> range:
        return range(0, self.rows, self.chunk_size)

    def pending(self) -> list[int]:
        """First rows of the chunks still to encode."""
        return [start for start in self.starts if not self.done(start)]

    def prepare(self) -> int:
        """Remove shards of other inputs; return how many shards of these inputs are already done."""
        self.folder.mkdir(parents=True, exist_ok=True)
        keep = {self.path(s).name for s in self.starts}
        for file in self.folder.iterdir():
            if file.name not in keep:
                file.unlink()
        return sum(self.done(s) for s in self.starts)

    def done(self, start: int) -> bool:
        return self.path(start).exists()

    def write(self, start: int, vectors: np.ndarray, tokens: int, truncated: int) -> None:
        """One chunk's vectors: (rows, dim), or (layers, rows, dim), kept as one array per layer so each
        layer's run reads its own without loading the others."""
        arrays = (
            {"vectors": vectors} if vectors.ndim == 2 else {layer_key(j): v for j, v in enumerate(vectors)}
        )

        def save(tmp: Path) -> None:
            with tmp.open("wb") as handle:
                np.savez(handle, **arrays, tokens=np.int64(tokens), truncated=np.int64(truncated))

        write_atomic(self.path(start), save)

    def read(self, dim: int, layer: int | None = None) -> Iterator[tuple[np.ndarray, int, int]]:
        """(vectors, tokens, truncated) per shard, in row order, of the ``layer``-th layer of shards
        written with several; a shard of the wrong shape is an error."""
        key = "vectors" if layer is None else layer_key(layer)
        for start in self.starts:
            with np.load(self.path(start), allow_pickle=False) as shard:
                vectors = shard[key]
                expected = min(self.chunk_size, self.rows - start)
                if vectors.shape != (expected, dim):
                    raise EncajesError(
                        f"Shard {self.path(start).name} has shape {vectors.shape}, not "
                        f"({expected}, {dim}): run embed with --force."
                    )
                yield vectors, int(shard["tokens"]), int(shard["truncated"])

    def assemble(self, dim: int, layer: int | None = None) -> tuple[np.ndarray, int, int]:
        """All shards in row order -> (vectors, tokens, truncated)."""
        out = np.empty((self.rows, dim), dtype=np.float32)
        tokens = truncated = 0
        shards = zip(self.starts, self.read(dim, layer), strict=True)
        for start, (vectors, shard_tokens, shard_truncated) in shards:
            out[start : start + len(vectors)] = vectors
            tokens += shard_tokens
            truncated += shard_truncated
        return out, tokens, truncated

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def remove_if_empty(self) -> None:
        """After a failed start: no shard written means no trace left, not an empty run folder that
        `status` would list."""
        for folder in (self.folder, self.run.root):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
