"""CSV files -> header and records, streamed: the file is decoded block by block and only the lines of
the record being parsed are held, so a 10M-row file never sits in memory.

Strict on quoting, forgiving on the rest: a record whose quotes are broken becomes a reject and parsing
resumes on the line after the one that opened it. Lines end at \\n (or \\r\\n) only: ``str.splitlines``
would also cut at U+2028, U+0085, \\x1c... which can sit inside a tweet and must stay in its field.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.errors import EncajesError
from pipeline.stages.ingest.reject_reasons import Rejection, broken_quoting, field_count

BLOCK = 1 << 22  # bytes decoded at a time
BARE_CR_STANDIN = "\ue000"
FIELD_LIMIT = 1 << 26  # 64 MiB: a very long field is still a row (embed truncates and counts it)
csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))

BINARY_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip (or .xlsx)",
    b"\x89PNG": "PNG image",
    b"%PDF": "PDF",
    b"PAR1": "parquet",
    b"BZh": "bzip2",
    b"\xfd7zXZ": "xz",
}


GZIP_MAGIC = b"\x1f\x8b"
GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)  # cut short; damaged


def open_bytes(path: Path) -> Any:
    """The file's bytes, decompressed when it is gzipped (``tweets.csv.gz``, ``tweets.jsonl.gz``)."""
    with path.open("rb") as handle:
        gzipped = handle.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def broken_gzip(path: Path, error: BaseException, count: int, unit: str) -> EncajesError:
    """A gzip that breaks mid-way: say so in one line (gzip's EOFError would reach click as a bare
    "Aborted!"), with how far it got, since the rows before the break are not kept either."""
    what = "ends early (truncated?)" if isinstance(error, EOFError) else f"is damaged ({error})"
    if count == 0:  # before a first line: nothing of it could be read
        return EncajesError(
            f"{path}: this is a gzip file, not a CSV that can be read: it {what} before its first line; "
            "nothing was written. Re-download or re-compress it."
        )
    return EncajesError(
        f"{path}: the gzip file {what} after {count} {unit}; nothing was written. "
        "Re-download or re-compress it."
    )


def not_decodable(path: Path, encoding: str, where: str, bad: bytes) -> EncajesError:
    """Bytes the encoding cannot decode: name the place and both fixes (CSV and JSON alike)."""
    return EncajesError(
        f"{path}: {where} is not valid {encoding.upper()} (bytes {bad!r}). The file is probably Latin-1 or "
        f"Windows-1252: pass --encoding latin-1 (or cp1252), or re-encode it as UTF-8 "
        "(iconv -f latin1 -t utf-8)."
    )


def codec_of(encoding: str) -> str:
    """The codec to decode with (UTF-8 without a leading BOM); an unknown --encoding is an error."""
    if encoding.lower().replace("_", "-") in {"utf-8", "utf8"}:
        return "utf-8-sig"  # a BOM is not part of the first column's name
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise EncajesError(f"Unknown --encoding {encoding!r}: use e.g. utf-8, latin-1, cp1252.") from None


def _scan(path: Path, codec: str) -> bool:
    """Whether bare \\r (not part of \\r\\n) must be parked on a stand-in while parsing: the file has
    some, and does not use the stand-in character itself."""
    bom = "".encode(codec)  # utf-8-sig and utf-16 prefix every encode with a byte-order mark
    standin = BARE_CR_STANDIN.encode(codec, errors="ignore")[len(bom) :] or None
    bare_cr = has_standin = False
    previous, lines = b"", 0
    with open_bytes(path) as handle:
        while block := _read(handle, path, lines):
            lines += block.count(b"\n")
            joined = previous + block
            # a \r is bare when a byte other than \n follows it; one that ends the block waits for the next
            bare_cr = bare_cr or re.search(rb"\r(?=[^\n])", joined) is not None
            has_standin = has_standin or (standin is not None and standin in joined)
            previous = joined[-len(standin or b"x") :]
    bare_cr = bare_cr or previous.endswith(b"\r")
    return bare_cr and not has_standin


def _read(handle: Any, path: Path, lines: int, size: int = BLOCK) -> bytes:
    """Up to a block of the file (b"" at its end); a gzip that breaks is an error saying after how many
    lines. ``read1`` hands over what one step decompressed, so the lines before a break are counted."""
    try:
        return handle.read1(size)
    except GZIP_ERRORS as error:
        raise broken_gzip(path, error, lines, "lines") from None


def read_lines(path: Path, encoding: str, bare_cr: bool = False) -> Iterator[str]:
    """Physical lines, each with its line end; bare \\r parked on the stand-in when ``bare_cr``.
    A decoding failure names the line and the fix instead of a UnicodeDecodeError."""
    codec = codec_of(encoding)
    with open_bytes(path) as handle:
        head = _read(handle, path, 0, 8)  # a magic number, or the start of the first block
        for magic, kind in BINARY_MAGIC.items():
            if head.startswith(magic):
                raise EncajesError(
                    f"{path}: this is a {kind} file, not a CSV. Decompress it or export it as CSV (UTF-8) "
                    f"first."
                )
        decoder = codecs.getincrementaldecoder(codec)()
        pending, lines_before = "", 0
        while True:
            block = head + _read(handle, path, lines_before + pending.count("\n"))
            head = b""
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                start = max(0, min(error.start, len(block)))
                line = lines_before + pending.count("\n") + block[:start].count(b"\n") + 1
                raise not_decodable(path, encoding, f"line {line}", block[start : start + 4]) from None
            pending += text
            parts = pending.split("\n")
            pending = parts.pop()
            for part in parts:
                lines_before += 1
                yield _park(part + "\n") if bare_cr else part + "\n"
            if not block:
                break
        if pending:
            yield _park(pending) if bare_cr else pending


def _park(line: str) -> str:
    return re.sub(r"\r(?!\n)", BARE_CR_STANDIN, line) if "\r" in line else line


class _Lines:
    """Lines from a stream, kept from the start of the current record on: after a parse error, reading
    resumes right after the line that opened the bad record."""

    def __init__(self, source: Iterator[str]) -> None:
        self.source = source
        self.kept: list[str] = []
        self.base = 0  # line index of kept[0]
        self.pos = 0  # index of the next line to hand out

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while self.pos - self.base >= len(self.kept):
            self.kept.append(next(self.source))
        self.pos += 1
        return self.kept[self.pos - 1 - self.base]

    def text(self, begin: int, end: int) -> str:
        return "".join(self.kept[begin - self.base : end - self.base])

    def forget_before(self, index: int) -> None:
        if index > self.base:
            del self.kept[: index - self.base]
            self.base = index


@dataclass
class Record:
    line: int  # where it starts, 1-based
    fields: list[str]
    raw: str | None = None  # the record as written (JSON); None: the fields joined are the raw line
    obj: dict[str, Any] | None = None  # the decoded object (JSON, parquet): where kept fields are read
    users: dict[str, str] | None = None  # a v2 page's author id -> username (its includes.users)


@dataclass
class Reject:
    line: int
    why: Rejection  # its kind (``why.reason``) and the message rejects.csv shows (``why.message``)
    raw: str


@dataclass
class CsvStream:
    """One file's header, then (via ``records``) its records and rejects in file order."""

    path: Path
    header: list[str]
    records: Iterator[Record | Reject]
    counts: dict[str, int] = field(default_factory=lambda: {"blank_lines": 0})


def open_csv(path: Path, encoding: str, delimiter: str) -> CsvStream:
    """Parse the header now (its errors are the file's errors) and stream the records after it."""
    bare_cr = _scan(path, codec_of(encoding))
    lines = _Lines(read_lines(path, encoding, bare_cr))
    restore = (lambda value: value.replace(BARE_CR_STANDIN, "\r")) if bare_cr else (lambda value: value)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    header: list[str] | None = None
    while header is None:
        try:
            fields = next(reader)
        except StopIteration:
            raise EncajesError(
                f"{path}: the file is empty. Give a CSV with a header row (e.g. text,label)."
            ) from None
        except csv.Error as error:
            raise EncajesError(f"{path}: cannot parse the header line: {error}.") from None
        if fields and not (len(fields) == 1 and not fields[0].strip()):
            header = [name.strip() for name in fields]
    stream = CsvStream(path, header, iter(()))
    stream.records = _records(lines, reader, len(header), delimiter, restore, stream.counts)
    return stream


def _records(lines, reader, width, delimiter, restore, counts) -> Iterator[Record | Reject]:
    while True:
        start = lines.pos
        lines.forget_before(start)
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield Reject(
                start + 1, broken_quoting(error), restore(lines.text(start, start + 1).rstrip("\r\n"))
            )
            lines.pos = start + 1  # resume right after the line that opened the bad record
            reader = csv.reader(lines, delimiter=delimiter, strict=True)
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            counts["blank_lines"] += 1
            continue
        if len(fields) != width:
            yield Reject(
                start + 1,
                field_count(width, len(fields)),
                restore(lines.text(start, lines.pos).rstrip("\r\n")),
            )
            continue
        yield Record(start + 1, [restore(value) for value in fields])
