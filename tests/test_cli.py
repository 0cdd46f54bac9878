"""The CLI end to end with click's CliRunner: ingest -> embed -> index -> search, text and JSON output."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from cli import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner, *args):
    result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def test_round_trip_with_json(runner, tmp_path, sample_csv, tiny_model):
    w = tmp_path / "w"
    out = invoke(runner, "ingest", sample_csv, "-w", w, "--json")
    assert out.exit_code == 0, out.output
    ingested = json.loads(out.stdout)
    assert ingested["rows_read"] == ingested["rows_kept"] == 8

    out = invoke(runner, "embed", "-w", w, "-m", tiny_model, "--json", "--no-progress")
    assert out.exit_code == 0, out.output
    embedded = json.loads(out.stdout)
    assert embedded["rows"] == 8 and embedded["dim"] == 32 and not embedded["skipped"]
    payload = torch.load(embedded["embeddings"], weights_only=True)
    assert payload["embeddings"].shape == (8, 32) and payload["embeddings"].dtype == torch.float32
    assert payload["row_ids"].tolist() == list(range(8))
    assert payload["pooling"] == "mean" and payload["dim"] == 32

    again = json.loads(invoke(runner, "embed", "-w", w, "-m", tiny_model, "--json").stdout)
    assert again["skipped"] is True

    out = invoke(runner, "index", "-w", w, "-m", tiny_model, "--json")
    assert json.loads(out.stdout)["vectors"] == 8

    out = invoke(
        runner, "search", "me gusta la playa y el sol", "-w", w, "-m", tiny_model, "-k", "3", "--json"
    )
    assert out.exit_code == 0, out.output
    hits = json.loads(out.stdout)["results"][0]["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["text"] == "me gusta la playa y el sol"  # its own text comes first
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)

    out = invoke(runner, "search", "--id", "a3", "-w", w, "-m", tiny_model, "-k", "4", "--json")
    row_hits = json.loads(out.stdout)["results"][0]["hits"]
    assert len(row_hits) == 4 and all(h["id"] != "a3" for h in row_hits)


def test_human_output_and_queries_file(runner, tmp_path, sample_csv, tiny_model):
    w = tmp_path / "w"
    assert "rows read 8 = kept 8 + rejected 0" in invoke(runner, "ingest", sample_csv, "-w", w).output
    out = invoke(runner, "embed", "-w", w, "-m", tiny_model, "--pooling", "cls", "--no-progress")
    assert "texts/s" in out.output and "__cls" in out.output
    queries = tmp_path / "q.txt"
    queries.write_text("hola que tal\n\ngol gol gol fiesta en la noche\n", encoding="utf-8")
    out = invoke(
        runner, "search", "--queries", queries, "-w", w, "-m", tiny_model, "--pooling", "cls", "-k", "2"
    )
    assert out.exit_code == 0, out.output
    assert out.output.count("query: ") == 2
    assert "jaja" not in out.output.split("query: ")[2].splitlines()[2]  # rank 1 of query 2 is itself
    assert "gol gol gol" in out.output.split("query: ")[2].splitlines()[2]


def test_errors_exit_nonzero_with_a_message(runner, tmp_path, tiny_model):
    bad = tmp_path / "bad.csv"
    bad.write_text("tweet,label\nhola,a\n", encoding="utf-8")
    out = runner.invoke(main, ["ingest", str(bad), "-w", str(tmp_path / "w")])
    assert out.exit_code != 0 and "--text-col" in out.output and "Traceback" not in out.output
    out = runner.invoke(main, ["embed", "-w", str(tmp_path / "empty"), "-m", str(tiny_model), "--json"])
    assert out.exit_code != 0 and "encajes ingest" in json.loads(out.stdout.splitlines()[0])["error"]
    out = runner.invoke(main, ["search", "-w", str(tmp_path / "empty")])
    assert out.exit_code != 0 and "exactly one of" in out.output


def test_search_before_embed_says_what_to_run(runner, tmp_path, sample_csv, tiny_model):
    w = tmp_path / "w"
    invoke(runner, "ingest", sample_csv, "-w", w)
    out = runner.invoke(main, ["search", "hola", "-w", str(w), "-m", str(tiny_model)])
    assert out.exit_code != 0 and "encajes embed" in out.output


@pytest.mark.parametrize("command", ["ingest", "embed", "index", "search"])
def test_every_command_has_help_with_an_example_and_json(runner, command):
    out = invoke(runner, command, "--help")
    assert out.exit_code == 0
    assert "Example" in out.output and "--json" in out.output


def test_bench_embed_compares_with_sentence_transformers(runner, sample_csv, tiny_model):
    """One A/B pair in fresh processes on the tiny model: same vectors on both sides, figures that add up."""
    out = invoke(
        runner, "bench", "embed", sample_csv, "-m", tiny_model, "--rounds", "1", "--batch-size", "4", "--json"
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    ours, theirs = result["encajes"], result["sentence-transformers"]
    assert result["texts"] == 8 and result["min_cosine"] > 0.9999  # the same model, mean-pooled both sides
    assert len(result["ratio_per_pair"]) == 1
    assert result["median_ratio"] == pytest.approx(
        ours["texts_per_s"][0] / theirs["texts_per_s"][0],
        rel=1e-2,
        abs=1e-3,  # printed to 3 decimals
    )
    assert ours["mfu"] > 0 and ours["matmul_peak_gflops"] > 0
