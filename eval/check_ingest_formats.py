"""Check of ingest on tweet dumps in other shapes: SemEval-2018 es test written as JSON lines, gzipped
JSON lines (Twitter v1.1-style objects: id_str, full_text, nested user) and parquet, with each tweet's
emoji put back into its text (as a raw tweet has it: some with a variation selector, a skin-tone-free
copy, some with a second emoji). Ingests each with ``--label-from-emoji 4`` and checks: read = kept +
rejected for every file, no kept text holds any of the 4 label emojis, and every kept label is the emoji
that was put back. Prints one JSON summary. Data stay under a temporary folder.

    .venv/bin/python eval/check_ingest_formats.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from pipeline.stages.ingest.emoji_labels import emojis_in
from pipeline.stages.ingest.stage import Columns, ingest

SOURCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "semeval2018_es" / "test.csv"


def raw_tweets(rows: int) -> list[dict]:
    with SOURCE.open(encoding="utf-8") as handle:
        found = list(csv.DictReader(handle))[:rows]
    out = []
    for i, row in enumerate(found):
        mark = row["emoji"] + ("\ufe0f" if i % 3 == 0 and row["emoji"] == "❤" else "")
        text = f"{row['text']} {mark}" if i % 2 else f"{mark} {row['text']}"
        put_back = [row["emoji"]]
        if i % 10 == 7:
            text += " 😂"  # a second emoji: rejected when both are label emojis, kept otherwise
            put_back.append("😂")
        out.append({"id_str": row["id"], "full_text": text, "user": {"lang": "es"}, "put_back": put_back})
    return out


def write_all(folder: Path, tweets: list[dict]) -> dict[str, Path]:
    lines = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tweets)
    (folder / "dump.jsonl").write_text(lines, encoding="utf-8")
    with gzip.open(folder / "dump.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(lines)
    frame = pd.DataFrame([{"id": t["id_str"], "text": t["full_text"], "lang": "es"} for t in tweets])
    frame.to_parquet(folder / "dump.parquet")
    return {
        "jsonl": folder / "dump.jsonl",
        "jsonl.gz": folder / "dump.jsonl.gz",
        "parquet": folder / "dump.parquet",
    }


def check(path: Path, work: Path, put_back: dict[str, list[str]]) -> dict:
    start = time.perf_counter()
    report = ingest([path], work, Columns(label_from_emoji="4"))
    corpus = pd.read_parquet(work / "corpus.parquet")
    labels = set(report.label_emojis)
    leaked = sum(any(base in labels for base, _, _ in emojis_in(text)) for text in corpus["text"])
    # the label must be the one emoji of the set that was put back into that tweet
    expected = {i: [e for e in dict.fromkeys(emojis) if e in labels] for i, emojis in put_back.items()}
    wrong = sum(expected[i] != [label] for i, label in zip(corpus["id"], corpus["label"], strict=True))
    missed = sum(len(e) == 1 for e in expected.values()) - len(corpus)
    return {
        "read": report.rows_read, "kept": report.rows_kept, "rejected": report.rows_rejected,
        "accounted": report.rows_read == report.rows_kept + report.rows_rejected,
        "label_emojis": report.label_emojis, "reject_reasons": report.reject_reasons,
        "kept_texts_with_a_label_emoji": leaked, "labels_not_the_emoji_put_back": wrong,
        "tweets_with_one_label_emoji_not_kept": missed,
        "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10000)
    args = parser.parse_args()
    tweets = raw_tweets(args.rows)
    truth = {t["id_str"]: t["put_back"] for t in tweets}
    with tempfile.TemporaryDirectory() as tmp:
        files = write_all(Path(tmp), tweets)
        out = {name: check(path, Path(tmp) / f"w-{i}", truth) for i, (name, path) in enumerate(files.items())}
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
