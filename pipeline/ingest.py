"""Ingest: CSV files -> one clean parquet corpus, with every input row either kept or rejected with a reason.

The parser works line by line on top of Python's ``csv`` module in strict mode, so a broken quote costs
only the record it starts (which goes to ``rejects.csv``) and parsing resumes on the next line, instead
of one stray quote silently swallowing the rest of the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

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
BARE_CR_STANDIN = "\ue000"
FIELD_LIMIT = 1 << 26  # 64 MiB: a very long field is still a row (embed truncates and counts it)
csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
OTHER_DELIMITERS = {";": "';'", "\t": "a tab ('\\t')", "|": "'|'"}


@dataclass(frozen=True)
class Columns:
    """Which CSV columns hold what. ``None`` means: use the default name if the file has it."""

    text: str = "text"
    label: str | None = None
    id: str | None = None
    split: str | None = None


@dataclass
class ParsedFile:
    """The records of one CSV: header, good records with their first line number, and rejects."""

    path: Path
    header: list[str]
    records: list[tuple[int, list[str]]] = field(default_factory=list)
    rejects: list[dict[str, object]] = field(default_factory=list)
    blank_lines: int = 0

    @property
    def rows_read(self) -> int:
        return len(self.records) + len(self.rejects)


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


# --- reading -------------------------------------------------------------------------------------------


BINARY_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip (or .xlsx)",
    b"\x89PNG": "PNG image",
    b"%PDF": "PDF",
    b"PAR1": "parquet",
    b"BZh": "bzip2",
    b"\xfd7zXZ": "xz",
}


def decode(path: Path, data: bytes, encoding: str) -> str:
    """Bytes -> text; a decoding failure names the line and the fix instead of a UnicodeDecodeError."""
    for magic, kind in BINARY_MAGIC.items():
        if data.startswith(magic):
            raise EncajesError(
                f"{path}: this is a {kind} file, not a CSV. Decompress it or export it as CSV (UTF-8) first."
            )
    if encoding.lower().replace("_", "-") in {"utf-8", "utf8"}:
        encoding = "utf-8-sig"  # a BOM is not part of the first column's name
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        bad = data[error.start : error.start + 4]
        raise EncajesError(
            f"{path}: line {line} is not valid {encoding.removesuffix('-sig').upper()} (bytes {bad!r}). "
            f"The file is probably Latin-1 or "
            f"Windows-1252: re-save it as UTF-8, or pass --encoding latin-1 (or cp1252)."
        ) from None
    except LookupError:
        raise EncajesError(f"Unknown --encoding {encoding!r}: use e.g. utf-8, latin-1, cp1252.") from None


class _Lines:
    """An iterator over physical lines whose position can be moved back after a parse error."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.pos = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _restore(text: str, bare_cr: str | None) -> str:
    return text.replace(bare_cr, "\r") if bare_cr else text


def split_lines(text: str) -> list[str]:
    """Physical lines, ended by \n (or \r\n) only: ``str.splitlines`` would also cut at U+2028, U+0085,
    \x1c... which can sit inside a tweet and must stay in its field."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def parse_records(path: Path, text: str, delimiter: str) -> ParsedFile:
    """Split CSV text into a header and records, rejecting records whose quoting is broken."""
    # A bare \r inside a field (not a CRLF line end) is text, but the csv module takes it for a line end:
    # park it on a private-use character while parsing and put it back in every field.
    bare_cr = BARE_CR_STANDIN if ("\r" in text and BARE_CR_STANDIN not in text) else None
    if bare_cr:
        text = re.sub(r"\r(?!\n)", bare_cr, text)
    lines = _Lines(split_lines(text))
    header: list[str] | None = None
    parsed: ParsedFile | None = None
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        start = lines.pos
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            if parsed is None:
                raise EncajesError(f"{path}: cannot parse the header line: {error}.") from None
            parsed.rejects.append(
                {
                    "source": str(path),
                    "line": start + 1,
                    "reason": f"broken quoting ({error}); fix the quotes of the record on this line",
                    "raw": _restore(lines.lines[start].rstrip("\r\n"), bare_cr),
                }
            )
            lines.pos = start + 1  # resume right after the line that opened the bad record
            reader = csv.reader(lines, delimiter=delimiter, strict=True)
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            if parsed is not None:
                parsed.blank_lines += 1
            continue
        if header is None:
            header = [name.strip() for name in fields]
            parsed = ParsedFile(path=path, header=header)
            continue
        assert parsed is not None
        if len(fields) != len(header):
            parsed.rejects.append(
                {
                    "source": str(path),
                    "line": start + 1,
                    "reason": f"expected {len(header)} fields, found {len(fields)}",
                    "raw": _restore("".join(lines.lines[start : lines.pos]).rstrip("\r\n"), bare_cr),
                }
            )
            continue
        parsed.records.append((start + 1, [f.replace(bare_cr, "\r") for f in fields] if bare_cr else fields))
    if parsed is None:
        raise EncajesError(f"{path}: the file is empty. Give a CSV with a header row (e.g. text,label).")
    if not parsed.records and not parsed.rejects:
        raise EncajesError(f"{path}: the file has a header ({delimiter.join(header or [])}) but no rows.")
    return parsed


def check_columns(parsed: ParsedFile, columns: Columns, delimiter: str) -> dict[str, int | None]:
    """Map each role to a column position; a missing required column is an error that names the fix."""
    header = parsed.header
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise EncajesError(f"{parsed.path}: the header repeats column(s) {duplicates}; rename them.")
    if columns.text not in header:
        if len(header) == 1:
            for other, name in OTHER_DELIMITERS.items():
                if other != delimiter and other in header[0]:
                    flag = "$'\\t'" if other == "\t" else f"'{other}'"
                    raise EncajesError(
                        f"{parsed.path}: the header has a single column {header[0]!r}; the file looks "
                        f"separated by {name}, not {delimiter!r}. Pass --delimiter {flag}."
                    )
        raise EncajesError(
            f"{parsed.path}: no text column {columns.text!r}; the columns are {header}. "
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
                f"{parsed.path}: no {role} column {asked!r}; the columns are {header}. "
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


def rows_from_records(
    parsed: ParsedFile, positions: dict[str, int | None], delimiter: str = ",", file_split: str | None = None
) -> tuple[list[dict], list[dict]]:
    """Turn records into corpus rows, sending unusable ones (empty text, unknown split) to rejects."""
    file_split = file_split or split_from_filename(parsed.path)
    kept: list[dict] = []
    rejected: list[dict] = []
    text_at = positions["text"]
    label_at, id_at, split_at = positions["label"], positions["id"], positions["split"]
    for line, fields in parsed.records:
        text = fields[text_at]  # type: ignore[index]
        reason = None
        if not text.strip():
            reason = "empty text"
        elif "\x00" in text:
            reason = "text contains NUL bytes"
        split = file_split
        if split_at is not None:
            value = fields[split_at].strip().lower()
            split = SPLIT_ALIASES.get(value) if value else file_split
            if value and split is None:
                reason = reason or f"unknown split {fields[split_at]!r} (use train, val or test)"
        if reason:
            rejected.append(
                {"source": str(parsed.path), "line": line, "reason": reason, "raw": _join(fields, delimiter)}
            )
            continue
        label = fields[label_at].strip() if label_at is not None else ""
        kept.append(
            {
                "id": fields[id_at].strip() if id_at is not None and fields[id_at].strip() else None,
                "text": text,
                "label": label or None,
                "split": split,
                "source": str(parsed.path),
                "line": line,
            }
        )
    return kept, rejected


def reject_duplicate_ids(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Keep the first row of each id; later ones go to rejects, saying where the id was first seen."""
    first: dict[str, dict] = {}
    kept, rejected = [], []
    for row in rows:
        row_id = row["id"]
        if row_id is None or row_id not in first:
            if row_id is not None:
                first[row_id] = row
            kept.append(row)
            continue
        seen = first[row_id]
        where = f"{Path(seen['source']).name} line {seen['line']}"
        rejected.append(
            {
                "source": row["source"],
                "line": row["line"],
                "reason": f"duplicate id {row_id!r} (first on {where})",
                "raw": row["text"],
            }
        )
    return kept, rejected


def _join(fields: Sequence[str], delimiter: str) -> str:
    """Fields back to one CSV line, quoted as needed, so a reject can be fixed and re-ingested."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(fields)
    return buffer.getvalue()


def build_corpus(rows: list[dict]) -> pd.DataFrame:
    """Rows -> corpus frame with a stable ``row_id`` (input order) and an ``id`` for every row."""
    frame = pd.DataFrame(rows, columns=CORPUS_COLUMNS[1:])
    frame.insert(0, "row_id", pd.RangeIndex(len(frame), dtype="int64"))
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

    all_rows: list[dict] = []
    all_rejects: list[dict] = []
    read_per_file: dict[str, int] = {}
    blank_lines = 0
    for path, split in given:
        parsed = parse_records(path, decode(path, path.read_bytes(), encoding), delimiter)
        positions = check_columns(parsed, columns, delimiter)
        kept, rejected = rows_from_records(parsed, positions, delimiter, split)
        assert len(kept) + len(parsed.rejects) + len(rejected) == parsed.rows_read, "row accounting bug"
        read_per_file[str(path)] = read_per_file.get(str(path), 0) + parsed.rows_read
        blank_lines += parsed.blank_lines
        all_rows.extend(kept)
        all_rejects.extend(parsed.rejects + rejected)
    all_rows, duplicates = reject_duplicate_ids(all_rows)
    all_rejects.extend(duplicates)
    kept_by, rejected_by = Counter(r["source"] for r in all_rows), Counter(r["source"] for r in all_rejects)
    per_file = [
        {"path": source, "read": read, "kept": kept_by[source], "rejected": rejected_by[source]}
        for source, read in read_per_file.items()
    ]

    corpus = build_corpus(all_rows)
    rejects = pd.DataFrame(all_rejects, columns=REJECT_COLUMNS).sort_values(["source", "line"], kind="stable")
    work.root.mkdir(parents=True, exist_ok=True)
    # row groups of 64k rows: the embed stage reads the texts one group at a time
    write_atomic(work.corpus, lambda tmp: corpus.to_parquet(tmp, index=False, row_group_size=ROW_GROUP))
    write_atomic(work.rejects, lambda tmp: rejects.to_csv(tmp, index=False))
    report = IngestReport(
        workdir=work.root,
        corpus=work.corpus,
        rejects=work.rejects,
        rows_read=len(corpus) + len(rejects),
        rows_kept=len(corpus),
        rows_rejected=len(rejects),
        blank_lines=blank_lines,
        per_file=per_file,
        splits=_counts(corpus["split"]),
        labels=_counts(corpus["label"]),
        reject_reasons=_counts(rejects["reason"].str.replace(r" \(.*|(?<=duplicate id) .*", "", regex=True)),
    )
    outputs = report.to_dict()
    outputs["corpus_sha256"] = file_sha256(work.corpus)
    outputs["texts_sha256"] = texts_fingerprint(corpus)
    record_stage(work.manifest, "ingest", inputs, outputs)
    return report


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


def load_corpus(workdir: Workdir) -> pd.DataFrame:
    return pd.read_parquet(workdir.require_corpus())


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
