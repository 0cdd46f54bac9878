"""Emoji labels by distant supervision, tweet normalisation, leakage and train/test overlap checks."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.core.errors import EncajesError
from pipeline.stages.ingest.emoji_labels import label_by_emoji, parse_emoji_set, top_emojis
from pipeline.stages.ingest.reject_reasons import RejectReason
from pipeline.stages.ingest.stage import Columns, ingest
from pipeline.stages.ingest.tweet_text import duplicate_key, normalize_tweet
from tests.conftest import write_csv

RAW = [
    ("1", "te quiero ❤️ mucho ❤", "", "train"),  # one label emoji twice, once with a variation selector
    ("2", "vamos 👍🏽 equipo", "", "train"),  # a skin tone: the base emoji is the label
    ("3", "jaja 😂 ❤ ", "", "train"),  # two emojis of the set: rejected
    ("4", "sin emoji", "", "train"),  # none: rejected
    ("5", "🔥🔥 qué calor 😂", "", "test"),
    ("6", "❤️", "", "test"),  # nothing left once the label is removed: rejected
    ("7", "otra vez 😂 jaja", "", "test"),
]


def test_one_emoji_of_the_set_labels_the_tweet_and_leaves_its_text():
    assert label_by_emoji("te quiero ❤️ mucho ❤ 👍🏽", {"❤", "😂"}) == ("❤", "te quiero mucho 👍🏽", None)
    several = label_by_emoji("jaja 😂 ❤", {"❤", "😂"})[2]
    assert several.reason is RejectReason.SEVERAL_LABEL_EMOJIS
    assert several.message == "several emojis of the label set (😂 ❤)"
    assert several.counted_as == "several emojis of the label set"
    none = label_by_emoji("nada", {"❤"})[2]
    assert none.reason is RejectReason.NO_LABEL_EMOJI and none.message == "no emoji of the label set"
    assert parse_emoji_set("❤️, 😂,👍🏽") == ["❤", "😂", "👍"] and parse_emoji_set(" 4 ") == 4
    assert top_emojis(["a ❤ ❤", "b ❤️ 😂", "😂 🔥", "😂"], 2) == ["😂", "❤"]  # tweets, not occurrences


def test_ingest_labels_by_emoji_and_no_label_emoji_is_left_in_any_text(tmp_path):
    source = write_csv(tmp_path / "raw.csv", RAW)
    report = ingest([source], tmp_path / "w", Columns(label_from_emoji="❤,😂,👍,🔥"))
    corpus = pd.read_parquet(tmp_path / "w" / "corpus.parquet")
    rejects = pd.read_csv(tmp_path / "w" / "rejects.csv")
    assert report.rows_read == 7 == report.rows_kept + report.rows_rejected
    assert corpus["label"].tolist() == ["❤", "👍", "😂"]
    assert corpus["text"].tolist() == ["te quiero mucho", "vamos equipo", "otra vez jaja"]
    for text, label in zip(corpus["text"], corpus["label"], strict=True):
        assert label not in text and label_by_emoji(text, {"❤", "😂", "👍", "🔥"})[0] != label
    assert set(rejects["reason"].str.split(" \\(").str[0]) == {
        "several emojis of the label set",
        "no emoji of the label set",
        "nothing left once the label emoji is removed",
    }
    top = ingest([source], tmp_path / "w2", Columns(label_from_emoji="2"))
    assert top.label_emojis == ["❤", "😂"]  # in 3 tweets each; 👍 and 🔥 in one


def test_a_corpus_whose_labels_leak_into_the_texts_gets_a_warning(tmp_path):
    rows = [("1", "hola ❤️", "❤", "train"), ("2", "adiós", "😂", "train"), ("3", "hola", "❤", "test")]
    report = ingest([write_csv(tmp_path / "t.csv", rows)], tmp_path / "w")
    assert report.leaked_rows == 1 and any("label leaks" in line for line in report.lines())


def test_normalize_tweets_and_the_train_test_overlap_count(tmp_path):
    assert (
        normalize_tweet("@ana mira https://t.co/x y www.ej.com, a@b.com") == "@user mira http y http a@b.com"
    )
    assert duplicate_key("RT @x: Hola  MUNDO https://t.co/1") == duplicate_key("hola mundo")
    rows = [
        ("1", "@ana hola https://t.co/a", "a", "train"),
        ("2", "RT @bob: @ana HOLA  http://x.es", "a", "test"),  # a retweet of it
        ("3", "otro", "b", "test"),
    ]
    report = ingest([write_csv(tmp_path / "t.csv", rows)], tmp_path / "w", Columns(normalize="tweets"))
    corpus = pd.read_parquet(tmp_path / "w" / "corpus.parquet")
    assert corpus["text"].tolist()[:2] == ["@user hola http", "RT @user: @user HOLA  http"]
    assert report.train_test_duplicates == 1 and any("repeat a train text" in line for line in report.lines())
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["ingest"]["inputs"]["columns"]["normalize"] == "tweets"  # embeddings depend on it


def test_an_emoji_list_without_emojis_is_a_clear_error(tmp_path):
    with pytest.raises(EncajesError, match="no emoji found"):
        ingest([write_csv(tmp_path / "raw.csv", RAW)], tmp_path / "w", Columns(label_from_emoji="abc"))
