"""A peek at the first records of every input file, before anything is written, to fix the corpus'
schema: whether the files hold tweets (Twitter's fields are kept), whether each ``--keep-col`` is there,
and the kind of each one not given a type (from the first 1,000 values present, across the files).

A path found in no file is an error naming the keys there are; a file without it (a CSV test file beside
a JSON train file) gets nulls, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.errors import EncajesError
from pipeline.core.settings import Columns, CsvFormat
from pipeline.stages.ingest.csv_reader import Record
from pipeline.stages.ingest.kept_fields import FieldPlan, KeepSpec, keep_specs
from pipeline.stages.ingest.record_reader import has_path, lookup, record_kind
from pipeline.stages.ingest.sources import open_source
from pipeline.stages.ingest.twitter import is_tweet
from pipeline.stages.ingest.values import infer_kind, is_missing

TWEET_PEEK = 20  # records looked at to tell tweets
SAMPLE = 1_000  # values a kind is inferred from
MOST_RECORDS = 10_000  # records of one file read to find them


@dataclass
class FilePeek:
    """What the first records of one file showed."""

    path: Path
    kind: str
    keys: list[str] = field(default_factory=list)  # the CSV header, or the first record's keys
    tweets: bool = False
    found: set[str] = field(default_factory=set)  # kept fields whose path is there
    samples: dict[str, list[Any]] = field(default_factory=dict)  # kept field -> values present


def peek_file(path: Path, columns: Columns, fmt: CsvFormat, keeps: list[KeepSpec]) -> FilePeek:
    """Read as little as tells: a CSV only when columns are kept (its header, then values to infer
    from), records until tweets are told and every kind to infer has its sample."""
    kind = record_kind(path) or "csv"
    if kind == "csv" and not keeps:
        return FilePeek(path, kind)
    source = open_source(path, columns, fmt)
    seen = FilePeek(path, kind, keys=list(source.stream.header) if kind == "csv" else [])
    seen.found = {k.name for k in keeps if k.path in seen.keys}
    infer = [k for k in keeps if k.kind is None]
    seen.samples = {k.name: [] for k in infer}
    try:
        for number, item in enumerate(source.stream.records):
            if isinstance(item, Record):
                _look(seen, item, keeps, infer, number)
            full = all(len(seen.samples[k.name]) >= SAMPLE for k in infer)
            if number + 1 >= MOST_RECORDS or (number + 1 >= TWEET_PEEK and full):
                break
    finally:
        source.close()
    return seen


def _look(seen: FilePeek, item: Record, keeps: list[KeepSpec], infer: list[KeepSpec], number: int) -> None:
    """One record's part of the peek: tweet or not, which paths it has, its values to infer kinds from."""
    if item.obj is not None:
        seen.keys = seen.keys or sorted(item.obj)
        seen.tweets = seen.tweets or (number < TWEET_PEEK and is_tweet(item.obj))
        seen.found |= {k.name for k in keeps if has_path(item.obj, k.path)}
    for spec in infer:
        if spec.name not in seen.found or len(seen.samples[spec.name]) >= SAMPLE:
            continue
        if item.obj is not None:
            value = lookup(item.obj, spec.path)
        else:
            value = item.fields[seen.keys.index(spec.path)]
        if not is_missing(value):
            seen.samples[spec.name].append(value)


def plan_fields(files: list[Path], columns: Columns, fmt: CsvFormat) -> FieldPlan:
    """The kept fields of a corpus made of these files, every kind decided."""
    keeps = keep_specs(columns)
    peeks = [peek_file(path, columns, fmt, keeps) for path in files]
    resolved = []
    for spec in keeps:
        having = [p for p in peeks if spec.name in p.found]
        if not having:
            raise _not_there(peeks[0], spec)
        values = [v for p in having for v in p.samples.get(spec.name, [])][:SAMPLE]
        resolved.append(KeepSpec(spec.name, spec.path, spec.kind or infer_kind(values)))
    absent: dict[str, list[str]] = {}
    for p in peeks:
        lacking = [k.name for k in keeps if k.name not in p.found]
        if lacking:
            absent[p.path.name] = lacking
    return FieldPlan(
        tweets=any(p.tweets for p in peeks),
        keeps=resolved,
        tweet_files={p.path for p in peeks if p.tweets},
        absent=absent,
        lenient=columns.lenient_cols,
    )


def _not_there(peek: FilePeek, spec: KeepSpec) -> EncajesError:
    if peek.kind == "csv":
        return EncajesError(
            f"{peek.path}: no column {spec.path!r} to keep; the columns are {peek.keys}. Fix --keep-col."
        )
    return EncajesError(
        f"{peek.path}: the first records have no {spec.path!r}; the first one's keys are {peek.keys[:20]}. "
        "Fix --keep-col (nested keys: a.b)."
    )
