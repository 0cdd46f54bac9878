"""Files that break mid-way, ingested from the command line: one line saying what is wrong and what to
do, exit status 1, no traceback, no bare "Aborted!", and nothing written to the workdir (an earlier
corpus stays as it was). Gzipped CSV/TSV read like gzipped JSON lines; split words after dots."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parents[1]
WRITTEN = ("corpus.parquet", "rejects.csv", "manifest.json", "label_names.json")


def jsonl_bytes(count: int) -> bytes:
    return "".join(
        json.dumps({"id": str(i), "text": f"tuit número {i} 😂", "label": str(i % 3)}, ensure_ascii=False)
        + "\n"
        for i in range(count)
    ).encode("utf-8")


def truncated_gz(path: Path) -> Path:
    """2,000 JSON lines gzipped, cut at 60% of the bytes: the peek at the first records still works."""
    whole = gzip.compress(jsonl_bytes(2000))
    path.write_bytes(whole[: len(whole) * 6 // 10])
    return path


def latin1_jsonl(path: Path) -> Path:
    path.write_bytes('{"text": "café olé", "label": "1"}\n{"text": "hola", "label": "2"}\n'.encode("latin-1"))
    return path


def blank_jsonl(path: Path) -> Path:
    path.write_text("\n\n   \n\n", encoding="utf-8")
    return path


BROKEN = {
    "tweets.jsonl.gz": (
        truncated_gz,
        ["gzip file ends early (truncated?) after", "Re-download or re-compress"],
    ),
    "latin.jsonl": (latin1_jsonl, ["line 1 is not valid UTF-8", "--encoding latin-1", "iconv -f latin1"]),
    "blank.jsonl": (blank_jsonl, ["the file holds no records (only blank lines)"]),
}


def snapshot(work: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(work.iterdir()) if p.is_file()} if work.exists() else {}


def cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_file_is_one_clear_line_and_writes_nothing(tmp_path, name):
    make, said = BROKEN[name]
    path = make(tmp_path / name)
    code, output = cli("ingest", path, "--workdir", tmp_path / "w")
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, output
    assert lines[0].startswith(f"Error: {path}: ") and all(part in lines[0] for part in said), output
    assert "Traceback" not in output and "Aborted" not in output
    assert not (tmp_path / "w").exists()  # not even the workdir (nor its lock file) is left behind


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_an_earlier_corpus_is_left_as_it_was(tmp_path, name):
    """Even with --force (which replaces a corpus), a broken file leaves the workdir byte for byte."""
    good = tmp_path / "good_train.csv"
    good.write_text("text,label\nhola,a\nadiós,b\n", encoding="utf-8")
    work = tmp_path / "w"
    assert cli("ingest", good, "--workdir", work)[0] == 0
    before = snapshot(work)
    assert "corpus.parquet" in before and "manifest.json" in before
    broken = BROKEN[name][0](tmp_path / name)
    for force in ((), ("--force",)):
        code, output = cli("ingest", broken, "--workdir", work, *force)
        assert code == 1 and "Traceback" not in output, output
        assert snapshot(work) == before
        assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]


def test_a_real_process_exits_1_with_no_traceback_and_no_bare_abort(tmp_path):
    path = truncated_gz(tmp_path / "tweets.jsonl.gz")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "ingest", str(path), "--workdir", str(tmp_path / "w")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "Aborted!" not in done.stderr
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(said) == 1 and "ends early (truncated?)" in said[0], done.stderr
    assert not any((tmp_path / "w" / written).exists() for written in WRITTEN)


def test_latin1_json_lines_read_with_their_encoding(tmp_path):
    path = latin1_jsonl(tmp_path / "latin.jsonl")
    code, output = cli("ingest", path, "--workdir", tmp_path / "w", "--encoding", "latin-1")
    assert code == 0, output
    texts = pd.read_parquet(tmp_path / "w" / "corpus.parquet")["text"].tolist()
    assert texts == ["café olé", "hola"]


def test_a_gzip_cut_in_its_header_is_clear_too(tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(b"text,label\nhola,a\n")[:6])
    code, output = cli("ingest", path, "--workdir", tmp_path / "w")
    assert code == 1 and "gzip" in output and "Re-download or re-compress" in output, output
    assert "Traceback" not in output and "Aborted" not in output


def test_a_csv_gzip_cut_mid_way_names_the_lines_read(tmp_path):
    rows = "".join(f"tuit {i} con algo de texto {i * 7919},{i % 4}\n" for i in range(20_000))
    whole = gzip.compress(("text,label\n" + rows).encode())
    path = tmp_path / "big.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    code, output = cli("ingest", path, "--workdir", tmp_path / "w")
    assert code == 1 and "ends early (truncated?) after" in output and "lines" in output, output
    count = int(output.split("after ")[1].split(" ")[0])
    assert 0 < count < 20_001
    assert not (tmp_path / "w" / "corpus.parquet").exists()


@pytest.mark.parametrize(("name", "separator"), [("tweets.csv.gz", ","), ("tweets.tsv.gz", "\t")])
def test_gzipped_csv_and_tsv_are_read_with_their_rows(tmp_path, name, separator):
    table = f"text{separator}label\nhola, qué tal{separator}a\nadiós{separator}b\n"
    if separator == ",":
        table = table.replace("hola, qué tal", '"hola, qué tal"')
    path = tmp_path / name
    path.write_bytes(gzip.compress(table.encode("utf-8")))
    code, output = cli("ingest", path, "--workdir", tmp_path / "w")
    assert code == 0, output
    corpus = pd.read_parquet(tmp_path / "w" / "corpus.parquet")
    assert corpus["text"].tolist() == ["hola, qué tal", "adiós"]
    assert corpus["label"].tolist() == ["a", "b"]


def test_split_words_after_dots_give_their_splits(tmp_path):
    from pipeline.stages.ingest.rows import split_from_filename

    named = {
        "emojispace.train.json.gz": "train",
        "tweets.test.jsonl": "test",
        "es4_train.csv": "train",
        "corpus.dev.csv.gz": "val",
    }
    for name, split in named.items():
        assert split_from_filename(Path(name)) == split, name
    for name in ("contest.csv", "tweets.train.test.jsonl", "train.test.csv", "tweets.jsonl.gz"):
        assert split_from_filename(Path(name)) is None, name
    train = tmp_path / "emojispace.train.jsonl.gz"
    train.write_bytes(gzip.compress(jsonl_bytes(4)))
    test = tmp_path / "tweets.test.jsonl"
    test.write_text('{"id": "t1", "text": "otra cosa", "label": "1"}\n', encoding="utf-8")
    code, output = cli("ingest", train, test, "--workdir", tmp_path / "w")
    assert code == 0, output
    corpus = pd.read_parquet(tmp_path / "w" / "corpus.parquet")
    assert corpus["split"].tolist() == ["train"] * 4 + ["test"]
