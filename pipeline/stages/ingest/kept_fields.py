"""Which fields beyond id, text, label and split the corpus keeps, and each row's values for them, typed.

Twitter's fields (``twitter``) come without flags when the files hold tweets; ``--keep-col
[NEW=]PATH[:TYPE]`` adds a CSV column or a dotted path into JSON/parquet records. One parquet schema
serves every file, so the set of fields and their kinds is decided once, before writing (``field_peek``),
and a file without a field gets nulls in it. A value that is not of its field's kind rejects the row
with the reason, or with ``--lenient-cols`` is set missing and counted.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.artifacts.fields import BASE_COLUMNS, TWITTER_FIELDS, FieldInfo
from pipeline.core.errors import EncajesError
from pipeline.core.settings import FIELD_TYPES, Columns
from pipeline.stages.ingest.csv_reader import Record
from pipeline.stages.ingest.record_reader import lookup
from pipeline.stages.ingest.reject_reasons import Rejection, bad_field
from pipeline.stages.ingest.twitter import TWEET_KINDS, tweet_fields
from pipeline.stages.ingest.values import NotOfKind, not_of_kind_message, to_kind

KEEP = re.compile(
    r"(?:(?P<name>[A-Za-z_]\w*)=)?(?P<path>[^=:\s][^=:]*?)(?::(?P<kind>" + "|".join(FIELD_TYPES) + "))?"
)


@dataclass(frozen=True)
class KeepSpec:
    """One ``--keep-col``: the corpus column's name, where its values are, and its kind (None: inferred)."""

    name: str
    path: str
    kind: str | None = None


def parse_keep(spec: str) -> KeepSpec:
    """``NEW=PATH:TYPE`` -> a ``KeepSpec``; without NEW the name is PATH with dots as underscores."""
    found = KEEP.fullmatch(spec.strip())
    if found is None:
        raise EncajesError(
            f"--keep-col {spec!r}: expected [NEW=]PATH[:TYPE], TYPE one of {', '.join(FIELD_TYPES)}."
        )
    path = found["path"].strip()
    return KeepSpec(found["name"] or path.replace(".", "_"), path, found["kind"])


def keep_specs(columns: Columns) -> list[KeepSpec]:
    """Every ``--keep-col``, checked: a name may not be a corpus column, a Twitter field or twice."""
    specs, seen = [], set()
    for spec in map(parse_keep, columns.keep_col):
        taken = "a corpus column" if spec.name in BASE_COLUMNS else None
        taken = taken or ("a Twitter field" if spec.name in TWITTER_FIELDS else None)
        taken = taken or ("kept already" if spec.name in seen else None)
        if taken:
            raise EncajesError(
                f"--keep-col {spec.path!r}: the name {spec.name!r} is {taken}; rename it with NEW=PATH "
                f"(e.g. --keep-col my_{spec.name}={spec.path})."
            )
        seen.add(spec.name)
        specs.append(spec)
    return specs


@dataclass
class FieldPlan:
    """The kept fields in corpus order, which files hold tweets, and which files lack a kept column."""

    tweets: bool  # the corpus keeps Twitter's fields
    keeps: list[KeepSpec]  # every kind resolved
    tweet_files: set[Path] = field(default_factory=set)
    absent: dict[str, list[str]] = field(default_factory=dict)  # file name -> kept fields it has not
    lenient: bool = False
    set_missing: Counter[str] = field(default_factory=Counter)  # --lenient-cols: values that did not parse

    @property
    def fields(self) -> list[FieldInfo]:
        twitter = [FieldInfo(name, TWEET_KINDS[name]) for name in TWITTER_FIELDS] if self.tweets else []
        return twitter + [FieldInfo(k.name, k.kind or "string") for k in self.keeps]

    def reader(self, path: Path, kind: str, header: list[str]) -> FileFields:
        """How to read one file's kept values: by column position in a CSV, by path in records (None: the
        file has no such column, so the field is null there)."""
        if kind == "csv":
            wanted = [
                (k.name, k.kind or "string", header.index(k.path) if k.path in header else None)
                for k in self.keeps
            ]
        else:
            wanted = [(k.name, k.kind or "string", k.path) for k in self.keeps]
        return FileFields(self.tweets, path in self.tweet_files, wanted, self.lenient)


NO_TWEET = (None,) * len(TWITTER_FIELDS)


@dataclass
class FileFields:
    """One file's kept values for one record: Twitter's (when the file holds tweets) and ``--keep-col``'s."""

    twitter: bool  # the corpus keeps Twitter's fields
    tweets: bool  # this file holds tweets
    wanted: list[tuple[str, str, int | str | None]]  # (name, kind, CSV position or record path)
    lenient: bool

    def values(self, item: Record) -> tuple[tuple[Any, ...], Rejection | None, tuple[str, ...]]:
        """The typed values in the plan's field order (a tuple of plain values, which the garbage
        collector stops tracking, so a row group of them costs no collection time), the reject reason of
        the first value that is not of its kind (never with ``lenient``), and the fields set missing
        because theirs did not parse."""
        out: list[Any] = []
        set_missing: tuple[str, ...] = ()
        obj = item.obj
        if self.twitter:
            if self.tweets and obj is not None:
                tweet = tweet_fields(obj, item.users)
                lang = to_kind(tweet.lang, "string")  # any value is a string
                out += [tweet.created_at, tweet.author, lang, tweet.retweet, tweet.reply, tweet.quote]
            else:
                out += NO_TWEET
        raw = [("created_at", "timestamp", 0)] if out and out[0] is not None else []
        for name, kind, where in self.wanted:
            value = item.fields[where] if isinstance(where, int) else None
            if isinstance(where, str) and obj is not None:
                value = lookup(obj, where)
            raw.append((name, kind, len(out)))
            out.append(value)
        for name, kind, at in raw:
            try:
                out[at] = to_kind(out[at], kind)
            except NotOfKind:
                if not self.lenient:
                    return (), bad_field(name, not_of_kind_message(name, out[at], kind)), ()
                out[at] = None
                set_missing += (name,)
        return tuple(out), None, set_missing
