"""Corpus rows -> ``corpus.parquet``, one row group at a time, so memory does not grow with the corpus.
Kept fields follow the corpus' own columns with their Arrow types fixed before the first row (a group
where a field is all null still has its type, so every group fits the one schema)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.artifacts.fields import FieldInfo
from pipeline.core.atomic import publish
from pipeline.core.layout import Workdir
from pipeline.stages.ingest.rows import corpus_frame
from pipeline.stages.ingest.values import arrow_array, arrow_type

ROW_GROUP = 65_536  # rows a parquet group: what the embed stage reads at a time


class CorpusSink:
    """Corpus rows -> ``corpus.parquet`` one 64k-row group at a time (written to a temporary file and
    moved into place at the end), counting splits and labels on the way."""

    def __init__(self, work: Workdir, fields: Sequence[FieldInfo] = ()) -> None:
        self.work = work
        self.fields = list(fields)
        self.tmp = work.corpus.with_name(f".{work.corpus.name}.{os.getpid()}.tmp")
        self.writer: Any = None
        self.rows = 0
        self.splits: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.buffer: list[dict] = []
        self.group_rows = ROW_GROUP

    def write(self, rows: list[dict]) -> None:
        self.buffer.extend(rows)
        while len(self.buffer) >= self.group_rows:
            self._write_group(self.buffer[: self.group_rows])
            del self.buffer[: self.group_rows]

    def _write_group(self, rows: list[dict]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = corpus_frame(rows, self.rows)
        self.splits.update(frame["split"].fillna("(none)").astype(str))
        self.labels.update(frame["label"].fillna("(none)").astype(str))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        columns = list(zip(*(row["kept"] for row in rows), strict=True)) if rows else [()] * len(self.fields)
        for kept, values in zip(self.fields, columns, strict=True):
            column = arrow_array(list(values), kept.kind)
            table = table.append_column(pa.field(kept.name, arrow_type(kept.kind)), column)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table, row_group_size=self.group_rows)
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
        publish(self.tmp, self.work.corpus)
        return self.work.corpus
