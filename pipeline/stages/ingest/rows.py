"""The pure core of ingest: a record -> a corpus row or the reason it cannot be one, column roles, split
names, duplicate ids, and the corpus frame's schema. No files are read or written here."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.artifacts.label_names import NAME_COLUMNS
from pipeline.core.errors import EncajesError
from pipeline.core.settings import Columns
from pipeline.stages.ingest.reject_reasons import (
    Rejection,
    empty_text,
    no_visible_text,
    nul_bytes,
    unknown_split,
)

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}
# controls, format (ZWJ, ZWSP), separators, lone marks; unassigned code points stay: newer emoji
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp", "Mn"}
CORPUS_COLUMNS = ["row_id", "id", "text", "label", "split", "source", "line"]
REJECT_COLUMNS = ["source", "line", "reason", "raw"]
OTHER_DELIMITERS = {";": "';'", "\t": "a tab ('\\t')", "|": "'|'"}


def check_columns(path: Path, header: list[str], columns: Columns, delimiter: str) -> dict[str, int | None]:
    """Map each role to a column position; a missing required column is an error that names the fix."""
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise EncajesError(f"{path}: the header repeats column(s) {duplicates}; rename them.")
    if columns.text not in header:
        if len(header) == 1:
            for other, name in OTHER_DELIMITERS.items():
                if other != delimiter and other in header[0]:
                    flag = "$'\\t'" if other == "\t" else f"'{other}'"
                    raise EncajesError(
                        f"{path}: the header has a single column {header[0]!r}; the file looks "
                        f"separated by {name}, not {delimiter!r}. Pass --delimiter {flag}."
                    )
        raise EncajesError(
            f"{path}: no text column {columns.text!r}; the columns are {header}. "
            f"Pass --text-col NAME to say which one holds the tweets."
        )
    positions: dict[str, int | None] = {"text": header.index(columns.text)}
    for role, default in (("label", "label"), ("id", "id"), ("split", "split")):
        asked = getattr(columns, role)
        name = asked or default
        if name in header:
            positions[role] = header.index(name)
        elif asked:
            raise EncajesError(
                f"{path}: no {role} column {asked!r}; the columns are {header}. "
                f"Fix --{role}-col or leave it out."
            )
        else:
            positions[role] = None
    positions["label_name"] = name_column(path, header, columns, positions)
    return positions


def name_column(
    path: Path, header: list[str], columns: Columns, positions: dict[str, int | None]
) -> int | None:
    """Where the labels' names are: the column asked for, else the first of the usual names present
    (never the text or label column itself)."""
    if columns.label_name:
        if columns.label_name not in header:
            raise EncajesError(
                f"{path}: no label-name column {columns.label_name!r}; the columns are {header}. "
                "Fix --label-name-col or leave it out."
            )
        return header.index(columns.label_name)
    taken = {positions["text"], positions["label"]}
    found = [header.index(name) for name in NAME_COLUMNS if name in header]
    return next((at for at in found if at not in taken), None)


def split_from_filename(path: Path) -> str | None:
    """The split a file's name says, as a whole token anywhere in it, dots included: ``es4_train.csv``,
    ``train-2019.jsonl``, ``test_es.parquet`` and ``emojispace.train.json.gz`` do, ``contest.csv`` does
    not. A name with two different split words says none. (No file extension is a split word.)"""
    name = path.name.lower()
    found = {SPLIT_ALIASES[token] for token in re.split(r"[^a-z0-9]+", name) if token in SPLIT_ALIASES}
    return found.pop() if len(found) == 1 else None


def has_visible_text(text: str) -> bool:
    """False for text made only of whitespace, zero-width, format or control characters."""
    return any(not ch.isspace() and unicodedata.category(ch) not in INVISIBLE_CATEGORIES for ch in text)


def parse_input(arg: str | Path) -> tuple[Path, str | None]:
    """``"train=data/trial.csv"`` -> (path, "train"): a split for every row of a file, whatever its name."""
    text = str(arg)
    head, sep, tail = text.partition("=")
    if sep and head.lower() in SPLIT_ALIASES and not Path(text).exists():
        return Path(tail), SPLIT_ALIASES[head.lower()]
    return Path(text), None


def row_from_record(
    fields: list[str], positions: dict[str, int | None], file_split: str | None
) -> tuple[dict | None, Rejection | None]:
    """One record -> a corpus row, or the reason it cannot be one (empty text, NUL bytes, unknown split)."""
    text = fields[positions["text"]]  # type: ignore[index]
    reason = None
    if not text.strip():
        reason = empty_text()
    elif not has_visible_text(text):
        reason = no_visible_text()
    elif "\x00" in text:
        reason = nul_bytes()
    split = file_split
    split_at = positions["split"]
    if split_at is not None:
        value = fields[split_at].strip().lower()
        split = SPLIT_ALIASES.get(value) if value else file_split
        if value and split is None:
            reason = reason or unknown_split(fields[split_at])
    if reason:
        return None, reason
    label_at, id_at = positions["label"], positions["id"]
    label = fields[label_at].strip() if label_at is not None else ""
    row_id = fields[id_at].strip() if id_at is not None else ""
    return {"id": row_id or None, "text": text, "label": label or None, "split": split}, None


class SeenIds:
    """Which ids came before, and where: a sorted array of 64-bit id hashes and their (file, line), so
    memory is 16 bytes per row whatever the ids look like. (Two different ids with one 64-bit hash, odds
    ~1e-6 at 10M rows, would be reported as a duplicate.)"""

    def __init__(self) -> None:
        self.hashes = np.empty(0, dtype=np.int64)
        self.where = np.empty(0, dtype=np.int64)  # file index << 40 | line

    def first_seen(self, ids: list[str | None], where: list[int]) -> list[int | None]:
        """For each id: where an earlier row (before this batch, or earlier in it) had it, else None.
        The new ids are remembered."""
        out: list[int | None] = [None] * len(ids)
        keys = np.array([hash(row_id) if row_id is not None else 0 for row_id in ids], dtype=np.int64)
        slots = np.minimum(np.searchsorted(self.hashes, keys), max(len(self.hashes) - 1, 0))
        before = self.hashes[slots] == keys if len(self.hashes) else np.zeros(len(ids), dtype=bool)
        in_batch: dict[int, int] = {}
        fresh_hashes, fresh_where = [], []
        for i, row_id in enumerate(ids):
            if row_id is None:
                continue
            key = int(keys[i])
            if before[i]:
                out[i] = int(self.where[slots[i]])
            elif key in in_batch:
                out[i] = in_batch[key]
            else:
                in_batch[key] = where[i]
                fresh_hashes.append(key)
                fresh_where.append(where[i])
        if fresh_hashes:
            hashes = np.concatenate([self.hashes, np.array(fresh_hashes, dtype=np.int64)])
            order = np.argsort(hashes, kind="stable")
            self.hashes = hashes[order]
            self.where = np.concatenate([self.where, np.array(fresh_where, dtype=np.int64)])[order]
        return out


def join_fields(fields: Sequence[str], delimiter: str) -> str:
    """Fields back to one CSV line, quoted as needed, so a reject can be fixed and re-ingested."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(fields)
    return buffer.getvalue()


def corpus_frame(rows: list[dict], first_row_id: int) -> pd.DataFrame:
    """Rows -> corpus frame with a stable ``row_id`` (input order) and an ``id`` for every row."""
    frame = pd.DataFrame(rows, columns=CORPUS_COLUMNS[1:])
    frame.insert(0, "row_id", pd.RangeIndex(first_row_id, first_row_id + len(frame), dtype="int64"))
    missing_id = frame["id"].isna()
    frame.loc[missing_id, "id"] = [
        f"{Path(src).stem}:{line}"
        for src, line in zip(frame["source"][missing_id], frame["line"][missing_id], strict=True)
    ]
    return frame.astype(
        {
            "row_id": "int64",
            "id": "string",
            "text": "string",
            "label": "string",
            "split": "string",
            "source": "string",
            "line": "int64",
        }
    )
