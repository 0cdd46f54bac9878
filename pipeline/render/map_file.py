"""``umap.parquet`` (row_id, x, y, label) with what made it in its schema metadata: the projection's
key (the embeddings' hash and the UMAP settings) and the map's settings. A plot whose key is unchanged
(only labels, label names or kept fields changed) reuses the coordinates instead of running UMAP again,
and the serve page colours the map as the stage did."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from pipeline.core.atomic import write_atomic

META_KEY = b"encajes.map"


@dataclass(frozen=True)
class ProjectionKey:
    """What UMAP coordinates depend on, and nothing else."""

    embeddings_sha256: str
    n_neighbors: int
    min_dist: float
    seed: int
    fit_rows: int


@dataclass(frozen=True)
class MapMeta:
    key: ProjectionKey
    fitted_rows: int  # rows UMAP was fitted on when the coordinates were computed
    map_labels: int  # labels the pages colour


def write_map(frame: pd.DataFrame, target: Path, meta: MapMeta) -> None:
    """``frame`` as parquet (atomically), ``meta`` in its schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    extra = {META_KEY: json.dumps(asdict(meta), sort_keys=True).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    write_atomic(target, lambda tmp: pq.write_table(table, tmp))


def read_map_meta(path: Path) -> MapMeta | None:
    """The metadata ``write_map`` stored, or None (a map written before it was kept, or damaged)."""
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
        if raw is None:
            return None
        data = json.loads(raw)
        return MapMeta(ProjectionKey(**data["key"]), int(data["fitted_rows"]), int(data["map_labels"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
