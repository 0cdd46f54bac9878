"""The CLI end to end with click's CliRunner: ingest -> embed -> index -> search, text and JSON output."""

from __future__ import annotations

import json
import re
import shlex

import click
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


def leaf_commands(group: click.Group = main, path: tuple[str, ...] = ()) -> dict[str, click.Command]:
    """Every command a user can run, by its words after `encajes` (the bench group's included)."""
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= leaf_commands(command, (*path, name))
        else:
            found[" ".join((*path, name))] = command
    return found


COMMANDS = leaf_commands()
NO_JSON = {"serve": "runs a server until stopped, with no report to print (tests/test_serve.py starts it)"}
NOT_RUN_HERE = {  # each prints its report with --json through the same wrapper as the commands run below
    "plot": "UMAP compiles with numba for ~10 s in each process; tests/test_plot.py runs the stage",
    "compare": "embeds, probes and plots a grid; tests/test_compare.py runs `compare --json`",
    "run": "the whole chain; tests/test_compare.py runs `run --json`",
    "bench embed": "fresh processes per round; test_bench_embed_compares_with_sentence_transformers runs it",
}


def examples(help_text: str) -> list[list[str]]:
    """The `encajes ...` lines of a help's Example(s) section, split as a shell would."""
    parts = re.split(r"^\s*Examples?:\s*$", help_text, maxsplit=1, flags=re.M)
    section = parts[1].split("\nOptions:")[0] if len(parts) == 2 else ""
    lines = [line[line.index("encajes ") :] for line in section.splitlines() if "encajes " in line]
    return [shlex.split(line.split(" > ")[0]) for line in lines]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_with_examples_of_itself_that_use_its_own_options(runner, command):
    out = invoke(runner, *command.split(), "--help")
    assert out.exit_code == 0, out.output
    found = examples(out.output)
    assert found, f"`encajes {command} --help` has no Example"
    options = {name for param in COMMANDS[command].params for name in (*param.opts, *param.secondary_opts)}
    for words in found:
        assert words[1 : 1 + len(command.split())] == command.split(), words  # an example of this command
        unknown = [w.split("=")[0] for w in words if w.startswith("-") and w.split("=")[0] not in options]
        assert not unknown, f"{words}: no such option {unknown}"
    assert ("--json" in options) == (command not in NO_JSON)


def test_every_command_is_run_with_json_below_or_says_why_not():
    groups = [set(JSON_RUNS), set(NOT_RUN_HERE), set(NO_JSON)]
    assert set.union(*groups) == set(COMMANDS) and sum(map(len, groups)) == len(COMMANDS)


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_model, tiny_mlm) -> dict[str, str]:
    """A tiny workdir, ingested and embedded (mean pooling), and what the commands below take."""
    from pipeline import Workspace
    from tests.conftest import SAMPLE_ROWS, write_csv

    root = tmp_path_factory.mktemp("cli-json")
    csv = write_csv(root / "tweets.csv", SAMPLE_ROWS)
    ws = Workspace(root / "w")
    ws.ingest([csv])
    ws.embed(model=str(tiny_model), progress=False)
    return {
        "root": str(root),
        "w": str(root / "w"),
        "m": str(tiny_model),
        "mlm": str(tiny_mlm),
        "csv": str(csv),
    }


def rows_read_8(d):
    return d["rows_read"] == d["rows_kept"] == 8 and not d["skipped"]


JSON_RUNS = {  # the arguments (from `made`), the keys the object has, and what must hold of it
    "ingest": ("{csv} -w {root}/fresh", {"rows_read", "rows_kept", "rows_rejected", "corpus"}, rows_read_8),
    "embed": (
        "-w {w} -m {m} --force --no-progress",
        {"rows", "dim", "embeddings", "model", "pooling", "texts_per_second"},
        lambda d: (d["rows"], d["dim"], d["pooling"], d["skipped"]) == (8, 32, "mean", False),
    ),
    "index": (
        "-w {w} -m {m} --force",
        {"kind", "vectors", "dim", "index"},
        lambda d: (d["kind"], d["vectors"], d["dim"]) == ("exact", 8, 32),
    ),
    "search": (
        "--id a3 -w {w} -m {m} -k 3",
        {"run", "k", "results"},
        lambda d: (
            [h["rank"] for h in d["results"][0]["hits"]] == [1, 2, 3]
            and "a3" not in [h["id"] for h in d["results"][0]["hits"]]
        ),
    ),
    "probe": (
        "-w {w} -m {m} --bootstrap 100 --force",
        {"split", "train_rows", "test_rows", "logistic", "knn"},
        lambda d: (d["train_rows"], d["test_rows"]) == (5, 3) and 0 <= d["logistic"]["macro_f1"] <= 1,
    ),
    "status": ("-w {w}", {"workdir", "ingest", "runs"}, lambda d: len(d["runs"]) == 1),
    "models": ("", {"models"}, lambda d: {"minilm", "e5-small"} <= {m["alias"] for m in d["models"]}),
    "similarity": (
        "'hola que tal' 'te quiero' -m {m} --png {root}/s.png",
        {"sentences", "matrix", "png"},
        lambda d: len(d["matrix"]) == 2 and abs(d["matrix"][0][0] - 1) < 1e-5,
    ),
    "unmask": ("'hola [MASK]' -m {mlm} --top-k 2", {"text", "fillings"}, lambda d: len(d["fillings"]) == 2),
    "bench index": (
        "--n 1000 --dim 8 --queries 10 --kind ivf",
        {"n", "dim", "kinds"},
        lambda d: d["n"] == 1000 and "ivf" in d["kinds"],
    ),
    "bench probe": (
        "-w {w} -m {m} --rounds 1 --cv-folds 2",
        {"seconds", "ratios", "outcome"},
        lambda d: set(d["outcome"]) == {"tuned", "fixed", "tuned, scikit-learn"},
    ),
}


@pytest.mark.parametrize("command", sorted(JSON_RUNS))
def test_each_command_prints_one_json_object_with_its_report(runner, made, command):
    args, keys, holds = JSON_RUNS[command]
    out = invoke(runner, *command.split(), *shlex.split(args.format(**made)), "--json")
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)  # the whole of stdout: one JSON document, nothing else
    assert isinstance(report, dict) and keys <= set(report), sorted(report)
    assert holds(report), report


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
