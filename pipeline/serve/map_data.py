"""GET /map's answer: a run's map as the serve page's map view draws it, the same data umap.html
carries (``umap_page.page_data``: positions, label codes and legend, kept fields for colouring and for
the selection list) without the texts, which the page asks GET /items for, for the rows it lists.
Building it reads the corpus' kept fields, so answers are kept per file version."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.artifacts.fields import kept_fields
from pipeline.artifacts.label_names import load_label_names
from pipeline.core.layout import Workdir
from pipeline.render.figures import label_names
from pipeline.render.map_file import read_map_meta
from pipeline.render.umap_page import page_data

DEFAULT_MAP_LABELS = 10  # a map written before umap.parquet kept its settings


def map_points(umap_path: Path, corpus_path: Path, limit: int = 100_000) -> dict[str, Any]:
    """The map of ``umap_path`` (at most ``limit`` points: a seeded sample, in row id order, legend
    counts over the whole map) with the kept fields of ``corpus_path``'s rows; see ``page_data``."""
    return dict(_cached(*_version(umap_path), *_version(corpus_path), limit))


def map_points_json(umap_path: Path, corpus_path: Path, limit: int = 100_000) -> bytes:
    """``map_points`` as JSON bytes, serialised once per file version (100k points: megabytes)."""
    return _cached_json(*_version(umap_path), *_version(corpus_path), limit)


def _version(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=4)
def _cached_json(*key: Any) -> bytes:
    return json.dumps(_cached(*key), ensure_ascii=False, allow_nan=False).encode("utf-8")


@lru_cache(maxsize=4)
def _cached(umap: str, _m: int, _s: int, corpus: str, _cm: int, _cs: int, limit: int) -> dict[str, Any]:
    frame = pd.read_parquet(umap, columns=["row_id", "x", "y", "label"])
    counts = label_names(frame).value_counts()
    if len(frame) > limit:
        frame = frame.sample(limit, random_state=0).sort_values("row_id")
    meta = read_map_meta(Path(umap))
    fields, kinds = kept_of(Path(corpus), frame["row_id"].to_numpy())
    names = load_label_names(Workdir.at(Path(corpus).parent))
    top = meta.map_labels if meta else DEFAULT_MAP_LABELS
    data = page_data(frame.reset_index(drop=True), counts, top, names, fields, kinds)
    data["sampled"] = len(frame) < data["total"]
    data["id"] = ids_of(Path(corpus), frame["row_id"].to_numpy())
    return data


def ids_of(corpus: Path, row_ids: np.ndarray) -> list[str | None]:
    """The tweet ids of the rows ``row_ids`` (None for a row the corpus no longer has)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(corpus, columns=["row_id", "id"])
    positions = pd.Index(table.column("row_id").to_numpy()).get_indexer(row_ids)
    return table.column("id").take(pa.array(positions, mask=positions < 0)).to_pylist()


def kept_of(corpus: Path, row_ids: np.ndarray) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """The kept fields of the rows ``row_ids`` (a row the corpus no longer has: missing values)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kept = kept_fields(corpus)
    if not kept:
        return None, {}
    table = pq.read_table(corpus, columns=["row_id", *(f.name for f in kept)])
    positions = pd.Index(table.column("row_id").to_numpy()).get_indexer(row_ids)
    taken = table.drop(["row_id"]).take(pa.array(positions, mask=positions < 0))
    return taken.to_pandas(), {f.name: f.kind for f in kept}
