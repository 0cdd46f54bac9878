"""Ingest: CSV files -> one clean parquet corpus, with every input row either kept or rejected with a reason.

The parser works line by line on top of Python's ``csv`` module in strict mode, so a broken quote costs
only the record it starts (which goes to ``rejects.csv``) and parsing resumes on the next line, instead
of one stray quote silently swallowing the rest of the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.csv_reader import Reject, open_csv
from pipeline.errors import EncajesError
from pipeline.layout import Workdir, file_sha256, is_fresh, record_stage, stage_entry, write_atomic
from pipeline.lock import writes_workdir

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}
CORPUS_COLUMNS = ["row_id", "id", "text", "label", "split", "source", "line"]
REJECT_COLUMNS = ["source", "line", "reason", "raw"]
OTHER_DELIMITERS = {";": "';'", "\t": "a tab ('\\t')", "|": "'|'"}


@dataclass(frozen=True)
class Columns:
    """Which CSV columns hold what. ``None`` means: use the default name if the file has it."""

    text: str = "text"
    label: str | None = None
    id: str | None = None
    split: str | None = None


@dataclass
class IngestReport:
    workdir: Path
    corpus: Path
    rejects: Path
    rows_read: int
    rows_kept: int
    rows_rejected: int
    blank_lines: int
    per_file: list[dict[str, object]]
    splits: dict[str, int]
    labels: dict[str, int]
    reject_reasons: dict[str, int]
    skipped: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "stage": "ingest",
            "skipped": self.skipped,
            "corpus": str(self.corpus),
            "rejects": str(self.rejects),
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_rejected": self.rows_rejected,
            "blank_lines": self.blank_lines,
            "files": self.per_file,
            "splits": self.splits,
            "labels": self.labels,
            "reject_reasons": self.reject_reasons,
        }


# --- columns ----------------------------------------------------------------------------------------


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
    return positions


def split_from_filename(path: Path) -> str | None:
    return SPLIT_ALIASES.get(path.stem.lower())


def parse_input(arg: str | Path) -> tuple[Path, str | None]:
    """``"train=data/trial.csv"`` -> (path, "train"): a split for every row of a file, whatever its name."""
    text = str(arg)
    head, sep, tail = text.partition("=")
    if sep and head.lower() in SPLIT_ALIASES and not Path(text).exists():
        return Path(tail), SPLIT_ALIASES[head.lower()]
    return Path(text), None


# --- the pure core -------------------------------------------------------------------------------------


def row_from_record(
    fields: list[str], positions: dict[str, int | None], file_split: str | None
) -> tuple[dict | None, str | None]:
    """One record -> a corpus row, or the reason it cannot be one (empty text, NUL bytes, unknown split)."""
    text = fields[positions["text"]]  # type: ignore[index]
    reason = None
    if not text.strip():
        reason = "empty text"
    elif "\x00" in text:
        reason = "text contains NUL bytes"
    split = file_split
    split_at = positions["split"]
    if split_at is not None:
        value = fields[split_at].strip().lower()
        split = SPLIT_ALIASES.get(value) if value else file_split
        if value and split is None:
            reason = reason or f"unknown split {fields[split_at]!r} (use train, val or test)"
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


def _join(fields: Sequence[str], delimiter: str) -> str:
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


# --- the stage -----------------------------------------------------------------------------------------


@writes_workdir()
def ingest(
    csv_paths: Sequence[str | Path],
    workdir: str | Path,
    columns: Columns | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    force: bool = False,
) -> IngestReport:
    """Read CSVs into ``W/corpus.parquet`` and ``W/rejects.csv``; skip if the same inputs were ingested."""
    columns = columns or Columns()
    work = Workdir.at(workdir)
    given = [parse_input(arg) for arg in csv_paths]
    if not given:
        raise EncajesError("Give at least one CSV file to ingest.")
    for path, _ in given:
        if not path.is_file():
            raise EncajesError(f"{path}: no such file.")
    inputs = {
        "files": [{"path": str(p.resolve()), "sha256": file_sha256(p), "split": split} for p, split in given],
        "columns": columns.__dict__,
        "delimiter": delimiter,
        "encoding": encoding,
    }
    if not force and is_fresh(work.manifest, "ingest", inputs, [work.corpus, work.rejects]):
        entry = stage_entry(work.manifest, "ingest") or {}
        return _report_from_entry(work, entry)

    work.root.mkdir(parents=True, exist_ok=True)
    sink = _CorpusSink(work)
    rejects: list[dict] = []
    per_file: dict[str, dict[str, int]] = {}
    names = [path.name for path, _ in given]
    seen = SeenIds()
    blank_lines = 0
    try:
        for file_index, (path, split) in enumerate(given):
            stream = open_csv(path, encoding, delimiter)
            positions = check_columns(path, stream.header, columns, delimiter)
            file_split = split or split_from_filename(path)
            counts = per_file.setdefault(str(path), {"read": 0, "kept": 0, "rejected": 0})
            pending: list[dict] = []

            def flush(pending: list[dict] = pending, counts: dict[str, int] = counts) -> None:
                earlier = seen.first_seen([r["id"] for r in pending], [r["where"] for r in pending])
                kept = []
                for row, first in zip(pending, earlier, strict=True):
                    if first is None:
                        kept.append(row)
                        continue
                    where = f"{names[first >> 40]} line {first & ((1 << 40) - 1)}"
                    reason = f"duplicate id {row['id']!r} (first on {where})"
                    rejects.append(
                        {"source": row["source"], "line": row["line"], "reason": reason, "raw": row["text"]}
                    )
                counts["kept"] += len(kept)
                counts["rejected"] += len(pending) - len(kept)
                sink.write(kept)
                pending.clear()

            for item in stream.records:
                counts["read"] += 1
                if isinstance(item, Reject):
                    rejects.append(
                        {"source": str(path), "line": item.line, "reason": item.reason, "raw": item.raw}
                    )
                    counts["rejected"] += 1
                    continue
                row, reason = row_from_record(item.fields, positions, file_split)
                if row is None:
                    raw = _join(item.fields, delimiter)
                    rejects.append({"source": str(path), "line": item.line, "reason": reason, "raw": raw})
                    counts["rejected"] += 1
                    continue
                row.update(source=str(path), line=item.line, where=(file_index << 40) | item.line)
                pending.append(row)
                if len(pending) >= ROW_GROUP:
                    flush()
            flush()
            blank_lines += stream.counts["blank_lines"]
            if counts["read"] == 0:
                raise EncajesError(
                    f"{path}: the file has a header ({delimiter.join(stream.header)}) but no rows."
                )
            assert counts["kept"] + counts["rejected"] == counts["read"], "row accounting bug"

    except BaseException:
        sink.abort()
        raise
    corpus_path = sink.close()
    reject_frame = pd.DataFrame(rejects, columns=REJECT_COLUMNS).sort_values(
        ["source", "line"], kind="stable"
    )
    write_atomic(work.rejects, lambda tmp: reject_frame.to_csv(tmp, index=False))
    report = IngestReport(
        workdir=work.root,
        corpus=corpus_path,
        rejects=work.rejects,
        rows_read=sink.rows + len(reject_frame),
        rows_kept=sink.rows,
        rows_rejected=len(reject_frame),
        blank_lines=blank_lines,
        per_file=[{"path": source, **counts} for source, counts in per_file.items()],
        splits=dict(sink.splits.most_common()),
        labels=dict(sink.labels.most_common()),
        reject_reasons=_counts(
            reject_frame["reason"].str.replace(r" \(.*|(?<=duplicate id) .*", "", regex=True)
        ),
    )
    outputs = report.to_dict()
    outputs["corpus_sha256"] = file_sha256(work.corpus)
    outputs["texts_sha256"] = texts_fingerprint_of_file(work.corpus)
    record_stage(work.manifest, "ingest", inputs, outputs)
    return report


class _CorpusSink:
    """Corpus rows -> ``corpus.parquet`` one 64k-row group at a time (written to a temporary file and
    moved into place at the end), counting splits and labels on the way."""

    def __init__(self, work: Workdir) -> None:
        self.work = work
        self.tmp = work.corpus.with_name(f".{work.corpus.name}.{os.getpid()}.tmp")
        self.writer: Any = None
        self.rows = 0
        self.splits: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.buffer: list[dict] = []

    def write(self, rows: list[dict]) -> None:
        self.buffer.extend(rows)
        while len(self.buffer) >= ROW_GROUP:
            self._write_group(self.buffer[:ROW_GROUP])
            del self.buffer[:ROW_GROUP]

    def _write_group(self, rows: list[dict]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = corpus_frame(rows, self.rows)
        self.splits.update(frame["split"].fillna("(none)").astype(str))
        self.labels.update(frame["label"].fillna("(none)").astype(str))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table, row_group_size=ROW_GROUP)
        self.rows += len(frame)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.tmp.unlink(missing_ok=True)

    def close(self) -> Path:
        if self.buffer or self.writer is None:  # the last group (or an empty corpus: a file with a schema)
            self._write_group(self.buffer)
            self.buffer = []
        self.writer.close()
        os.chmod(self.tmp, 0o666 & ~_umask())
        os.replace(self.tmp, self.work.corpus)
        return self.work.corpus


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def texts_fingerprint_of_file(path: Path) -> str:
    """``texts_fingerprint`` of a corpus file, read one row group at a time."""
    texts = CorpusTexts(path)
    digest = hashlib.sha256(np.arange(len(texts), dtype=np.int64).tobytes())
    for group in texts.groups():
        for text in group:
            digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()


def texts_fingerprint(corpus: pd.DataFrame) -> str:
    """Hash of (row_id, text) only, what embeddings depend on: relabelling a corpus does not re-embed it."""
    digest = hashlib.sha256(np.ascontiguousarray(corpus["row_id"].to_numpy(dtype=np.int64)).tobytes())
    for text in corpus["text"]:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()


def corpus_hash(workdir: Workdir) -> str:
    """Fingerprint of the whole corpus (texts, labels, splits): what probes and plots depend on."""
    entry = stage_entry(workdir.manifest, "ingest") or {}
    recorded = entry.get("outputs", {}).get("corpus_sha256")
    return recorded or file_sha256(workdir.require_corpus())


def texts_hash(workdir: Workdir) -> str:
    """Fingerprint of the texts and their row ids: what embeddings depend on."""
    entry = stage_entry(workdir.manifest, "ingest") or {}
    recorded = entry.get("outputs", {}).get("texts_sha256")
    return recorded or texts_fingerprint(load_corpus(workdir))


ROW_GROUP = 65_536


def load_corpus(workdir: Workdir, columns: list[str] | None = None) -> pd.DataFrame:
    """The corpus, or only ``columns`` of it (a probe needs no text: at 10M rows that is gigabytes)."""
    return pd.read_parquet(workdir.require_corpus(), columns=columns)


class CorpusTexts(Sequence[str]):
    """The corpus ``text`` column read lazily, row group by row group: ``texts[a:b]`` reads only the
    groups that hold rows a..b, so embedding a corpus never holds all of its text in memory."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self._file = pq.ParquetFile(path)
        sizes = [self._file.metadata.row_group(g).num_rows for g in range(self._file.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._cached: tuple[int, list[str]] = (-1, [])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def groups(self) -> Iterator[list[str]]:
        """The texts, one row group at a time."""
        for group in range(len(self._starts) - 1):
            yield self._group(group)

    def _group(self, group: int) -> list[str]:
        if self._cached[0] != group:
            column = self._file.read_row_group(group, columns=["text"]).column("text")
            self._cached = (group, column.to_pylist())
        return self._cached[1]

    def __getitem__(self, where):  # type: ignore[override]
        if isinstance(where, int):
            return self[where : where + 1 if where != -1 else None][0]
        begin, end, step = where.indices(len(self))
        if step != 1:
            raise ValueError("CorpusTexts slices have step 1")
        out: list[str] = []
        first = int(np.searchsorted(self._starts, begin, side="right")) - 1
        for group in range(max(first, 0), len(self._starts) - 1):
            lo, hi = int(self._starts[group]), int(self._starts[group + 1])
            if lo >= end:
                break
            out.extend(self._group(group)[max(begin, lo) - lo : min(end, hi) - lo])
        return out

    def take(self, positions: np.ndarray) -> list[str]:
        """Texts at sorted ``positions``, reading only the row groups that hold one (one at a time)."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) and (
            np.any(np.diff(positions) < 0) or positions[0] < 0 or positions[-1] >= len(self)
        ):
            raise ValueError("CorpusTexts.take needs sorted positions inside the corpus")
        out: list[str] = []
        bounds = np.searchsorted(positions, self._starts)  # positions[bounds[g]:bounds[g+1]] lie in group g
        for group in range(len(self._starts) - 1):
            lo, hi = bounds[group], bounds[group + 1]
            if hi > lo:
                texts = self._group(group)
                out.extend(texts[p] for p in positions[lo:hi] - self._starts[group])
        return out


def corpus_row_ids(workdir: Workdir) -> np.ndarray:
    import pyarrow.parquet as pq

    return pq.read_table(workdir.require_corpus(), columns=["row_id"]).column("row_id").to_numpy()


def _counts(series: pd.Series) -> dict[str, int]:
    counts = series.fillna("(none)").astype(str).value_counts()
    return {str(key): int(value) for key, value in counts.items()}


def _report_from_entry(work: Workdir, entry: dict) -> IngestReport:
    out = entry.get("outputs", {})
    return IngestReport(
        workdir=work.root,
        corpus=work.corpus,
        rejects=work.rejects,
        rows_read=out["rows_read"],
        rows_kept=out["rows_kept"],
        rows_rejected=out["rows_rejected"],
        blank_lines=out.get("blank_lines", 0),
        per_file=out.get("files", []),
        splits=out.get("splits", {}),
        labels=out.get("labels", {}),
        reject_reasons=out.get("reject_reasons", {}),
        skipped=True,
    )


__all__ = ["Columns", "IngestReport", "corpus_hash", "ingest", "load_corpus", "texts_hash"]
