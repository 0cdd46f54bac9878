"""Ingest beyond CSV: JSON lines (plain and gzipped), JSON arrays, Twitter v2 pages and parquet, with the
same row accounting, Twitter's conventions, dotted paths into nested fields, and clear errors."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from pipeline.core.errors import EncajesError
from pipeline.stages.ingest.stage import Columns, ingest

TWEETS = [
    {"id": 1111111111111111111, "id_str": "1111111111111111111", "full_text": "hola mundo", "label": "a",
     "user": {"lang": "es"}},
    {"id_str": "2", "text": "RT @x: el texto cort…", "retweeted_status": {"full_text": "el texto completo"},
     "label": "b", "user": {"lang": "en"}},
    {"id_str": "3", "text": "   ", "label": "a", "user": {"lang": "es"}},
    {"id_str": "4", "label": "a"},
]  # fmt: skip


def write_jsonl(path, records, extra_lines=()):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        for line in extra_lines:
            handle.write(line + "\n")
    return path


def test_json_lines_follow_twitter_conventions_and_account_for_every_line(tmp_path):
    source = write_jsonl(tmp_path / "es_train.jsonl", TWEETS, extra_lines=["{broken", "", "[1, 2]"])
    report = ingest([source], tmp_path / "w")
    corpus = pd.read_parquet(tmp_path / "w" / "corpus.parquet")
    rejects = pd.read_csv(tmp_path / "w" / "rejects.csv")
    assert report.rows_read == 6 == report.rows_kept + report.rows_rejected  # a blank line is no record
    assert corpus["text"].tolist() == ["hola mundo", "el texto completo"]  # a retweet's full text
    assert corpus["id"].tolist() == ["1111111111111111111", "2"]  # id_str: no digits lost
    assert set(corpus["split"]) == {"train"}  # from the file name's token
    reasons = dict(zip(rejects["line"], rejects["reason"], strict=True))
    assert reasons[3] == "empty text" and reasons[4].startswith("no text field")
    assert reasons[5].startswith("invalid JSON") and reasons[7] == "not an object"


def test_gzipped_lines_arrays_v2_pages_and_parquet(tmp_path):
    gz = write_jsonl(tmp_path / "more.jsonl.gz", [{"id_str": "9", "full_text": "desde gzip", "label": "b"}])
    array = tmp_path / "array.json"
    array.write_text(json.dumps([{"id": 5, "text": "en un array", "label": "a"}]), encoding="utf-8")
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"data": [{"id": "7", "text": "página v2"}], "meta": {}}, indent=2), "utf-8")
    parquet = tmp_path / "tweets_test.parquet"
    pd.DataFrame({"text": ["parquet uno"], "label": [3], "meta": [{"lang": "es"}]}).to_parquet(parquet)
    ingest([gz, array, page, parquet], tmp_path / "w")
    corpus = pd.read_parquet(tmp_path / "w" / "corpus.parquet")
    assert corpus["text"].tolist() == ["desde gzip", "en un array", "página v2", "parquet uno"]
    assert corpus["label"].tolist()[-1] == "3" and corpus["split"].tolist()[-1] == "test"
    ingest([parquet], tmp_path / "w2", Columns(label="meta.lang"))
    assert pd.read_parquet(tmp_path / "w2" / "corpus.parquet")["label"].tolist() == ["es"]


def test_a_nested_column_that_is_not_there_names_the_keys_that_are(tmp_path):
    source = write_jsonl(tmp_path / "t.jsonl", TWEETS)
    ingest([source], tmp_path / "w", Columns(label="user.lang"))
    assert pd.read_parquet(tmp_path / "w" / "corpus.parquet")["label"].tolist() == ["es", "en"]
    with pytest.raises(EncajesError, match=r"no 'user\.langg'.*'user'.*--label-col"):
        ingest([source], tmp_path / "w2", Columns(label="user.langg"))


def write_array(path, count: int, seed: int) -> list[dict]:
    """A JSON array of objects from a few characters to 150k, strings full of brackets, commas, quotes
    and escapes, so read blocks end anywhere inside them."""
    import random

    rng = random.Random(seed)
    piece = 'tuit ❤ ] [ , " \\ { '
    items = [
        {
            "id": i,
            "text": (piece * 8000)[: rng.choice([3, 40, 20_000, 150_000])] + str(i),
            "n": {"a": [1, {"b": "]"}]},
        }
        for i in range(count)
    ]
    path.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
    return items


def read_array(path, items: list[dict]) -> int:
    """Peak bytes allocated while ``open_records`` (what ingest reads JSON with) streams the file, each
    record checked on the way against the element it came from (nothing is kept)."""
    import tracemalloc

    from pipeline.stages.ingest.record_reader import open_records

    tracemalloc.start()
    try:
        for record, item in zip(open_records(path, Columns(), "json").records, items, strict=True):
            assert record.fields[0] == item["text"] and json.loads(record.raw) == item
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_json_array_streams_element_by_element(tmp_path):
    """Arrays of megabytes come back element for element, and the memory reading one takes does not grow
    with its size (a whole-file parse holds several times the file)."""
    small, large = tmp_path / "small.json", tmp_path / "large.json"
    small_peak = read_array(small, write_array(small, 100, seed=1))
    large_peak = read_array(large, write_array(large, 400, seed=2))
    grown = large.stat().st_size - small.stat().st_size
    assert grown > 10_000_000 and large_peak - small_peak < grown / 4
    items = [{"id": i, "text": f'tuit {i} ❤ ] [ , "', "n": {"a": [1, {"b": "]"}]}} for i in range(3000)]
    source = tmp_path / "big.json"
    source.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
    report = ingest([source], tmp_path / "w")
    assert report.rows_read == report.rows_kept == 3000
    broken = tmp_path / "broken.json"
    broken.write_text('[{"text": "uno"}, {"text": ]', encoding="utf-8")
    with pytest.raises(EncajesError, match="not valid JSON in element 2"):
        ingest([broken], tmp_path / "w2")
    assert not (tmp_path / "w2" / "corpus.parquet").exists()
