"""Ingest stage: tweet files -> one clean parquet corpus, every input row either kept or rejected with a
reason (``reject_reasons``).

CSV/TSV is parsed line by line (``csv_reader``) on top of Python's ``csv`` module in strict mode, so a
broken quote costs only the record it starts (which goes to ``rejects.csv``) and parsing resumes on the
next line; JSON lines, JSON arrays, Twitter v2 pages and parquet are read record by record
(``record_reader``). Rows are checked by the pure core in ``rows`` and ``text_checks`` and written group
by group by ``corpus_writer``. Fields beyond the text (Twitter's, ``--keep-col``) are decided by a peek at
every file before writing (``field_peek``) and read typed row by row (``kept_fields``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.artifacts.corpus import texts_fingerprint_of_file
from pipeline.artifacts.fields import fields_fingerprint, labels_fingerprint
from pipeline.artifacts.label_names import names_from_counts, read_mapping, write_label_names
from pipeline.core.atomic import write_atomic
from pipeline.core.errors import EncajesError
from pipeline.core.hashing import file_sha256
from pipeline.core.layout import Workdir
from pipeline.core.manifest import stage_entry
from pipeline.core.runner import Stage, Timings, run_stage
from pipeline.core.settings import Columns, CsvFormat
from pipeline.stages.ingest.corpus_writer import CorpusSink
from pipeline.stages.ingest.csv_reader import Reject
from pipeline.stages.ingest.emoji_labels import parse_emoji_set, top_emojis
from pipeline.stages.ingest.field_peek import plan_fields
from pipeline.stages.ingest.kept_fields import FieldPlan, keep_specs
from pipeline.stages.ingest.reject_reasons import RejectedRow, duplicate_id
from pipeline.stages.ingest.report import IngestReport
from pipeline.stages.ingest.rows import (
    REJECT_COLUMNS,
    SeenIds,
    join_fields,
    parse_input,
    row_from_record,
    split_from_filename,
)
from pipeline.stages.ingest.sources import open_source
from pipeline.stages.ingest.text_checks import TextRules, train_test_duplicates


class _Rows:
    """Every file's records -> kept rows in the corpus sink, or rejects with a reason; counts per file."""

    def __init__(
        self, sink: CorpusSink | None, names: list[str], fmt: CsvFormat, rules: TextRules, plan: FieldPlan
    ) -> None:
        self.sink, self.names, self.fmt, self.rules, self.plan = sink, names, fmt, rules, plan
        self.rejects: list[RejectedRow] = []
        self.per_file: dict[str, dict[str, int]] = {}
        self.seen = SeenIds()
        self.blank_lines = 0
        self.named: Counter[tuple[str, str]] = Counter()  # (label, name) of kept rows

    def texts(self, path: Path, columns: Columns) -> Iterator[str]:
        """The usable texts of a file, as read (a first pass, to count emojis for --label-from-emoji N)."""
        source = open_source(path, columns, self.fmt)
        for item in source.stream.records:
            if not isinstance(item, Reject) and (
                row := row_from_record(item.fields, source.positions, None)[0]
            ):
                yield row["text"]

    def read_file(self, file_index: int, path: Path, split: str | None, columns: Columns) -> None:
        source = open_source(path, columns, self.fmt)
        stream, positions, delimiter, kind = source.stream, source.positions, source.delimiter, source.kind
        kept_fields = self.plan.reader(path, kind, stream.header)
        file_split = split or split_from_filename(path)
        counts = self.per_file.setdefault(str(path), {"read": 0, "kept": 0, "rejected": 0})
        pending: list[dict[str, Any]] = []
        for item in stream.records:
            counts["read"] += 1
            if isinstance(item, Reject):
                self._reject(counts, RejectedRow(str(path), item.line, item.why, item.raw))
                continue
            row, reason = row_from_record(item.fields, positions, file_split)
            name_at = positions["label_name"]
            if row is not None:
                reason = self.rules.apply(row, item.fields[name_at] if name_at is not None else "")
            if row is not None and reason is None:  # kept fields beside the columns: no name clashes
                row["kept"], reason, row["set_missing"] = kept_fields.values(item)
            if reason is not None:  # row_from_record gives a row or a reason, never neither
                raw = item.raw if item.raw is not None else join_fields(item.fields, delimiter)
                self._reject(counts, RejectedRow(str(path), item.line, reason, raw))
                continue
            row.update(source=str(path), line=item.line, where=(file_index << 40) | item.line)
            if name_at is not None and row["label"]:
                self.named[(row["label"], item.fields[name_at])] += 1
            pending.append(row)
            if len(pending) >= self.sink.group_rows:
                self._flush(pending, counts)
        self._flush(pending, counts)
        self.blank_lines += stream.counts["blank_lines"]
        if counts["read"] == 0 and kind != "csv":
            raise EncajesError(f"{path}: the file holds no records.")
        if counts["read"] == 0:
            header = delimiter.join(stream.header)
            raise EncajesError(f"{path}: the file has a header ({header}) but no rows.")
        assert counts["kept"] + counts["rejected"] == counts["read"], "row accounting bug"

    def _reject(self, counts: dict[str, int], rejected: RejectedRow) -> None:
        self.rejects.append(rejected)
        counts["rejected"] += 1

    def _flush(self, pending: list[dict[str, Any]], counts: dict[str, int]) -> None:
        """Rows whose id came earlier are rejected as duplicates; the rest go to the corpus."""
        earlier = self.seen.first_seen([r["id"] for r in pending], [r["where"] for r in pending])
        kept = []
        for row, first in zip(pending, earlier, strict=True):
            if first is None:
                kept.append(row)
                continue
            where = f"{self.names[first >> 40]} line {first & ((1 << 40) - 1)}"
            why = duplicate_id(row["id"], where)
            self._reject(counts, RejectedRow(row["source"], row["line"], why, row["text"]))
        counts["kept"] += len(kept)
        for row in kept:
            self.plan.set_missing.update(row["set_missing"])
        self.sink.write(kept)
        pending.clear()


class IngestStage(Stage[IngestReport]):
    name = "ingest"

    def __init__(
        self,
        work: Workdir,
        paths: Sequence[str | Path],
        columns: Columns,
        fmt: CsvFormat,
        replace: bool = False,
    ) -> None:
        self.work, self.columns, self.fmt, self.replace = work, columns, fmt, replace
        self.given = [parse_input(arg) for arg in paths]
        if not self.given:
            raise EncajesError("Give at least one CSV file to ingest.")
        for path, _ in self.given:
            if not path.is_file():
                raise EncajesError(f"{path}: no such file.")
        if columns.label_names and not Path(columns.label_names).is_file():
            raise EncajesError(f"{columns.label_names}: no such file (--label-names).")
        # read before anything is written: a bad mapping file must not leave a half-replaced workdir
        self.mapping = read_mapping(Path(columns.label_names)) if columns.label_names else None
        keep_specs(columns)  # a bad or clashing --keep-col fails before any file is read

    @property
    def manifest(self) -> Path:
        return self.work.manifest

    @cached_property
    def _files(self) -> list[dict[str, Any]]:  # hashed once, even when the runner asks twice
        return [{"path": str(p.resolve()), "sha256": file_sha256(p), "split": s} for p, s in self.given]

    def inputs(self) -> dict[str, Any]:
        names = self.columns.label_names
        mapping = {"label_names_sha256": file_sha256(Path(names))} if names else {}
        return {"files": self._files, "columns": asdict(self.columns), **asdict(self.fmt), **mapping}

    def outputs(self) -> list[Path]:
        return [self.work.corpus, self.work.rejects, self.work.label_names]

    def compute(self, inputs: dict[str, Any], timings: Timings) -> IngestReport:
        if not self.replace:
            refuse_other_corpus(self.work, [f["path"] for f in inputs["files"]])
        self.work.root.mkdir(parents=True, exist_ok=True)
        label_emojis = self.label_emojis()
        plan = plan_fields([path for path, _ in self.given], self.columns, self.fmt)
        sink = CorpusSink(self.work, plan.fields)
        names = [path.name for path, _ in self.given]
        rows = _Rows(sink, names, self.fmt, TextRules(self.columns.normalize, label_emojis), plan)
        try:
            for file_index, (path, split) in enumerate(self.given):
                rows.read_file(file_index, path, split, self.columns)
            if not any(counts["kept"] for counts in rows.per_file.values()):
                raise EncajesError(nothing_kept(rows.rejects))
        except BaseException:
            sink.abort()
            raise
        sink.close()
        rejects, reasons = reject_table(rows.rejects)
        write_atomic(self.work.rejects, lambda tmp: rejects.to_csv(tmp, index=False))
        label_names = self.label_names(rows.named)
        write_label_names(self.work, label_names)
        return IngestReport(
            corpus=self.work.corpus,
            rejects=self.work.rejects,
            rows_read=sink.rows + len(rejects),
            rows_kept=sink.rows,
            rows_rejected=len(rejects),
            blank_lines=rows.blank_lines,
            files=[{"path": source, **counts} for source, counts in rows.per_file.items()],
            splits=dict(sink.splits.most_common()),
            labels=dict(sink.labels.most_common()),
            reject_reasons=reasons,
            corpus_sha256=file_sha256(self.work.corpus),
            texts_sha256=texts_fingerprint_of_file(self.work.corpus),
            labels_sha256=labels_fingerprint(self.work.corpus),
            fields_sha256=fields_fingerprint(self.work.corpus),
            fields={kept.name: kept.kind for kept in plan.fields},
            fields_set_missing={
                f.name: plan.set_missing[f.name] for f in plan.fields if plan.set_missing[f.name]
            },
            fields_absent=plan.absent if plan.fields else {},
            label_names=label_names,
            label_emojis=label_emojis or [],
            leaked_rows=rows.rules.leaked,
            train_test_duplicates=train_test_duplicates(self.work.corpus),
        )

    def label_emojis(self) -> list[str] | None:
        """--label-from-emoji: the list given, or the N emojis in the most tweets (a first pass)."""
        if not self.columns.label_from_emoji:
            return None
        wanted = parse_emoji_set(self.columns.label_from_emoji)
        if isinstance(wanted, list):
            if not wanted:
                raise EncajesError("--label-from-emoji: no emoji found in the list given (e.g. '❤,😂,🔥').")
            return wanted
        reader = _Rows(
            None, [], self.fmt, TextRules(self.columns.normalize), FieldPlan(tweets=False, keeps=[])
        )
        found = top_emojis((t for path, _ in self.given for t in reader.texts(path, self.columns)), wanted)
        if len(found) < 2:
            raise EncajesError(f"--label-from-emoji {wanted}: the texts hold {len(found)} emoji(s); need 2.")
        return found

    def label_names(self, named: Counter[tuple[str, str]]) -> dict[str, str]:
        """From --label-names FILE when given, else from the name column of the rows."""
        if self.mapping is not None:
            return self.mapping
        return names_from_counts(named)

    def rebuild(self, entry: dict[str, Any]) -> IngestReport:
        return IngestReport.rebuild(entry["outputs"], corpus=self.work.corpus, rejects=self.work.rejects)


def reject_table(rejects: list[RejectedRow]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rejects file's rows by file and line, and the count of each reason (most first) for the report."""
    frame = pd.DataFrame(
        [(r.source, r.line, r.why.message, r.raw, r.why.counted_as) for r in rejects],
        columns=[*REJECT_COLUMNS, "counted_as"],
    ).sort_values(["source", "line"], kind="stable")
    counts = frame["counted_as"].value_counts()
    return frame[REJECT_COLUMNS], {str(k): int(v) for k, v in counts.items()}


def nothing_kept(rejects: list[RejectedRow]) -> str:
    """No row survived: say why, instead of writing an empty corpus that every later stage trips on."""
    reasons = Counter(r.why.counted_as for r in rejects).most_common(3)
    said = ", ".join(f"{count} {reason}" for reason, count in reasons)
    return (
        f"No row was kept ({len(rejects)} rejected: {said}); nothing was written. Check the text and "
        "label options."
    )


def refuse_other_corpus(work: Workdir, paths: list[str]) -> None:
    """A workdir holds one corpus: ingesting other files into it would silently replace it and turn every
    run made from it stale. The same files again (edited, relabelled) are an update, not a replacement."""
    entry = stage_entry(work.manifest, "ingest")
    if entry is None or not work.corpus.exists():
        return
    before = sorted(f["path"] for f in entry["inputs"].get("files", []))
    if before == sorted(paths):
        return
    runs = len(work.run_folders())
    raise EncajesError(
        f"{work.root} already holds a corpus from {', '.join(Path(p).name for p in before)}"
        f"{f' and {runs} run(s) made from it' if runs else ''}; ingesting "
        f"{', '.join(Path(p).name for p in paths)} would replace it. Use another --workdir, or --force to "
        "replace it."
    )


def ingest(
    csv_paths: Sequence[str | Path],
    workdir: str | Path,
    columns: Columns | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    force: bool = False,
) -> IngestReport:
    """Read tweet files into ``W/corpus.parquet`` and ``W/rejects.csv``; skip if the same inputs were
    ingested.
    Other files than the workdir's corpus came from are refused unless ``force`` (which also re-reads)."""
    work, fmt = Workdir.at(workdir), CsvFormat(delimiter, encoding)
    stage = IngestStage(work, csv_paths, columns or Columns(), fmt, replace=force)
    return run_stage(stage, force)


__all__ = ["Columns", "IngestReport", "ingest"]  # IngestReport lives in ``report``
