"""Kept fields: Twitter's (created_at, author, lang, retweet, reply, quote) from v1.1 and v2 records without
flags, and ``--keep-col`` columns, stored typed in corpus.parquet; a value that is not of its type is a
reject with the reason (or, with ``--lenient-cols``, null and counted), never text."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cli import main
from pipeline.artifacts.fields import labels_fingerprint
from pipeline.core.errors import EncajesError
from pipeline.stages.ingest.stage import Columns, ingest

BASE = ["row_id", "id", "text", "label", "split", "source", "line"]
TWITTER_TYPES = {
    "created_at": pa.timestamp("us", tz="UTC"),
    "author": pa.string(),
    "lang": pa.string(),
    "retweet": pa.bool_(),
    "reply": pa.bool_(),
    "quote": pa.bool_(),
}
V11 = [
    {"created_at": "Wed Oct 10 20:19:24 +0000 2018", "id_str": "1", "full_text": "hola mundo", "lang": "es",
     "user": {"screen_name": "ana", "followers_count": 10, "verified": True}, "in_reply_to_status_id": None,
     "is_quote_status": False, "label": "a", "place": {"country_code": "ES"}},
    {"created_at": "Thu Oct 11 01:00:00 -0300 2018", "id_str": "2", "text": "RT @ana: hola…", "lang": "es",
     "retweeted_status": {"full_text": "hola mundo entero"}, "is_quote_status": False, "label": "b",
     "user": {"screen_name": "bob", "followers_count": None, "verified": False}, "place": None},
    {"created_at": "2018-10-12T08:00:00+02:00", "id_str": "3", "text": "claro que sí", "lang": "es",
     "in_reply_to_status_id_str": "1", "user": {"screen_name": "carla"}, "label": "a"},
    {"created_at": "Fri Oct 12 10:00:00 +0000 2018", "id_str": "4", "text": "mira esto", "lang": "und",
     "is_quote_status": True, "quoted_status": {"text": "x"}, "user": {"screen_name": "ana"}, "label": "b"},
    {"created_at": "yesterday", "id_str": "5", "text": "fecha mala", "user": {"screen_name": "ana"},
     "label": "a"},
    {"id_str": "6", "text": "RT @bob: copiado", "user": {"screen_name": "dan"}, "label": "b"},
]  # fmt: skip
V2_PAGE = {
    "data": [
        {"id": "20", "text": "v2 hello", "author_id": "100", "created_at": "2021-06-01T12:00:00.000Z",
         "lang": "en", "referenced_tweets": [{"type": "replied_to", "id": "5"}],
         "edit_history_tweet_ids": ["20"]},
        {"id": "21", "text": "v2 quote", "author_id": "999", "created_at": "2021-06-02T00:00:00.000Z",
         "lang": "en", "referenced_tweets": [{"type": "quoted", "id": "6"}]},
        {"id": "22", "text": "v2 rt", "author_id": "100", "created_at": "not a date",
         "referenced_tweets": [{"type": "retweeted", "id": "7"}]},
        {"id": "23", "text": "v2 plain", "author_id": "100", "created_at": "2021-06-03T00:00:00Z"},
    ],
    "includes": {"users": [{"id": "100", "username": "dora"}]},
    "meta": {"result_count": 4},
}  # fmt: skip
PARQUET = [
    {"created_at": "Sat Jan 05 10:00:00 +0000 2019", "id_str": "30", "text": "desde parquet", "lang": "en",
     "user": {"screen_name": "eve"}, "is_quote_status": False, "label": "a"},
    {"created_at": "2019-01-06T00:00:00Z", "id_str": "31", "text": "RT @eve: otra", "lang": "en",
     "user": {"screen_name": "fin"}, "is_quote_status": False, "label": "b"},
]  # fmt: skip


def dump(tmp_path):
    """A v1.1 JSON lines file, a v2 page with includes.users and a parquet file of v1.1 tweets."""
    jsonl, page, parquet = tmp_path / "v11_train.jsonl", tmp_path / "page.json", tmp_path / "more.parquet"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in V11), encoding="utf-8")
    page.write_text(json.dumps(V2_PAGE, indent=2), encoding="utf-8")
    pd.DataFrame(PARQUET).to_parquet(parquet)
    return [jsonl, page, parquet]


def by_id(workdir) -> pd.DataFrame:
    return pd.read_parquet(workdir / "corpus.parquet").set_index("id")


def utc(*parts: int) -> pd.Timestamp:
    return pd.Timestamp(datetime(*parts, tzinfo=UTC))


def test_twitter_fields_are_kept_typed_from_v11_v2_and_parquet(tmp_path):
    report = ingest(dump(tmp_path), tmp_path / "w")
    schema = pq.read_schema(tmp_path / "w" / "corpus.parquet")
    assert schema.names == BASE + list(TWITTER_TYPES)
    assert {name: schema.field(name).type for name in TWITTER_TYPES} == TWITTER_TYPES
    assert report.fields == {"created_at": "timestamp", "author": "string", "lang": "string"} | {
        flag: "boolean" for flag in ("retweet", "reply", "quote")
    }
    corpus = by_id(tmp_path / "w")
    assert corpus.loc["1", "created_at"] == utc(2018, 10, 10, 20, 19, 24)
    assert corpus.loc["2", "created_at"] == utc(2018, 10, 11, 4)  # -0300 -> UTC
    assert corpus.loc["3", "created_at"] == utc(2018, 10, 12, 6)  # ISO with an offset
    assert corpus.loc["20", "created_at"] == utc(2021, 6, 1, 12)  # v2's ISO with Z
    assert corpus.loc["31", "created_at"] == utc(2019, 1, 6)
    assert pd.isna(corpus.loc["6", "created_at"])  # no date: null, not a reject
    authors = corpus["author"].to_dict()
    assert [authors[i] for i in ("1", "2", "3", "20", "21", "23", "30")] == [
        *("ana", "bob", "carla", "dora", "999", "dora", "eve")  # v2: includes.users, else the author_id
    ]
    assert corpus.loc["4", "lang"] == "und" and pd.isna(corpus.loc["23", "lang"])
    flags = corpus[["retweet", "reply", "quote"]].astype(bool)
    assert flags.loc[["2", "6", "31"], "retweet"].all()  # retweeted_status, or a text starting 'RT @'
    assert flags.loc[["3", "20"], "reply"].all() and flags.loc[["4", "21"], "quote"].all()
    assert flags.sum().to_dict() == {"retweet": 3, "reply": 2, "quote": 2}  # everything else false
    rejects = pd.read_csv(tmp_path / "w" / "rejects.csv")
    assert sorted(rejects["reason"]) == [
        "created_at: 'not a date' is not a timestamp",
        "created_at: 'yesterday' is not a timestamp",
    ]
    assert report.reject_reasons == {"bad created_at": 2}
    assert "  rejected      2  bad created_at" in report.lines()
    assert report.rows_read == report.rows_kept + report.rows_rejected == 12
    assert ingest(dump(tmp_path), tmp_path / "w").fields == report.fields  # rebuilt when fresh


def test_lenient_cols_keep_rows_whose_values_do_not_parse_as_null(tmp_path):
    report = ingest(dump(tmp_path), tmp_path / "w", Columns(lenient_cols=True))
    corpus = by_id(tmp_path / "w")
    assert report.rows_rejected == 0 and report.rows_kept == 12
    assert corpus.loc[["5", "22"], "created_at"].isna().all()
    assert corpus.loc["22", "author"] == "dora" and bool(corpus.loc["22", "retweet"])  # v2's retweeted
    assert report.fields_set_missing == {"created_at": 2}
    assert any("set missing" in line and "2" in line and "created_at" in line for line in report.lines())


def test_plain_files_keep_no_fields(tmp_path):
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"text": "hola", "created_at": "ayer", "lang": "es"}\n', encoding="utf-8")
    table = tmp_path / "t.csv"
    table.write_text("text,created_at,lang\nhola,ayer,es\n", encoding="utf-8")
    report = ingest([plain, table], tmp_path / "w")
    assert pq.read_schema(tmp_path / "w" / "corpus.parquet").names == BASE
    assert report.fields == {} and report.rows_kept == 2
    assert not any(line.startswith("kept fields") for line in report.lines())


def test_a_json_train_file_and_a_csv_test_file_share_one_schema(tmp_path):
    train = tmp_path / "tweets_train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in V11[:4]), encoding="utf-8")
    test = tmp_path / "tweets_test.csv"
    test.write_text("id,text,label\nt1,una prueba,a\nt2,otra prueba,b\n", encoding="utf-8")
    report = ingest([train, test], tmp_path / "w")
    schema = pq.read_schema(tmp_path / "w" / "corpus.parquet")
    assert {name: schema.field(name).type for name in TWITTER_TYPES} == TWITTER_TYPES
    corpus = by_id(tmp_path / "w")
    assert corpus.loc[["t1", "t2"], list(TWITTER_TYPES)].isna().all().all()
    assert corpus.loc["1", "author"] == "ana" and report.splits == {"train": 4, "test": 2}


CSV = (
    "id,text,n,x,flag,when,who,code,bad\n"
    "1,uno,1,1.5,yes,2021-06-01,ana,007,3\n"
    "2,dos,0,2,no,2021-06-02T10:00:00+02:00,,010,4\n"
    "3,tres,,-3e2,YES,2021-06-03 08:00,bob,,5\n"
    "4,cuatro,1,,false,,carla,1,tres\n"
)


def test_keep_col_on_csv_infers_types_or_takes_the_one_given(tmp_path):
    source = tmp_path / "t.csv"
    source.write_text(CSV, encoding="utf-8")
    keep = ("n", "x", "flag", "when", "who", "where=code:string", "n_flag=n:boolean", "number=bad:integer")
    report = ingest([source], tmp_path / "w", Columns(keep_col=keep))
    schema = pq.read_schema(tmp_path / "w" / "corpus.parquet")
    names = ["n", "x", "flag", "when", "who", "where", "n_flag", "number"]  # 'where': no internal key
    assert schema.names == BASE + names
    expected = [pa.int64(), pa.float64(), pa.bool_(), pa.timestamp("us", tz="UTC"), pa.string(), pa.string()]
    assert [schema.field(n).type for n in names] == [*expected, pa.bool_(), pa.int64()]
    corpus = by_id(tmp_path / "w")
    assert corpus["n"].tolist()[:2] == [1, 0] and pd.isna(corpus.loc["3", "n"])  # 1/0 infer as integers
    assert corpus["x"].tolist()[:3] == [1.5, 2.0, -300.0] and corpus["flag"].tolist()[:3] == [
        True,
        False,
        True,
    ]
    assert corpus.loc["2", "when"] == utc(2021, 6, 2, 8) and corpus.loc["3", "when"] == utc(2021, 6, 3, 8)
    assert corpus["where"].tolist()[:2] == ["007", "010"] and pd.isna(corpus.loc["2", "who"])
    assert corpus.loc["1", "n_flag"] and not corpus.loc["2", "n_flag"]
    rejects = pd.read_csv(tmp_path / "w" / "rejects.csv")
    assert rejects["reason"].tolist() == ["number: 'tres' is not an integer"]
    assert report.reject_reasons == {"bad number": 1}
    again = ingest([source], tmp_path / "w", Columns(keep_col=keep))
    assert again.skipped and again.fields == report.fields  # the same --keep-col: fresh
    assert report.fields == dict(zip(names, ["integer", "float", "boolean", "timestamp", "string", "string",
                                             "boolean", "integer"], strict=True))  # fmt: skip


def test_keep_col_follows_dotted_paths_into_json_records(tmp_path):
    source = tmp_path / "t.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in V11), encoding="utf-8")
    keep = ("followers=user.followers_count", "user.verified", "place.country_code", "user:string")
    ingest([source], tmp_path / "w", Columns(keep_col=keep, lenient_cols=True))
    schema = pq.read_schema(tmp_path / "w" / "corpus.parquet")
    names = ["followers", "user_verified", "place_country_code", "user"]
    assert schema.names == BASE + list(TWITTER_TYPES) + names
    assert [schema.field(n).type for n in names] == [pa.int64(), pa.bool_(), pa.string(), pa.string()]
    corpus = by_id(tmp_path / "w")
    assert corpus.loc["1", "followers"] == 10 and corpus["followers"].isna().sum() == 5  # null or absent
    assert corpus.loc["1", "user_verified"] and not corpus.loc["2", "user_verified"]
    assert corpus.loc["1", "place_country_code"] == "ES" and pd.isna(corpus.loc["2", "place_country_code"])
    assert json.loads(corpus.loc["3", "user"]) == {"screen_name": "carla"}  # an object, as JSON text


def test_clashing_names_and_paths_that_are_nowhere_are_clear_errors(tmp_path):
    source = tmp_path / "t.jsonl"
    source.write_text(json.dumps(V11[0]) + "\n", encoding="utf-8")
    table = tmp_path / "t.csv"
    table.write_text("text,n\nhola,1\n", encoding="utf-8")
    for spec, said in (("text", "a corpus column"), ("lang", "a Twitter field"), ("user.lang", None)):
        if said is None:
            with pytest.raises(EncajesError, match=r"no 'user\.lang'.*'user'.*--keep-col"):
                ingest([source], tmp_path / "w", Columns(keep_col=(spec,)))
            continue
        with pytest.raises(EncajesError, match=f"{said}; rename it with NEW=PATH"):
            ingest([source], tmp_path / "w", Columns(keep_col=(spec,)))
    with pytest.raises(EncajesError, match=r"no column 'm' to keep; the columns are \['text', 'n'\]"):
        ingest([table], tmp_path / "w", Columns(keep_col=("m",)))
    with pytest.raises(EncajesError, match="kept already"):
        ingest([table], tmp_path / "w", Columns(keep_col=("n", "n:float")))
    assert not (tmp_path / "w" / "corpus.parquet").exists()
    report = ingest([source, table], tmp_path / "w", Columns(keep_col=("n",)))  # in one file: null elsewhere
    assert report.fields_absent == {"t.jsonl": ["n"]}
    assert "  null in t.jsonl: n (not in that file)" in report.lines()


def test_kept_columns_leave_the_texts_and_labels_fingerprints_alone(tmp_path):
    source = tmp_path / "t.csv"
    source.write_text(CSV.replace(",tres\n", ",6\n"), encoding="utf-8")
    plain = ingest([source], tmp_path / "a")
    kept = ingest([source], tmp_path / "b", Columns(keep_col=("n", "when", "who")))
    assert kept.texts_sha256 == plain.texts_sha256 and kept.labels_sha256 == plain.labels_sha256
    assert kept.labels_sha256 == labels_fingerprint(tmp_path / "b" / "corpus.parquet")
    assert kept.fields_sha256 != plain.fields_sha256 and kept.corpus_sha256 != plain.corpus_sha256


def test_the_cli_keeps_columns_and_prints_their_kinds(tmp_path):
    files = dump(tmp_path)
    args = [
        "ingest",
        *map(str, files),
        "-w",
        str(tmp_path / "w"),
        "--keep-col",
        "followers=user.followers_count",
    ]
    result = CliRunner().invoke(main, [*args, "--lenient-cols"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "kept fields: created_at (timestamp), author (string)" in result.output
    assert "followers (integer)" in result.output and "null in page.json: followers" in result.output
    out = json.loads(CliRunner().invoke(main, [*args, "--lenient-cols", "--json"]).stdout)
    assert out["fields"]["followers"] == "integer" and out["fields_set_missing"] == {"created_at": 2}
    assert out["labels_sha256"] and out["fields_sha256"]


def test_one_bad_value_among_numbers_is_a_reject_not_a_reason_to_keep_text(tmp_path):
    """Inference tolerates one value in a hundred that does not parse: 199 follower counts and one 'lots'
    make an integer field and one reject (with --lenient-cols, a null); 3 and 3.5 make floats."""
    rows = [{"id_str": str(i), "full_text": f"tuit {i}", "n": i, "x": i} for i in range(199)]
    rows.append({"id_str": "199", "full_text": "tuit 199", "n": "lots", "x": 3.5})
    source = tmp_path / "t.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = ingest([source], tmp_path / "w", Columns(keep_col=("n", "x")))
    assert report.fields == {"n": "integer", "x": "float"}
    assert report.rows_rejected == 1 and report.reject_reasons == {"bad n": 1}
    lenient = ingest([source], tmp_path / "w2", Columns(keep_col=("n", "x"), lenient_cols=True))
    assert lenient.rows_kept == 200 and by_id(tmp_path / "w2")["n"].isna().sum() == 1
