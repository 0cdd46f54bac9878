"""JSON lines (plain or gzipped), JSON arrays, Twitter API v2 pages and parquet -> the same stream of
records that ``csv_reader`` gives, so ingest keeps one path for checks, accounting and rejects.

Records are objects; a column is a key or a dotted path into nested objects (``user.lang``). Twitter's
conventions apply when a column is left at its default: the text is ``retweeted_status.full_text`` for
a retweet (its own text is cut), else ``full_text``, ``extended_tweet.full_text``, then ``text``; the id is
``id_str`` before ``id`` (a JSON number loses digits in many readers). JSON lines, JSON arrays and
parquet stream record by record; a v2 page (at most 100 tweets) is read whole.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.artifacts.label_names import NAME_COLUMNS
from pipeline.core.errors import EncajesError
from pipeline.core.settings import Columns
from pipeline.stages.ingest.csv_reader import (
    GZIP_ERRORS,
    CsvStream,
    Record,
    Reject,
    broken_gzip,
    codec_of,
    not_decodable,
    open_bytes,
    read_lines,
)
from pipeline.stages.ingest.reject_reasons import invalid_json, no_text_field, not_an_object
from pipeline.stages.ingest.twitter import page_users

TEXT_PATHS = ("retweeted_status.full_text", "full_text", "extended_tweet.full_text", "text")
ID_PATHS = ("id_str", "id")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")
Found = tuple[int, Any, str, dict[str, str] | None]  # line or position, value (or error), raw, page users


def record_kind(path: Path) -> str | None:
    """'json' or 'parquet' when the file is one (by its first bytes, then its name); None for text
    tables (CSV/TSV), which ``csv_reader`` reads."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head == b"PAR1":
        return "parquet"
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as handle:
                inner = handle.read(64).lstrip()
        except (OSError, EOFError):  # a broken gzip: the CSV reader names it
            return None
        return "json" if inner[:1] in (b"{", b"[") else None
    if path.name.lower().endswith(JSON_SUFFIXES):
        return "json"
    with path.open("rb") as handle:
        start = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json" if start[:1] in (b"{", b"[") else None


def lookup(record: dict[str, Any], dotted: str) -> Any:
    """``record["user"]["lang"]`` for ``"user.lang"`` (a key that itself holds dots wins); None if absent."""
    if dotted in record:
        return record[dotted]
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def has_path(record: dict[str, Any], dotted: str) -> bool:
    """Whether the record has the key, even holding null, or a null on the way (``place.country_code`` of
    a tweet whose ``place`` is null): a value that is missing here, not a path that is wrong."""
    if dotted in record:
        return True
    value: Any = record
    for part in dotted.split("."):
        if value is None:
            return True
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a label read back as 3.0 is the label 3
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class Roles:
    """Which key (or keys, tried in order) gives each corpus column, for the columns asked for."""

    def __init__(self, columns: Columns) -> None:
        self.columns = columns
        self.paths = {
            "text": (columns.text,) if columns.text != "text" else TEXT_PATHS,
            "label": (columns.label or "label",),
            "id": (columns.id,) if columns.id else ID_PATHS,
            "split": (columns.split or "split",),
            "label_name": (columns.label_name,) if columns.label_name else NAME_COLUMNS,
        }
        self.header = ["text", "label", "id", "split", columns.label_name or "label_name"]

    def check(self, path: Path, record: dict[str, Any]) -> None:
        """A column named on the command line must exist in the first record: say which keys there are."""
        asked = {"text": self.columns.text if self.columns.text != "text" else None}
        asked |= {"label": self.columns.label, "id": self.columns.id, "split": self.columns.split}
        asked["label_name"] = self.columns.label_name
        for role, name in asked.items():
            if name and lookup(record, name) is None:
                flag = "--text-col" if role == "text" else f"--{role.replace('_', '-')}-col"
                raise EncajesError(
                    f"{path}: the first record has no {name!r}; its keys are {sorted(record)[:20]}. "
                    f"Fix {flag} (nested keys: a.b)."
                )

    def fields(self, record: dict[str, Any]) -> list[str] | None:
        """The record's values in ``header`` order, or None when it holds no text."""
        values = []
        for role in ("text", "label", "id", "split", "label_name"):
            candidates = [v for p in self.paths[role] if (v := lookup(record, p)) is not None]
            found = next((v for v in candidates if v != ""), candidates[0] if candidates else None)
            if role == "text" and not isinstance(found, str):
                return None  # no text key at all (an empty one is an empty text, rejected as such)
            values.append(as_text(found))
        return values


def _open_text(path: Path, encoding: str) -> Any:
    """The whole file as text (gzipped or not), for an array or a document spread over lines."""
    return io.TextIOWrapper(open_bytes(path), encoding=codec_of(encoding), newline="")


def _first_line(path: Path, encoding: str) -> str:
    """The first line that is not blank; a file without one is an error that says which it is."""
    lines, blank = read_lines(path, encoding), 0
    try:
        for line in lines:
            if line.strip():
                return line
            blank += 1
    finally:
        lines.close()
    what = "holds no records (only blank lines)" if blank else "is empty"
    raise EncajesError(f"{path}: the file {what}. Give one JSON object per line (or a JSON array).")


def _json_records(path: Path, encoding: str) -> Iterator[Found]:
    """(line or position, decoded value or the decoding error, raw text, the v2 page's users) for every
    record of the file:
    JSON lines line by line, an array element by element; one object spread over lines (a v2 page, at
    most 100 tweets), whole."""
    first_line = _first_line(path, encoding)
    if first_line.lstrip().startswith("["):
        yield from _array_items(path, encoding)
        return
    try:
        json.loads(first_line)
    except json.JSONDecodeError:
        yield from _whole(path, encoding)  # a pretty-printed object
        return
    number = 0
    for line in read_lines(path, encoding):
        body = line.removesuffix("\n").removesuffix("\r")
        # a bare \r ends a line too, as universal newlines read it: never inside a JSON record
        for raw in body.split("\r") if "\r" in body else (body,):
            number += 1
            if raw.strip():
                yield from _line_records(number, raw)


def _line_records(number: int, raw: str) -> Iterator[Found]:
    """One line's record, or its decoding error; a v2 page on one line gives its tweets."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        yield number, error, raw, None
        return
    if isinstance(value, dict) and isinstance(value.get("data"), list):  # a v2 page per line
        users = page_users(value)
        for item in value["data"]:
            yield number, item, json.dumps(item, ensure_ascii=False), users
    else:
        yield number, value, raw, None


def _array_items(path: Path, encoding: str, block: int = 1 << 20) -> Iterator[Found]:
    """The elements of a top-level JSON array one at a time, reading the file a block at a time, so a
    large array never sits in memory whole (only the element being decoded and one block)."""
    decoder = json.JSONDecoder()
    with _open_text(path, encoding) as handle:
        buffer, at, number, done = handle.read(block).lstrip(), 1, 0, False  # at: past the '['
        while True:
            while at < len(buffer) and buffer[at] in " \t\r\n,":
                at += 1
            if at < len(buffer) and buffer[at] == "]":
                return
            try:
                value, end = decoder.raw_decode(buffer, at)
                if end == len(buffer) and not done:  # a number cut at the block's end decodes too
                    raise json.JSONDecodeError("cut at the block's end", buffer, end)
            except json.JSONDecodeError as error:
                more = "" if done else handle.read(block)
                if not more:
                    done = True
                    raise EncajesError(f"{path}: not valid JSON in element {number + 1} ({error}).") from None
                buffer, at = buffer[at:] + more, 0
                continue
            number += 1
            yield number, value, buffer[at:end], None
            buffer, at = buffer[end:], 0
            if len(buffer) < block // 2 and not done:
                more = handle.read(block)
                done = not more
                buffer += more


def _whole(path: Path, encoding: str) -> Iterator[Found]:
    with _open_text(path, encoding) as handle:
        yield from _document(handle.read(), path)


def _document(text: str, path: Path) -> Iterator[Found]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise EncajesError(
            f"{path}: not valid JSON ({error}). JSON lines need one object per line; an array or a v2 page "
            "must be one valid document."
        ) from None
    page = isinstance(value, dict) and isinstance(value.get("data"), list)
    items, users = (value["data"], page_users(value)) if page else (value, None)
    if not isinstance(items, list):
        items = [items]
    for number, item in enumerate(items, start=1):
        yield number, item, json.dumps(item, ensure_ascii=False), users


def _parquet_records(path: Path) -> Iterator[Found]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
        for row in batch.to_pylist():
            number += 1
            yield number, row, "", None


def _records(path: Path, found: Iterator[Found], roles: Roles, encoding: str) -> Iterator[Record | Reject]:
    checked, count = False, 0
    while True:
        try:
            number, value, raw, users = next(found)
        except StopIteration:
            return
        except GZIP_ERRORS as error:  # an array or a document read whole (JSON lines say their line)
            raise broken_gzip(path, error, count, "records") from None
        except UnicodeDecodeError as error:
            bad = error.object[error.start : error.start + 4]
            raise not_decodable(path, encoding, f"the text after record {count}", bad) from None
        count += 1
        if isinstance(value, Exception):
            yield Reject(number, invalid_json(value.msg), raw)
            continue
        if not isinstance(value, dict):
            yield Reject(number, not_an_object(), raw)
            continue
        if not checked:
            roles.check(path, value)
            checked = True
        fields = roles.fields(value)
        if fields is None:
            yield Reject(number, no_text_field(roles.paths["text"]), raw)
        else:
            raw = raw or json.dumps(value, ensure_ascii=False, default=str)
            yield Record(number, fields, raw, obj=value, users=users)


def open_records(path: Path, columns: Columns, kind: str, encoding: str = "utf-8") -> CsvStream:
    """A JSON or parquet file as a stream of records with the columns' values in a fixed header; JSON is
    decoded with ``encoding`` (--encoding), as CSV is."""
    roles = Roles(columns)
    found = _parquet_records(path) if kind == "parquet" else _json_records(path, encoding)
    return CsvStream(path, roles.header, _records(path, found, roles, encoding))


POSITIONS = {"text": 0, "label": 1, "id": 2, "split": 3, "label_name": 4}  # where ``Roles.header`` puts each
