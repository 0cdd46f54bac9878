"""Property tests: for any CSV the csv module can write, ingest keeps or rejects every row, and a kept
row's text comes back byte for byte."""

from __future__ import annotations

import csv
import io
import tempfile
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.errors import EncajesError
from pipeline.stages.ingest.stage import ingest

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
ROWS = st.lists(st.tuples(TEXT, st.one_of(st.none(), st.sampled_from(["❤", "😂", "a b", ""]))), max_size=25)


def write(rows, newline: str, header: bool = True, first_id: int = 0) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    if header:
        writer.writerow(["id", "text", "label"])
    for i, (text, label) in enumerate(rows, start=first_id):
        writer.writerow([i, text, label or ""])
    return buffer.getvalue().encode("utf-8")


def usable(text: str) -> bool:
    """Some character a reader can see, and no NUL. Unassigned code points count as visible: they may be
    emoji newer than Python's Unicode tables."""
    hidden = ("Cc", "Cf", "Mn", "Zs", "Zl", "Zp")
    visible = any(unicodedata.category(ch) not in hidden and not ch.isspace() for ch in text)
    return visible and "\x00" not in text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS.filter(len), newline=st.sampled_from(["\n", "\r\n"]))
def test_every_row_is_kept_verbatim_or_rejected(rows, newline):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tweets.csv"
        path.write_bytes(write(rows, newline))
        if not any(usable(text) for text, _ in rows):  # nothing to keep: a clear error, nothing written
            with pytest.raises(EncajesError, match="No row was kept"):
                ingest([path], Path(tmp) / "w")
            assert not (Path(tmp) / "w" / "corpus.parquet").exists()
            return
        report = ingest([path], Path(tmp) / "w")
        corpus = pd.read_parquet(Path(tmp) / "w" / "corpus.parquet")
    assert report.rows_read == len(rows)
    assert report.rows_kept + report.rows_rejected == report.rows_read
    expected = [(str(i), text) for i, (text, _) in enumerate(rows) if usable(text)]
    assert list(zip(corpus["id"], corpus["text"], strict=True)) == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=ROWS.filter(len),
    where=st.integers(min_value=0),
    garbage=st.sampled_from(['"abierta sin cerrar,x', 'x,"mal" cerrada",y', "solo_un_campo", "a,b,c,d,e"]),
)
def test_a_broken_line_never_corrupts_kept_texts(rows, where, garbage):
    # one record per entry: a line put inside a quoted multi-line text would be part of it, rightly
    records = [write([row], "\n", header=False, first_id=i).decode() for i, row in enumerate(rows)]
    records.insert(where % (len(rows) + 1), garbage + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tweets.csv"
        path.write_text("id,text,label\n" + "".join(records), encoding="utf-8")
        try:
            report = ingest([path], Path(tmp) / "w")
        except EncajesError as error:  # every row unusable or swallowed by the broken one
            assert "No row was kept" in str(error)
            return
        corpus = pd.read_parquet(Path(tmp) / "w" / "corpus.parquet")
    assert report.rows_kept + report.rows_rejected == report.rows_read
    originals = {(str(i), text) for i, (text, _) in enumerate(rows)}
    kept = set(zip(corpus["id"], corpus["text"], strict=True))
    # An open quote that a later record happens to close makes one well-formed record of the lines
    # between: like any CSV reader we keep it. Every other kept row is an input row, verbatim.
    assert len(kept - originals) <= (1 if garbage.startswith('"') else 0)
