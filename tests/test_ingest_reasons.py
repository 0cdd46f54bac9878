"""Reject reasons are typed: every kind of unusable row reads as its ``RejectReason`` with the message
rejects.csv has always shown, and the ingest report counts rejects by kind under the labels it always
printed (field counts and split values named, everything in parentheses left out)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.errors import EncajesError
from pipeline.core.settings import Columns
from pipeline.stages.ingest.csv_reader import Reject, open_csv
from pipeline.stages.ingest.emoji_labels import label_by_emoji
from pipeline.stages.ingest.kept_fields import FileFields
from pipeline.stages.ingest.record_reader import POSITIONS, open_records, record_kind
from pipeline.stages.ingest.reject_reasons import RejectReason, duplicate_id, nothing_left
from pipeline.stages.ingest.rows import check_columns, row_from_record
from pipeline.stages.ingest.stage import ingest
from pipeline.stages.ingest.text_checks import TextRules

R = RejectReason
CSV = (
    "id,text,label,split\n"
    "1,hola mundo,a,train\n"
    "2,,a,train\n"
    '3,"\u200b\u200d",b,train\n'
    "4,con \x00 nul,a,train\n"
    "5,split raro,a,nope\n"
    "6,otro split,a,x (y\n"
    '7,"comilla sin cerrar,a,train\n'
    "8,muchos,campos,a,train\n"
    "9,tres,a\n"
    "1,duplicado,a,train\n"
    "10,adios mundo,b,train\n"
    "11,otro,b,test\n"
    "12,otro mas,a,test\n"
)
JSONL = [
    json.dumps({"id": "j1", "text": "uno", "label": "a"}),
    "{broken",
    "[1, 2]",
    '{"id": "j2", "body": "x"}',
]
# (kind, message in rejects.csv, the line the report counts it under), in file order
EXPECTED = [
    (R.EMPTY_TEXT, "empty text", "empty text"),
    (R.NO_VISIBLE_TEXT, "no visible text (only zero-width, control or format characters)", "no visible text"),
    (R.NUL_BYTES, "text contains NUL bytes", "text contains NUL bytes"),
    (R.UNKNOWN_SPLIT, "unknown split 'nope' (use train, val or test)", "unknown split 'nope'"),
    (R.UNKNOWN_SPLIT, "unknown split 'x (y' (use train, val or test)", "unknown split 'x"),
    (
        R.BROKEN_QUOTING,
        "broken quoting (unexpected end of data); fix the quotes of the record on this line",
        "broken quoting",
    ),
    (R.FIELD_COUNT, "expected 4 fields, found 5", "expected 4 fields, found 5"),
    (R.FIELD_COUNT, "expected 4 fields, found 3", "expected 4 fields, found 3"),
]
EXPECTED_JSON = [
    (R.INVALID_JSON, "invalid JSON (Expecting property name enclosed in double quotes)", "invalid JSON"),
    (R.NOT_AN_OBJECT, "not an object", "not an object"),
    (
        R.NO_TEXT_FIELD,
        "no text field (looked for retweeted_status.full_text, full_text, extended_tweet.full_text, text)",
        "no text field",
    ),
]


def typed(why) -> tuple[RejectReason, str, str]:
    return why.reason, why.message, why.counted_as


def write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    csv_path, jsonl = tmp_path / "es_train.csv", tmp_path / "more_test.jsonl"
    csv_path.write_text(CSV, encoding="utf-8")
    jsonl.write_text("\n".join(JSONL) + "\n", encoding="utf-8")
    return csv_path, jsonl


def test_each_reader_gives_the_kind_with_its_message(tmp_path):
    csv_path, jsonl = write_inputs(tmp_path)
    stream = open_csv(csv_path, "utf-8", ",")
    positions = check_columns(csv_path, stream.header, Columns(), ",")
    found = []
    for item in stream.records:
        why = item.why if isinstance(item, Reject) else row_from_record(item.fields, positions, None)[1]
        found += [typed(why)] if why else []
    assert found == EXPECTED
    records = open_records(jsonl, Columns(), record_kind(jsonl)).records
    assert [typed(item.why) for item in records if isinstance(item, Reject)] == EXPECTED_JSON
    row = row_from_record(["❤️", "", "", ""], POSITIONS, None)[0]
    assert typed(TextRules(label_emojis=["❤"]).apply(row)) == typed(nothing_left())
    assert typed(nothing_left()) == (R.NOTHING_LEFT, *["nothing left once the label emoji is removed"] * 2)
    assert typed(label_by_emoji("nada", {"❤"})[2]) == (R.NO_LABEL_EMOJI, *["no emoji of the label set"] * 2)
    bad_date = FileFields(False, False, [("when", "timestamp", 0)], lenient=False).values(
        stream_record("ayer")
    )[1]
    assert typed(bad_date) == (R.BAD_FIELD, "when: 'ayer' is not a timestamp", "bad when")
    assert typed(duplicate_id("7", "a.csv line 2")) == (
        R.DUPLICATE_ID,
        "duplicate id '7' (first on a.csv line 2)",
        "duplicate id",
    )


def stream_record(*fields: str):
    from pipeline.stages.ingest.csv_reader import Record

    return Record(2, list(fields))


def test_ingest_writes_the_messages_and_counts_by_kind(tmp_path):
    csv_path, jsonl = write_inputs(tmp_path)
    report = ingest([csv_path, jsonl], tmp_path / "w")
    rejects = pd.read_csv(tmp_path / "w" / "rejects.csv", keep_default_na=False)
    duplicate = (R.DUPLICATE_ID, "duplicate id '1' (first on es_train.csv line 2)", "duplicate id")
    expected = [*EXPECTED, duplicate, *EXPECTED_JSON]
    assert rejects["reason"].tolist() == [message for _, message, _ in expected]
    counted = pd.Series([label for _, _, label in expected]).value_counts()
    assert report.reject_reasons == {str(k): int(v) for k, v in counted.items()}
    lines = report.lines()
    assert (
        "  rejected      1  expected 4 fields, found 3" in lines
        and "  rejected      1  no text field" in lines
    )


def test_emoji_labels_and_nothing_kept_count_by_kind(tmp_path):
    source = tmp_path / "emoji.csv"
    source.write_text("text\nte quiero ❤️ mucho\njaja 😂 ❤\nnada\n❤️\nfuego 🔥\n", encoding="utf-8")
    report = ingest([source], tmp_path / "w", Columns(label_from_emoji="❤,😂"))
    assert report.reject_reasons == {
        "no emoji of the label set": 2,
        "several emojis of the label set": 1,
        "nothing left once the label emoji is removed": 1,
    }
    rejects = pd.read_csv(tmp_path / "w" / "rejects.csv")
    assert rejects["reason"].tolist()[0] == "several emojis of the label set (😂 ❤)"
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label,split\n,a,train\n ,b,train\nx,a,x (y\ny,a,q\nz,a,q\n", encoding="utf-8")
    said = "5 rejected: 2 empty text, 2 unknown split 'q', 1 unknown split 'x"
    with pytest.raises(EncajesError, match=f"No row was kept \\({said}\\); nothing was written"):
        ingest([bad], tmp_path / "w2")


def test_every_kind_is_produced_somewhere_in_these_tests():
    produced = {kind for kind, _, _ in [*EXPECTED, *EXPECTED_JSON]}
    produced |= {R.DUPLICATE_ID, R.NOTHING_LEFT, R.NO_LABEL_EMOJI, R.SEVERAL_LABEL_EMOJIS, R.BAD_FIELD}
    assert produced == set(RejectReason)
