"""Filters on the corpus' fields, structured end to end: ``--where 'lang=es'`` on the command line,
``where={"lang": "es"}`` in Python and ``"filter": {"lang": "es"}`` over HTTP all become the same
``Condition`` list, checked against the corpus' fields and their kinds. No text of a filter is ever run as
SQL or code: a condition is a field name, an operator from a fixed set and a typed value.

Operators: eq, ne, in, gt, gte, lt, lte (numbers and times) and missing (true: the field has no value,
false: it has one). A missing value matches no comparison (as in SQL); ``ne`` keeps rows that have a value
and a different one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.artifacts.fields import FieldInfo
from pipeline.core.errors import EncajesError

OPERATORS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "missing")
RANGES = ("gt", "gte", "lt", "lte")
MAX_IN_VALUES = 100_000  # values one `in` may list (a map selection of row ids)
TRUE, FALSE = ("true", "yes", "1", "t", "y"), ("false", "no", "0", "f", "n")
INT64 = (-(2**63), 2**63 - 1)
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
CLAUSE = re.compile(r"\s*(?P<field>[A-Za-z_][\w.]*)\s*(?P<op>>=|<=|!=|==|=|>|<)\s*(?P<value>.*?)\s*")
IN_CLAUSE = re.compile(r"\s*(?P<field>[A-Za-z_][\w.]*)\s+(?P<neg>not\s+)?in\s*\(?(?P<values>.*?)\)?\s*", re.I)
IS_CLAUSE = re.compile(r"\s*(?P<field>[A-Za-z_][\w.]*)\s+is\s+(?P<what>missing|present)\s*", re.I)
SYMBOLS = {"=": "eq", "==": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
WHERE_HELP = (
    "a condition on a kept field: 'lang=es', 'created_at>=2021-06-01', 'author in (el_pais, abc_es)', "
    "'retweet=false', 'likes<10', 'place is missing'"
)


class FilterError(EncajesError):
    """A filter that cannot be applied as given (unknown field, wrong type, unknown operator)."""


@dataclass(frozen=True)
class Condition:
    """One test on one field: ``value`` is typed for the field (a list for ``in``, a bool for missing)."""

    field: str
    op: str
    value: Any


def parse_where(clauses: Sequence[str]) -> list[Condition]:
    """``--where`` texts -> raw conditions (values still text; ``typed_conditions`` types them)."""
    out = []
    for clause in clauses:
        if match := IS_CLAUSE.fullmatch(clause):
            out.append(Condition(match["field"], "missing", match["what"].lower() == "missing"))
        elif match := IN_CLAUSE.fullmatch(clause):
            values = [v.strip().strip("'\"") for v in match["values"].split(",") if v.strip()]
            if ("(" in clause) != (")" in clause):
                raise FilterError(f"--where {clause!r}: open and close the list, e.g. 'author in (a, b)'.")
            if match["neg"]:
                raise FilterError(f"--where {clause!r}: 'not in' is not supported; use != per value.")
            out.append(Condition(match["field"], "in", values))
        elif match := CLAUSE.fullmatch(clause):
            value = match["value"].strip("'\"")
            out.append(Condition(match["field"], SYMBOLS[match["op"]], value))
        else:
            raise FilterError(f"--where {clause!r} is not a condition: give {WHERE_HELP}.")
    return out


def conditions_from(mapping: Mapping[str, Any] | None) -> list[Condition]:
    """``{"lang": "es", "created_at": {"gte": "2021-06-01"}, "author": {"in": [...]}, "place": None}`` ->
    conditions. A bare value means eq, a list means in, None means missing."""
    out: list[Condition] = []
    for name, spec in (mapping or {}).items():
        if not isinstance(name, str):
            raise FilterError(f"Filter field names are text (got {name!r}).")
        if isinstance(spec, Mapping):
            if not spec:
                raise FilterError(f"Filter on {name!r} is empty: give one of {', '.join(OPERATORS)}.")
            for op, value in spec.items():
                if op not in OPERATORS:
                    raise FilterError(
                        f"Unknown filter operator {op!r} on {name!r}: use one of {', '.join(OPERATORS)}."
                    )
                out.append(Condition(name, op, value))
        elif spec is None:
            out.append(Condition(name, "missing", True))
        elif isinstance(spec, list | tuple):
            out.append(Condition(name, "in", list(spec)))
        else:
            out.append(Condition(name, "eq", spec))
    return out


def typed_conditions(conditions: Sequence[Condition], fields: Sequence[FieldInfo]) -> list[Condition]:
    """Conditions with their values typed for their fields; an unknown field, a range on text or a value
    that is not of the field's kind is a ``FilterError`` that says what to give."""
    kinds = {f.name: f for f in fields}
    out = []
    for condition in conditions:
        info = kinds.get(condition.field)
        if condition.field == "text":
            raise FilterError("The text is what a query searches by meaning, not a field to filter on.")
        if info is None:
            known = ", ".join(sorted(kinds))
            raise FilterError(
                f"No field {condition.field!r} to filter on: the corpus has {known}. Keep more fields at "
                "ingest with --keep-col."
            )
        if condition.op in RANGES and not info.ordered:
            raise FilterError(
                f"{condition.field!r} is {info.kind}: ranges ({condition.op}) need a number or a time; "
                "use eq or in."
            )
        if info.kind == "timestamp" and condition.op == "eq" and DAY.fullmatch(str(condition.value).strip()):
            day = pd.Timestamp(str(condition.value).strip(), tz="UTC")  # a date means that whole day
            out.append(Condition(condition.field, "gte", micros(day)))
            out.append(Condition(condition.field, "lt", micros(day + pd.Timedelta(days=1))))
            continue
        out.append(Condition(condition.field, condition.op, _typed(condition, info)))
    return out


def _typed(condition: Condition, info: FieldInfo) -> Any:
    if condition.op == "missing":
        return _boolean(condition.value, condition, "(missing)")
    if condition.op == "in":
        values = condition.value
        if not isinstance(values, list | tuple) or not values:
            raise FilterError(f"'in' on {condition.field!r} takes a non-empty list of values.")
        if len(values) > MAX_IN_VALUES:
            raise FilterError(f"'in' on {condition.field!r} lists {len(values):,} values; at most "
                              f"{MAX_IN_VALUES:,}.")  # fmt: skip
        return [_value(v, condition, info) for v in values]
    return _value(condition.value, condition, info)


def _value(value: Any, condition: Condition, info: FieldInfo) -> Any:
    """One value as the field's kind (times in UTC; a date alone means its midnight UTC)."""
    where = f"{condition.field!r} ({info.kind})"
    if value is None or isinstance(value, dict | list):
        raise FilterError(f"Filter value for {where} must be a single value (got {value!r}).")
    if info.kind == "timestamp":
        try:
            stamp = pd.Timestamp(value) if isinstance(value, str) else pd.NaT
        except (ValueError, TypeError):
            stamp = pd.NaT
        if pd.isna(stamp):
            raise FilterError(
                f"{value!r} is not a time for {where}: give e.g. 2021-06-01 or 2021-06-01T12:00Z."
            )
        return micros(stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC"))
    if info.kind in ("integer", "float"):
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (ValueError, TypeError):
            raise FilterError(f"{value!r} is not a number for {where}.") from None
        if info.kind == "integer" and number.is_integer():  # exact past 2**53 (tweet ids)
            exact = (
                int(value)
                if isinstance(value, int) or str(value).strip().lstrip("+-").isdigit()
                else int(number)
            )
            if not INT64[0] <= exact <= INT64[1]:
                raise FilterError(f"{value!r} is beyond the range of {where} (64-bit integers).")
            return exact
        return number
    if info.kind == "boolean":
        return _boolean(value, condition, "(boolean)")
    if isinstance(value, bool):  # as ingest writes a boolean read into a text column
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _boolean(value: Any, condition: Condition, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise FilterError(f"{value!r} is not true or false for {condition.field!r} {where}.")


def micros(stamp: pd.Timestamp) -> int:
    """A UTC time as microseconds since 1970, the unit ingest stores: exact from year 1 to 9999 (pandas'
    nanoseconds end in 2262)."""
    return int(
        np.datetime64(stamp.tz_convert("UTC").tz_localize(None).as_unit("us").to_datetime64(), "us").astype(
            np.int64
        )
    )


def condition_key(conditions: Sequence[Condition]) -> tuple[Any, ...]:
    """A hashable key of typed conditions (a memo of row masks), the same whatever their order."""

    def frozen(value: Any) -> Any:
        return tuple(frozen(v) for v in value) if isinstance(value, list | tuple) else value

    return tuple(sorted((c.field, c.op, frozen(c.value)) for c in conditions))
