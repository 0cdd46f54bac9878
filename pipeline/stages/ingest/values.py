"""A kept field's value -> its kind (timestamp, integer, float, boolean, string), or the news that it is
not one. Pure: no files. The same rules parse a CSV's strings and a JSON or parquet record's native
values, so a column keeps one type whatever file it came from, and a value that does not fit is caught
(never written as text).

Missing is not wrong: None, an empty (or blank) string and a float NaN are null in every kind.
Timestamps are Twitter v1.1's ``Wed Oct 10 20:19:24 +0000 2018`` or ISO 8601 (v2's
``2021-06-01T12:00:00.000Z``, offsets, plain dates), always stored in UTC; a time without an offset is
read as UTC. Booleans are true/false/yes/no/1/0 (any case) when the kind is asked for, but inference tries
integers first, so a column of 1s and 0s infers as integer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

KIND_ORDER = ("integer", "float", "boolean", "timestamp")  # inference tries these, then string
INT64 = (-(1 << 63), (1 << 63) - 1)
INTEGER = re.compile(r"[+-]?\d+")
FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
TRUE, FALSE = {"true", "yes", "1"}, {"false", "no", "0"}
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {name: f"{number:02d}" for number, name in enumerate(MONTH_NAMES, start=1)}
EPOCH, MICROSECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
NOUNS = {"timestamp": "a timestamp", "integer": "an integer", "float": "a float", "boolean": "a boolean"}


class NotOfKind(ValueError):
    """A value that is present but does not parse as the field's kind."""


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def v11_as_iso(text: str) -> str | None:
    """Twitter v1.1's ``Wed Oct 10 20:19:24 +0000 2018`` rewritten as ISO 8601 (which ``fromisoformat``
    parses and checks many times faster than a pattern or ``strptime``), or None when not in that form."""
    if len(text) != 30 or text[20] not in "+-":
        return None
    month = MONTHS.get(text[4:7])
    if (
        month is None
        or text[3] != " "
        or text[7] != " "
        or text[10] != " "
        or text[19] != " "
        or text[25] != " "
    ):
        return None
    return text[26:] + "-" + month + "-" + text[8:10] + "T" + text[11:19] + text[20:23] + ":" + text[23:25]


def parse_timestamp(value: Any) -> datetime:
    """Twitter v1.1's format, ISO 8601, or a datetime/date already (parquet) -> an aware UTC datetime."""
    if isinstance(value, str):
        text = value.strip()
        try:
            stamp = datetime.fromisoformat(v11_as_iso(text) or text)
        except ValueError:
            raise NotOfKind from None
    elif isinstance(value, datetime):
        stamp = value
    elif isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        raise NotOfKind
    zone = stamp.tzinfo
    return stamp.replace(tzinfo=UTC) if zone is None else stamp if zone is UTC else stamp.astimezone(UTC)


def parse_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise NotOfKind
    if isinstance(value, float) and value.is_integer():  # parquet reads an int column with nulls as floats
        value = int(value)
    if isinstance(value, str) and INTEGER.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, int) and INT64[0] <= value <= INT64[1]:
        return value
    raise NotOfKind


def parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise NotOfKind
    if isinstance(value, str) and FLOAT.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    raise NotOfKind


def parse_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        said = str(value).strip().lower()
        if said in TRUE or said in FALSE:
            return said in TRUE
    raise NotOfKind


def parse_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


PARSERS = {
    "timestamp": parse_timestamp,
    "integer": parse_integer,
    "float": parse_float,
    "boolean": parse_boolean,
    "string": parse_string,
}


def to_kind(value: Any, kind: str) -> Any:
    """The value as its kind, None when missing; ``NotOfKind`` when it is there but is not one."""
    return None if is_missing(value) else PARSERS[kind](value)


def fits(value: Any, kind: str) -> bool:
    try:
        PARSERS[kind](value)
    except NotOfKind:
        return False
    return True


def infer_kind(values: Iterable[Any]) -> str:
    """The first kind of ``KIND_ORDER`` that all but one in a hundred of the (non-missing) values parse
    as, else string: one 'lots' among follower counts is a bad value (a reject, with its reason), not a
    reason to keep every count as text. Whole numbers beside a few fractions are floats."""
    sample = [v for v in values if not is_missing(v)]
    for kind in KIND_ORDER:
        misfits = [v for v in sample if not fits(v, kind)]
        if not sample or len(misfits) > len(sample) // 100:
            continue
        if kind == "integer" and misfits and all(fits(v, "float") for v in misfits):
            continue  # 3 and 3.5: floats
        return kind
    return "string"


def arrow_type(kind: str) -> Any:
    """How the corpus stores a kind (``pipeline.artifacts.fields.kind_of`` reads it back)."""
    import pyarrow as pa

    return {
        "timestamp": pa.timestamp("us", tz="UTC"),
        "integer": pa.int64(),
        "float": pa.float64(),
        "boolean": pa.bool_(),
        "string": pa.string(),
    }[kind]


def arrow_array(values: list[Any], kind: str) -> Any:
    """A kept field's values (``to_kind``'s) as an Arrow array of its type. Timestamps go as microseconds
    since the epoch: Arrow converting aware datetimes itself sets up time zones first, a fixed cost
    larger than converting the whole group."""
    import pyarrow as pa

    if kind == "timestamp":
        values = [None if v is None else (v - EPOCH) // MICROSECOND for v in values]
    return pa.array(values, type=arrow_type(kind))


def shown(value: Any, limit: int = 60) -> str:
    """A bad value as a reject's message quotes it: repr, cut short."""
    text = repr(value) if isinstance(value, str) else repr(parse_string(value))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def not_of_kind_message(name: str, value: Any, kind: str) -> str:
    """``created_at: 'yesterday' is not a timestamp``."""
    return f"{name}: {shown(value)} is not {NOUNS.get(kind, kind)}"
