"""The corpus' kept fields: the columns beyond id, text, label and split that ingest keeps (Twitter's
``created_at``, ``author``, ``lang``, ``retweet``, ``reply``, ``quote``, and ``--keep-col`` columns), each
with one of five kinds, read from the parquet schema so every consumer (filters, hits, maps) agrees.

The fingerprints split the corpus by what depends on it: embeddings on the texts (``corpus.texts_hash``),
probes on texts, labels and splits (``labels_fingerprint``), map pages on the kept fields too
(``fields_fingerprint``), so keeping another column re-embeds and refits nothing.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BASE_COLUMNS = ("row_id", "id", "text", "label", "split", "source", "line")
TWITTER_FIELDS = ("created_at", "author", "lang", "retweet", "reply", "quote")
FIELD_KINDS = ("timestamp", "integer", "float", "boolean", "string")
LABEL_COLUMNS = ("row_id", "text", "label", "split")


@dataclass(frozen=True)
class FieldInfo:
    """One filterable column and its kind (one of ``FIELD_KINDS``)."""

    name: str
    kind: str

    @property
    def ordered(self) -> bool:
        """Ranges (gte, lt, ...) make sense on it."""
        return self.kind in ("timestamp", "integer", "float")


def kind_of(arrow_type: Any) -> str:
    """An Arrow type -> its field kind."""
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "timestamp"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "float"
    return "string"


def schema_fields(path: Path) -> list[FieldInfo]:
    """Every column of a corpus file but ``text``, with its kind: what a filter may name."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    return [FieldInfo(f.name, kind_of(f.type)) for f in schema if f.name != "text"]


def kept_fields(path: Path) -> list[FieldInfo]:
    """The kept fields only (not the corpus' own columns): what hits, items and maps show beside a tweet."""
    return [f for f in schema_fields(path) if f.name not in BASE_COLUMNS]


def json_value(value: Any) -> Any:
    """A corpus value as JSON shows it: timestamps as ISO 8601 in UTC ('2021-06-01T12:00:00Z'), missing
    values (None, NaN, NaT) as null, numpy scalars as Python ones."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value) if not np.isnat(value) else None
        if value is None:
            return None
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
        return stamp.isoformat().replace("+00:00", "Z")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _fingerprint(path: Path, columns: list[str]) -> str:
    """sha256 over the given columns' Arrow IPC bytes, row group by row group (names included)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    digest = hashlib.sha256(repr(columns).encode())
    source = pq.ParquetFile(path)
    for group in range(source.num_row_groups):
        table = source.read_row_group(group, columns=columns)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()


def labels_fingerprint(path: Path) -> str:
    """Hash of row ids, texts, labels and splits: what probes depend on (kept fields left out)."""
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    return _fingerprint(path, [c for c in LABEL_COLUMNS if c in names])


def fields_fingerprint(path: Path) -> str:
    """Hash of the kept fields (and row ids): what a map page's colours and lists depend on."""
    return _fingerprint(path, ["row_id", *(f.name for f in kept_fields(path))])
