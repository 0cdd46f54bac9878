"""What ingest may do to a kept row's text and label, as asked: tweet normalisation (``--normalize
tweets``) and emoji labels by distant supervision (``--label-from-emoji``); and the leakage check every
labelled corpus gets (a row whose own label emoji is still in its text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.stages.ingest.emoji_labels import emojis_in, label_by_emoji, leaks
from pipeline.stages.ingest.reject_reasons import Rejection, nothing_left
from pipeline.stages.ingest.rows import has_visible_text
from pipeline.stages.ingest.tweet_text import duplicate_key, normalize_tweet


class TextRules:
    def __init__(self, normalize: str = "none", label_emojis: list[str] | None = None) -> None:
        self.normalize = normalize == "tweets"
        self.label_emojis = set(label_emojis) if label_emojis else None
        self.leaked = 0
        self._emoji_of: dict[str, str | None] = {}  # a label (or its name) -> its emoji, if it is one

    def apply(self, row: dict[str, Any], name: str = "") -> Rejection | None:
        """Rewrite the row as asked; the reason it cannot be kept, or None."""
        if self.normalize:
            row["text"] = normalize_tweet(row["text"])
        if self.label_emojis is not None:
            label, text, reason = label_by_emoji(row["text"], self.label_emojis)
            if reason:
                return reason
            if not has_visible_text(text):
                return nothing_left()
            row["label"], row["text"] = label, text
        elif row["label"] and (target := self._emoji(name or row["label"])) and target in row["text"]:
            self.leaked += leaks(row["text"], target)  # the substring test is the fast filter
        return None

    def _emoji(self, label: str) -> str | None:
        if label not in self._emoji_of:
            found = emojis_in(label)
            self._emoji_of[label] = found[0][0] if len(found) == 1 else None
        return self._emoji_of[label]


def train_test_duplicates(corpus: Path) -> int:
    """Test rows whose text is also a train text, read a row group at a time (64-bit keys only)."""
    import pyarrow.parquet as pq

    train: set[int] = set()
    test: list[int] = []
    for batch in pq.ParquetFile(corpus).iter_batches(columns=["text", "split"]):
        pairs = zip(batch.column("text").to_pylist(), batch.column("split").to_pylist(), strict=True)
        for text, split in pairs:
            if split == "train":
                train.add(duplicate_key(text))
            elif split == "test":
                test.append(duplicate_key(text))
    return sum(key in train for key in test)
