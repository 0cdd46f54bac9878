"""What ingest says it did: rows read, kept and rejected (by reason), splits, labels, the kept fields with
their kinds, and the fingerprints later stages depend on (texts for embeddings, texts with labels and
splits for probes, kept fields for maps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.stage_report import StageReport


@dataclass(kw_only=True)
class IngestReport(StageReport):
    stage = "ingest"
    corpus: Path
    rejects: Path
    rows_read: int
    rows_kept: int
    rows_rejected: int
    blank_lines: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)  # read/kept/rejected per input file
    splits: dict[str, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    reject_reasons: dict[str, int] = field(default_factory=dict)
    corpus_sha256: str = ""
    texts_sha256: str = ""  # row ids and texts only: what embeddings depend on
    labels_sha256: str = ""  # row ids, texts, labels and splits: what probes depend on
    fields_sha256: str = ""  # row ids and kept fields: what map pages depend on
    fields: dict[str, str] = field(default_factory=dict)  # kept field -> kind, in corpus order
    fields_set_missing: dict[str, int] = field(default_factory=dict)  # --lenient-cols: values not parsed
    fields_absent: dict[str, list[str]] = field(default_factory=dict)  # file name -> kept fields it lacks
    label_names: dict[str, str] = field(default_factory=dict)  # code -> name, shown in reports and maps
    label_emojis: list[str] = field(default_factory=list)  # --label-from-emoji's set
    leaked_rows: int = 0  # kept rows whose own label emoji is in their text
    train_test_duplicates: int = 0  # test rows whose text (normalised) is also a train text

    def lines(self) -> list[str]:
        rejects = f"  (rejects: {self.rejects})" if self.rows_rejected else ""
        return [
            f"{'unchanged, kept' if self.skipped else 'wrote'} {self.corpus}",
            f"rows read {self.rows_read} = kept {self.rows_kept} + rejected {self.rows_rejected}{rejects}",
            *(f"  rejected {count:>6}  {reason}" for reason, count in self.reject_reasons.items()),
            "splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()),
            *([NO_SPLIT_WARNING] if set(self.labels) - {"(none)"} and set(self.splits) <= {"(none)"} else []),
            f"labels: {len(self.labels)} distinct " + top_counts(self.labels)
            if set(self.labels) - {"(none)"}
            else "labels: none (search, maps and filters need none; probes need --label-col)",
            *(
                [f"label names: {len(self.label_names)} {top_counts(self.label_names)}"]
                * bool(self.label_names)
            ),
            *(
                [f"labels from emojis: {' '.join(self.label_emojis)} (removed from the texts)"]
                * bool(self.label_emojis)
            ),
            *self.field_lines(),
            *self.warnings(),
        ]

    def field_lines(self) -> list[str]:
        """The kept fields and their kinds; values --lenient-cols set missing; files without a field."""
        if not self.fields:
            return []
        out = ["kept fields: " + ", ".join(f"{name} ({kind})" for name, kind in self.fields.items())]
        out += [
            f"  set missing {count:>6}  {name} (did not parse; kept by --lenient-cols)"
            for name, count in self.fields_set_missing.items()
        ]
        out += [
            f"  null in {name}: {', '.join(kept)} (not in that file)"
            for name, kept in self.fields_absent.items()
        ]
        return out

    def warnings(self) -> list[str]:
        out = []
        if self.leaked_rows:
            out.append(
                f"warning: {self.leaked_rows:,} rows hold their own label emoji in the text: the label leaks "
                "into the input (--label-from-emoji removes it)"
            )
        if self.train_test_duplicates:
            out.append(
                f"warning: {self.train_test_duplicates:,} test rows repeat a train text (same after case, "
                "spaces, links and 'RT @user:'): retweets and copies inflate test scores"
            )
        return out


NO_SPLIT_WARNING = (
    "warning: labelled rows but no split: probes will draw a seeded 80/20 split. Name the files "
    "*_train / *_test (e.g. es_train.csv), give a split column, or ingest train=FILE test=FILE."
)


def top_counts(counts: dict[str, Any], n: int = 6) -> str:
    items = list(counts.items())[:n]
    more = ", ..." if len(counts) > n else ""
    return "(" + ", ".join(f"{k} {v}" for k, v in items) + more + ")"
