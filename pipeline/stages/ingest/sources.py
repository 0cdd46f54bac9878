"""One input file opened as a stream of records, whatever its format: CSV/TSV through ``csv_reader`` (its
header checked for the columns asked for), JSON and parquet through ``record_reader``. Gzipped CSV, TSV
and JSON lines are read as they are (``tweets.tsv.gz`` is tab-separated)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.core.settings import Columns, CsvFormat
from pipeline.stages.ingest.csv_reader import CsvStream, open_csv
from pipeline.stages.ingest.record_reader import POSITIONS, open_records, record_kind
from pipeline.stages.ingest.rows import check_columns


@dataclass
class Source:
    """A file's records, where each column sits in them, the delimiter to show raw rows with, and the
    kind of file ('csv', 'json' or 'parquet')."""

    stream: CsvStream
    positions: dict[str, int | None]
    delimiter: str
    kind: str

    def close(self) -> None:
        """Stop reading early (a peek): the file is closed now, not when the generator is collected."""
        close = getattr(self.stream.records, "close", None)
        if close is not None:
            close()


def open_source(path: Path, columns: Columns, fmt: CsvFormat) -> Source:
    kind = record_kind(path)
    if kind is not None:  # JSON lines / JSON / parquet: the columns come out in a fixed order
        return Source(open_records(path, columns, kind, fmt.encoding), dict(POSITIONS), ",", kind)
    tsv = path.name.lower().removesuffix(".gz").endswith(".tsv") and fmt.delimiter == ","
    delimiter = "\t" if tsv else fmt.delimiter
    stream = open_csv(path, fmt.encoding, delimiter)
    return Source(stream, check_columns(path, stream.header, columns, delimiter), delimiter, "csv")
