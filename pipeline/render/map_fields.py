"""A corpus' kept fields as a map page colours and lists them: categories (strings, booleans) as the
most frequent values in the label palette with the rest grey, times and numbers on one continuous scale
between their minimum and maximum; missing values grey in both. Frames in, JSON-ready values out: the
kinds come from the caller (the corpus schema) or, failing that, from the pandas dtypes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.render.map_style import MISSING_COLOR, OTHER_COLOR, PALETTE, SCALE_STOPS

CATEGORY_KINDS = ("string", "boolean")
CONTINUOUS_KINDS = ("timestamp", "integer", "float")


def field_kind(values: pd.Series) -> str:
    """The field kind (``timestamp``, ``integer``, ``float``, ``boolean``, ``string``) of a column read
    from parquet: booleans with gaps come back as objects, so those are looked at value by value."""
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    present = values.dropna()
    if len(present) and all(isinstance(v, bool | np.bool_) for v in present):
        return "boolean"
    return "string"


@dataclass(frozen=True)
class CategoryField:
    """A string or boolean field: ``values`` every distinct value, most frequent first (ties by value),
    ``codes`` each point's place in it (-1: missing); the first ``top`` values are coloured."""

    name: str
    kind: str
    values: list[str]
    codes: list[int]
    top: int
    counts: list[int]  # the coloured values' counts
    other: int  # points whose value is past the coloured ones
    missing: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "scale": "category",
            "values": self.values,
            "codes": self.codes,
            "top": self.top,
            "counts": self.counts,
            "colors": list(PALETTE[: self.top]),
            "other": self.other,
            "other_color": OTHER_COLOR,
            "missing": self.missing,
            "missing_color": MISSING_COLOR,
        }


@dataclass(frozen=True)
class ContinuousField:
    """A time or number field: each point's value (times in seconds since 1970 UTC, ``None``: missing)
    and the range the colour scale spans."""

    name: str
    kind: str
    values: list[float | int | None]
    low: float | None
    high: float | None
    missing: int
    log: bool = False  # counts spread over orders of magnitude: coloured by log(1 + value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "scale": "continuous",
            "values": self.values,
            "min": self.low,
            "max": self.high,
            "log": self.log,
            "stops": list(SCALE_STOPS),
            "missing": self.missing,
            "missing_color": MISSING_COLOR,
        }


LOG_SPREAD = 100  # a maximum this many times the median: followers, likes; a linear scale would be one colour


def category_field(name: str, kind: str, values: pd.Series, top: int) -> CategoryField:
    """The ``top`` most frequent values coloured (at most one per palette colour), the rest grey."""
    present = values.notna().to_numpy()
    shown = values[present].map(lambda v: ("true" if v else "false") if kind == "boolean" else str(v))
    counts = shown.value_counts()
    order = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    names = [str(value) for value, _ in order]
    coloured = max(0, min(top, len(PALETTE), len(names)))
    codes = np.full(len(values), -1, dtype=np.int64)
    codes[present] = pd.Index(names).get_indexer(shown.to_numpy())
    return CategoryField(
        name,
        kind,
        names,
        codes.tolist(),
        coloured,
        [int(count) for _, count in order[:coloured]],
        int(sum(count for _, count in order[coloured:])),
        int((~present).sum()),
    )


def continuous_field(name: str, kind: str, values: pd.Series) -> ContinuousField:
    """Numbers as they are (whole numbers as ints), times as seconds since 1970 UTC; NaN and infinities
    count as missing, since JSON has no spelling for them."""
    if kind == "timestamp":
        stamps = pd.to_datetime(values, utc=True)
        present = stamps.notna().to_numpy()
        numbers = np.full(len(values), np.nan)
        since = (stamps[present] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        numbers[present] = since.to_numpy(dtype=np.int64) / 1000
    else:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        present = np.isfinite(numbers)
    whole = kind == "integer" or (kind == "timestamp" and np.all(numbers[present] % 1 == 0))
    listed = [(int(v) if whole else float(v)) if ok else None for v, ok in zip(numbers, present, strict=True)]
    if not present.any():
        return ContinuousField(name, kind, listed, None, None, len(values))
    low, high = float(numbers[present].min()), float(numbers[present].max())
    middle = float(np.median(numbers[present]))
    log = kind != "timestamp" and low >= 0 and (high + 1) / (middle + 1) > LOG_SPREAD
    return ContinuousField(name, kind, listed, low, high, int((~present).sum()), log)


def encode_fields(
    fields: pd.DataFrame, kinds: Mapping[str, str] | None = None, top: int = 10
) -> list[dict[str, Any]]:
    """Each column of ``fields`` (one row per point on the map) as the page colours and lists it."""
    out: list[dict[str, Any]] = []
    for name in fields.columns:
        column = fields[name].reset_index(drop=True)
        kind = (kinds or {}).get(str(name)) or field_kind(column)
        if kind in CONTINUOUS_KINDS:
            out.append(continuous_field(str(name), kind, column).to_dict())
        else:
            out.append(category_field(str(name), kind, column, top).to_dict())
    return out
