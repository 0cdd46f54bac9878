"""The writer side of the embed stage: encoded chunks into shards as they come, finished shards into a
run's vectors (inside ``embeddings.pt``, or streamed into a ``vectors.npy`` beyond memory)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from pipeline.artifacts.store import (
    IN_MEMORY_LIMIT_BYTES,
    Embeddings,
    save_embeddings,
    save_embeddings_streamed,
)
from pipeline.core.layout import RunPaths
from pipeline.stages.embed.shards import ShardSet


def write_shards(chunks: Iterator[Any], shards: ShardSet) -> tuple[int, int]:
    """Each encoded chunk to its shard as it comes; returns the rows and tokens encoded."""
    rows = tokens = 0
    for chunk in chunks:
        shards.write(chunk.start, chunk.vectors, chunk.tokens, chunk.truncated)
        rows += chunk.rows
        tokens += chunk.tokens
    return rows, tokens


def store_for(store: str, rows: int, dim: int) -> str:
    if store == "auto":
        return "npy" if rows * dim * 4 > IN_MEMORY_LIMIT_BYTES else "pt"
    return store


def save_vectors(
    store: str,
    run: RunPaths,
    shards: ShardSet,
    dim: int,
    row_ids: np.ndarray,
    meta: dict[str, Any],
    layer: int | None = None,
) -> int:
    """Finished shards (their ``layer``-th layer, for shards of several) -> the run's vectors in the
    chosen store; returns how many texts were truncated."""
    run.root.mkdir(parents=True, exist_ok=True)
    if store == "pt":
        vectors, _, truncated = shards.assemble(dim, layer)
        save_embeddings(run.embeddings, Embeddings(vectors, row_ids, meta))
        run.vectors.unlink(missing_ok=True)  # a vectors.npy of an earlier run is no longer pointed to
        return truncated
    truncated = 0

    def blocks() -> Iterator[np.ndarray]:
        nonlocal truncated
        for vectors, _, shard_truncated in shards.read(dim, layer):
            truncated += shard_truncated
            yield vectors

    save_embeddings_streamed(run.embeddings, run.vectors, blocks(), shards.rows, dim, row_ids, meta)
    return truncated
