"""Ingest: every row read is kept or rejected with a reason; bad files get errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import EncajesError
from pipeline.stages.ingest.stage import Columns, ingest
from tests.conftest import SAMPLE_ROWS, write_csv


def read_back(workdir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(workdir / "corpus.parquet"), pd.read_csv(workdir / "rejects.csv")


def test_clean_file_keeps_every_row_verbatim(tmp_path, sample_csv):
    report = ingest([sample_csv], tmp_path / "w")
    corpus, rejects = read_back(tmp_path / "w")
    assert report.rows_read == report.rows_kept == len(SAMPLE_ROWS)
    assert corpus["row_id"].tolist() == list(range(len(SAMPLE_ROWS)))
    assert corpus["text"].tolist() == [row[1] for row in SAMPLE_ROWS]
    assert corpus["label"].tolist() == [row[2] for row in SAMPLE_ROWS]
    assert corpus["id"].tolist() == [row[0] for row in SAMPLE_ROWS]
    assert corpus["line"].tolist() == list(range(2, len(SAMPLE_ROWS) + 2))
    assert rejects.empty


def test_unusable_rows_are_rejected_and_counts_add_up(tmp_path):
    raw = (
        "id,text,label\n"
        "1,hola que tal,a\n"
        "2,,b\n"  # empty text
        "3,   ,b\n"  # whitespace only
        '4,"texto con ""comillas"" bien, y coma",c\n'
        '5,"comilla sin cerrar,d\n'  # broken quoting: must not swallow the next rows
        "6,otra fila buena,e\n"
        "7,demasiados,campos,aqui,f\n"  # extra fields
        '8,"un tweet\ncon salto de linea",g\n'  # legit multi-line field
        "9,fila final,\n"  # no label: kept, label null
    )
    path = tmp_path / "messy.csv"
    path.write_text(raw, encoding="utf-8")
    report = ingest([path], tmp_path / "w")
    corpus, rejects = read_back(tmp_path / "w")
    assert report.rows_read == 9
    assert report.rows_kept + report.rows_rejected == report.rows_read
    assert corpus["id"].tolist() == ["1", "4", "6", "8", "9"]
    assert corpus["text"].tolist()[1] == 'texto con "comillas" bien, y coma'
    assert corpus["text"].tolist()[3] == "un tweet\ncon salto de linea"
    assert corpus["label"].isna().tolist() == [False, False, False, False, True]
    reasons = dict(zip(rejects["line"], rejects["reason"], strict=True))
    assert reasons[3] == reasons[4] == "empty text"
    assert "broken quoting" in reasons[6]
    assert "expected 3 fields, found 5" in reasons[8]
    assert rejects.loc[rejects["line"] == 6, "raw"].item() == '5,"comilla sin cerrar,d'


def test_unclosed_quote_at_end_of_file_costs_one_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('text,label\nbuena,a\n"mala sin cierre,b\nbuena otra vez,c\n', encoding="utf-8")
    report = ingest([path], tmp_path / "w")
    corpus, rejects = read_back(tmp_path / "w")
    assert corpus["text"].tolist() == ["buena", "buena otra vez"]
    assert rejects["line"].tolist() == [3]
    assert report.rows_read == 3


def test_split_comes_from_the_file_name_or_the_column(tmp_path):
    train = write_csv(tmp_path / "train.csv", [("1", "hola", "a")], "id,text,label")
    dev = write_csv(tmp_path / "dev.csv", [("2", "adios", "b")], "id,text,label")
    other = write_csv(tmp_path / "x.csv", [("3", "hey", "a", "Validation")], "id,text,label,split")
    report = ingest([train, dev, other], tmp_path / "w")
    corpus, _ = read_back(tmp_path / "w")
    assert corpus["split"].tolist() == ["train", "val", "val"]
    assert report.splits == {"val": 2, "train": 1}
    assert corpus["row_id"].tolist() == [0, 1, 2]


def test_split_can_be_given_per_file(tmp_path):
    trial = write_csv(tmp_path / "trial.csv", [("1", "hola", "a"), ("2", "que tal", "b")], "id,text,label")
    other = write_csv(tmp_path / "es.csv", [("3", "hola", "a"), ("4", "que tal", "b")], "id,text,label")
    report = ingest([f"train={trial}", f"test={other}"], tmp_path / "w")
    corpus, _ = read_back(tmp_path / "w")
    assert corpus["split"].tolist() == ["train", "train", "test", "test"]
    assert report.rows_read == 4


def test_custom_column_names_and_generated_ids(tmp_path):
    path = write_csv(tmp_path / "t.csv", [("hola", "x"), ("adios", "y")], "tweet,emoji")
    ingest([path], tmp_path / "w", Columns(text="tweet", label="emoji"))
    corpus, _ = read_back(tmp_path / "w")
    assert corpus["label"].tolist() == ["x", "y"]
    assert corpus["id"].tolist() == ["t:2", "t:3"]


def test_bom_and_crlf_are_handled(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufefftext,label\r\nhola,a\r\nqué tal,b\r\n".encode())
    ingest([path], tmp_path / "w")
    corpus, _ = read_back(tmp_path / "w")
    assert corpus["text"].tolist() == ["hola", "qué tal"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"text,label\n", "no rows"),
        (b"tweet,label\nhola,a\n", "--text-col"),
        (b"text;label\nhola;a\n", "--delimiter ';'"),
        (b"text\tlabel\nhola\ta\n", "--delimiter $'\\t'"),
        (b"\x1f\x8b\x08\x00binary", "gzip file, not a CSV"),
        ("text,label\nqué tal,a\n".encode("latin-1"), "--encoding latin-1"),
    ],
)
def test_bad_files_are_clear_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(EncajesError) as error:
        ingest([path], tmp_path / "w")
    assert message in str(error.value)
    assert "bad.csv" in str(error.value)
    assert not (tmp_path / "w" / "corpus.parquet").exists()


def test_latin1_file_ingests_with_its_encoding(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("text,label\nqué tal,a\n".encode("latin-1"))
    ingest([path], tmp_path / "w", encoding="latin-1")
    assert read_back(tmp_path / "w")[0]["text"].tolist() == ["qué tal"]


def test_explicit_missing_label_column_is_an_error(tmp_path, sample_csv):
    with pytest.raises(EncajesError, match="no label column 'emoji'"):
        ingest([sample_csv], tmp_path / "w", Columns(label="emoji"))


def test_rerun_with_same_inputs_skips_and_changed_file_reruns(tmp_path, sample_csv):
    first = ingest([sample_csv], tmp_path / "w")
    mtime = (tmp_path / "w" / "corpus.parquet").stat().st_mtime_ns
    second = ingest([sample_csv], tmp_path / "w")
    assert not first.skipped and second.skipped
    assert second.rows_kept == first.rows_kept
    assert (tmp_path / "w" / "corpus.parquet").stat().st_mtime_ns == mtime
    write_csv(sample_csv, SAMPLE_ROWS[:3])
    third = ingest([sample_csv], tmp_path / "w")
    assert not third.skipped and third.rows_kept == 3
    assert ingest([sample_csv], tmp_path / "w", force=True).skipped is False


def test_artifacts_get_normal_permissions(tmp_path, sample_csv):
    import os
    import stat

    ingest([sample_csv], tmp_path / "w")
    mask = os.umask(0)
    os.umask(mask)
    mode = stat.S_IMODE((tmp_path / "w" / "corpus.parquet").stat().st_mode)
    assert mode == 0o666 & ~mask


def test_unicode_line_separators_stay_inside_the_text(tmp_path):
    texts = ["uno\u2028dos", "tres\x85cuatro", "cinco\x1cseis", "siete\rocho", "nueve\r\ndiez"]
    path = write_csv(tmp_path / "t.csv", [(str(i), t, "a") for i, t in enumerate(texts)], "id,text,label")
    report = ingest([path], tmp_path / "w")
    assert report.rows_kept == 5
    assert read_back(tmp_path / "w")[0]["text"].tolist() == texts


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("with_bare_cr", [False, True])
def test_private_use_character_survives_crlf_and_bare_cr(tmp_path, newline, with_bare_cr):
    """U+E000 is where bare \\r is parked while parsing: a tweet that holds it must come back as is
    (found by the property test: a BOM-prefixed search and a \\r\\n at a block end made it a \\r)."""
    texts = ["\ue000", "a\ue000b"] + (["uno\rdos"] if with_bare_cr else [])
    body = newline.join(["id,text"] + [f'{i},"{t}"' for i, t in enumerate(texts)]) + newline
    path = tmp_path / "t.csv"
    path.write_bytes(body.encode())
    report = ingest([path], tmp_path / "w")
    kept = read_back(tmp_path / "w")[0]["text"].tolist()
    assert report.rows_kept + report.rows_rejected == len(texts)
    assert kept[:2] == texts[:2]


def test_duplicate_ids_keep_the_first_and_reject_the_rest(tmp_path):
    a = write_csv(tmp_path / "a.csv", [("1", "hola", "x"), ("2", "adios", "y")], "id,text,label")
    b = write_csv(tmp_path / "b.csv", [("2", "otra vez", "y"), ("3", "nuevo", "z")], "id,text,label")
    report = ingest([a, b], tmp_path / "w")
    corpus, rejects = read_back(tmp_path / "w")
    assert corpus["id"].tolist() == ["1", "2", "3"] and corpus["text"].tolist()[1] == "adios"
    assert rejects["reason"].tolist() == ["duplicate id '2' (first on a.csv line 3)"]
    assert report.rows_read == 4 and report.rows_kept == 3 and report.rows_rejected == 1
    assert [f["rejected"] for f in report.files] == [0, 1]
    assert report.reject_reasons == {"duplicate id": 1}


def test_very_long_field_and_nul_bytes(tmp_path):
    long_text = "palabra " * 40_000  # 320 kB, over the csv module's default field limit
    path = tmp_path / "t.csv"
    path.write_text(f'text,label\n"{long_text}",a\n"con\x00nul",b\nnormal,c\n', encoding="utf-8")
    report = ingest([path], tmp_path / "w")
    corpus, rejects = read_back(tmp_path / "w")
    assert corpus["text"].tolist() == [long_text, "normal"]
    assert rejects["reason"].tolist() == ["text contains NUL bytes"]
    assert report.rows_read == 3


def test_corpus_texts_slices_across_row_groups_equal_the_column(tmp_path):
    from pipeline.artifacts.corpus import CorpusTexts

    frame = pd.DataFrame({"row_id": range(50), "text": [f"tweet {i}" for i in range(50)]})
    frame.to_parquet(tmp_path / "c.parquet", index=False, row_group_size=7)
    texts = CorpusTexts(tmp_path / "c.parquet")
    column = frame["text"].tolist()
    assert len(texts) == 50
    for begin, end in [(0, 50), (0, 7), (5, 9), (7, 14), (13, 48), (49, 60), (60, 70), (20, 20)]:
        assert texts[begin:end] == column[begin:end]
    assert texts[0] == "tweet 0" and texts[-1] == "tweet 49"
    for positions in ([], [0], [6, 7], [0, 3, 3, 13, 14, 48, 49], list(range(50))):
        assert texts.take(np.array(positions)) == [column[p] for p in positions]
    with pytest.raises(ValueError, match="sorted"):
        texts.take(np.array([5, 2]))


def test_streamed_ingest_across_row_groups_keeps_order_ids_and_fingerprint(tmp_path, monkeypatch):
    """Small row groups force many parquet groups and duplicate checks across batches and files."""
    import pipeline.stages.ingest.corpus_writer as writer_module
    from pipeline.artifacts.corpus import CorpusTexts, texts_fingerprint
    from pipeline.core.layout import Workdir
    from pipeline.core.manifest import stage_entry

    monkeypatch.setattr(writer_module, "ROW_GROUP", 4)
    a = tmp_path / "a.csv"
    a.write_text("id,text\n" + "".join(f"{i},tweet {i}\n" for i in range(10)), encoding="utf-8")
    b = tmp_path / "b.csv"
    b.write_text("id,text\n3,again three\n10,ten\n10,ten again\n11,eleven\n", encoding="utf-8")
    report = ingest([a, b], tmp_path / "w")
    assert (report.rows_read, report.rows_kept, report.rows_rejected) == (14, 12, 2)
    corpus = pd.read_parquet(tmp_path / "w" / "corpus.parquet")
    assert corpus["row_id"].tolist() == list(range(12))
    assert corpus["id"].tolist() == [str(i) for i in range(12)]
    rejects = pd.read_csv(tmp_path / "w" / "rejects.csv")
    assert rejects["reason"].tolist() == [
        "duplicate id '3' (first on a.csv line 5)",
        "duplicate id '10' (first on b.csv line 3)",
    ]
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "w" / "corpus.parquet").num_row_groups == 3
    assert CorpusTexts(tmp_path / "w" / "corpus.parquet")[3:9] == corpus["text"].tolist()[3:9]
    work = Workdir.at(tmp_path / "w")
    recorded = stage_entry(work.manifest, "ingest")["outputs"]["texts_sha256"]
    assert recorded == texts_fingerprint(corpus)


def test_a_failing_file_leaves_no_partial_corpus(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("text\nhola\n", encoding="utf-8")
    empty = tmp_path / "empty.csv"
    empty.write_text("text\n", encoding="utf-8")
    with pytest.raises(EncajesError, match="no rows"):
        ingest([good, empty], tmp_path / "w")
    assert not list((tmp_path / "w").glob("*corpus*"))


def test_label_names_come_from_an_emoji_column_or_a_mapping_file(tmp_path):
    import json

    rows = [
        ("1", "hola", "0", "❤", "train"),
        ("2", "jaja", "1", "😂", "test"),
        ("3", "amor", "0", "❤", "test"),
    ]
    source = write_csv(tmp_path / "coded.csv", rows, header="id,text,label,emoji,split")
    ingest([source], tmp_path / "w")
    assert json.loads((tmp_path / "w" / "label_names.json").read_text(encoding="utf-8")) == {
        "0": "❤",
        "1": "😂",
    }

    mapping = write_csv(tmp_path / "mapping.csv", [("0", "red_heart"), ("1", "joy")], header="label,name")
    plain = write_csv(tmp_path / "plain.csv", [(r[0], r[1], r[2], r[4]) for r in rows])
    ingest([plain], tmp_path / "w2", Columns(label_names=str(mapping)))
    assert json.loads((tmp_path / "w2" / "label_names.json").read_text(encoding="utf-8")) == {
        "0": "red_heart",
        "1": "joy",
    }
    with pytest.raises(EncajesError, match="--label-name-col"):
        ingest([plain], tmp_path / "w3", Columns(label_name="emoji"))
    ingest([plain], tmp_path / "w4")  # no name column: an empty mapping, never a stale one
    assert json.loads((tmp_path / "w4" / "label_names.json").read_text(encoding="utf-8")) == {}


def test_split_words_in_file_names_and_a_loud_note_without_any(tmp_path):
    from pipeline.stages.ingest.rows import split_from_filename

    named = {
        "es4_train.csv": "train",
        "train-2019.jsonl": "train",
        "test_es.parquet": "test",
        "dev.tsv": "val",
    }
    for name, split in named.items():
        assert split_from_filename(Path(name)) == split, name
    for name in ("contest.csv", "es_trial.csv", "train_test.csv", "tweets.csv"):
        assert split_from_filename(Path(name)) is None, name
    rows = [("1", "hola", "a", ""), ("2", "adiós", "b", "")]
    train = write_csv(tmp_path / "es4_train.csv", rows)
    test = write_csv(tmp_path / "es4_test.csv", [("3", "hasta luego", "a", "")])
    report = ingest([train, test], tmp_path / "w")
    assert report.splits == {"train": 2, "test": 1} and not any("no split" in line for line in report.lines())
    report = ingest([write_csv(tmp_path / "tweets.csv", rows)], tmp_path / "w2")
    assert any(line.startswith("warning: labelled rows but no split") for line in report.lines())


def test_text_with_nothing_visible_is_rejected_like_an_empty_one(tmp_path):
    rows = [("1", "\u200b\u200d", "a", "train"), ("2", "\x01\x02", "a", "train"), ("3", "❤️", "a", "train")]
    report = ingest([write_csv(tmp_path / "t.csv", rows)], tmp_path / "w")
    corpus, rejects = read_back(tmp_path / "w")
    assert report.rows_kept == 1 and corpus["text"].tolist() == ["❤️"]
    assert rejects["reason"].str.startswith("no visible text").sum() == 2


def test_a_bad_label_names_file_fails_before_the_corpus_is_touched(tmp_path, sample_csv):
    ingest([sample_csv], tmp_path / "w")
    before = (tmp_path / "w" / "corpus.parquet").read_bytes()
    bad = write_csv(tmp_path / "names.csv", [("x", "y")], header="code,title")
    other = write_csv(tmp_path / "other.csv", [("z1", "otro texto", "a", "train")])
    with pytest.raises(EncajesError, match="needs a 'label' column"):
        ingest([other], tmp_path / "w", Columns(label_names=str(bad)))
    assert (tmp_path / "w" / "corpus.parquet").read_bytes() == before


def test_other_files_never_silently_replace_a_workdirs_corpus(tmp_path, sample_csv, monkeypatch):
    from click.testing import CliRunner

    from cli import main

    ingest([sample_csv], tmp_path / "w")
    before = (tmp_path / "w" / "corpus.parquet").read_bytes()
    other = write_csv(tmp_path / "other.csv", [("z1", "otro texto", "a", "train")])
    with pytest.raises(EncajesError, match=r"already holds a corpus from tweets\.csv.*--force to replace"):
        ingest([other], tmp_path / "w")
    assert (tmp_path / "w" / "corpus.parquet").read_bytes() == before
    assert ingest([other], tmp_path / "w", force=True).rows_kept == 1  # asked for: replaced
    monkeypatch.chdir(tmp_path)  # the default workdir is relative to where the command runs
    out = CliRunner().invoke(main, ["ingest", str(other), "--json"], catch_exceptions=False)
    assert "workdir: work/demo (the default" in out.stderr  # no --workdir: the folder used is said
