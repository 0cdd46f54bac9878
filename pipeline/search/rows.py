"""The corpus by ``row_id`` for search: the columns a hit shows, the kept fields it carries, and the rows a
filter keeps, computed once per distinct filter from columns prepared for comparison (text as categorical
codes, numbers, times as integers) so a filtered query does not scan strings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.artifacts.fields import BASE_COLUMNS, FieldInfo, json_value
from pipeline.search.filters import Condition, FilterError, condition_key, typed_conditions

MEMO = 64  # distinct filters whose rows are remembered


class Column:
    """One field ready for comparisons: ``values`` (int64 codes for text, int64 for integers and for times
    in microseconds, float64 for floats and booleans as 1/0) and where it is missing."""

    def __init__(self, series: pd.Series, info: FieldInfo) -> None:
        self.info = info
        self.missing = series.isna().to_numpy()
        self.categories: pd.Index | None = None
        if info.kind == "string":
            codes = pd.Categorical(series.astype(object))
            self.values, self.categories = np.asarray(codes.codes, dtype=np.int64), codes.categories
        elif info.kind == "timestamp":
            stamps = pd.to_datetime(series, utc=True).dt.tz_convert(None).dt.as_unit("us")
            self.values = stamps.to_numpy().view(np.int64)
        elif info.kind == "integer":
            self.values = series.fillna(0).to_numpy(dtype=np.int64)
        else:
            self.values = series.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)

    def encode(self, value: Any) -> Any:
        """A typed filter value in this column's encoding (None: a text value no row has)."""
        if self.categories is not None:
            at = self.categories.get_indexer([value])[0]
            return None if at < 0 else int(at)
        if self.info.kind == "boolean":
            return float(value)
        return value

    def test(self, condition: Condition) -> np.ndarray:
        present = ~self.missing
        if condition.op == "missing":
            return self.missing.copy() if condition.value else present
        if condition.op == "in":
            wanted = [v for v in map(self.encode, condition.value) if v is not None]
            if self.values.dtype == np.int64:  # 3.5 is no integer's value (a cast would make it 3)
                wanted = [int(v) for v in wanted if float(v).is_integer()]
            return present & np.isin(self.values, np.asarray(wanted, dtype=self.values.dtype))
        value = self.encode(condition.value)
        if value is None:  # a text no row has: eq matches nothing, ne every present row
            return present if condition.op == "ne" else np.zeros(len(present), dtype=bool)
        compare = {
            "eq": np.equal,
            "ne": np.not_equal,
            "gt": np.greater,
            "gte": np.greater_equal,
            "lt": np.less,
            "lte": np.less_equal,
        }[condition.op]
        return present & compare(self.values, value)


class CorpusRows:
    """The corpus by ``row_id``: the columns a hit shows, looked up without a pandas join per query, and
    the rows a filter keeps."""

    SHOWN = ("id", "label", "split", "text")

    def __init__(self, corpus: pd.DataFrame, fields: Sequence[FieldInfo] = ()) -> None:
        self.row_ids = corpus["row_id"].to_numpy(dtype=np.int64)
        self._where = pd.Index(self.row_ids)
        self._columns = {
            name: corpus[name].astype(object).where(corpus[name].notna(), None).to_numpy()
            for name in self.SHOWN
            if name in corpus
        }
        known = {f.name for f in fields}
        implied = [FieldInfo(n, "integer" if n in ("row_id", "line") else "string") for n in BASE_COLUMNS]
        self.fields = [*(f for f in implied if f.name in corpus and f.name not in known and f.name != "text"),
                       *(f for f in fields if f.name in corpus)]  # fmt: skip
        self.kept = [f.name for f in self.fields if f.name not in BASE_COLUMNS]
        self._kept_values = {name: corpus[name].array for name in self.kept}  # typed; a hit converts its own
        self._frame = corpus
        self._prepared: dict[str, Column] = {}
        self._filters: dict[tuple[Any, ...], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.row_ids)

    def positions(self, row_ids: np.ndarray) -> np.ndarray:
        """Corpus positions of ``row_ids``; -1 where a row id is not in the corpus."""
        return self._where.get_indexer(np.asarray(row_ids, dtype=np.int64))

    def records(self, row_ids: Sequence[int]) -> list[dict[str, Any]]:
        """``row_id``, the shown columns (None for a missing value) and the kept ``fields`` of each row."""
        positions = self.positions(np.asarray(row_ids, dtype=np.int64))
        return [
            {
                "row_id": int(row_id),
                **{name: column[p] for name, column in self._columns.items()},
                "fields": {name: json_value(values[p]) for name, values in self._kept_values.items()},
            }
            for row_id, p in zip(row_ids, positions, strict=True)
        ]

    def column(self, name: str) -> Column:
        if name not in self._prepared:
            info = next(f for f in self.fields if f.name == name)
            self._prepared[name] = Column(self._frame[name], info)
        return self._prepared[name]

    def matching(self, conditions: Sequence[Condition]) -> np.ndarray:
        """A boolean per corpus position: does the row pass every (raw) condition?"""
        return self._passing(typed_conditions(conditions, self.fields))

    def _passing(self, typed: Sequence[Condition]) -> np.ndarray:
        keep = np.ones(len(self.row_ids), dtype=bool)
        for condition in typed:
            keep &= self.column(condition.field).test(condition)
        return keep

    def allowed(self, conditions: Sequence[Condition]) -> np.ndarray | None:
        """A boolean per row id (indexable by row id) of the rows the conditions keep; None for none."""
        if not conditions:
            return None
        typed = typed_conditions(conditions, self.fields)  # typed once: an `in` may list 100,000 row ids
        key = condition_key(typed)
        if key not in self._filters:
            allowed = np.zeros(int(self.row_ids.max(initial=-1)) + 1, dtype=bool)
            allowed[self.row_ids[self._passing(typed)]] = True
            if len(self._filters) >= MEMO:  # bounded: every distinct filter costs one pass
                self._filters.clear()
            self._filters[key] = allowed
        return self._filters[key]


__all__ = ["Column", "CorpusRows", "FilterError"]
