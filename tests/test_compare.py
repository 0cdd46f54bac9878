"""compare: runs the grid, writes the report, reuses fresh stages and reruns only what a change touches."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from cli import main
from pipeline.core.layout import ReportPaths
from pipeline.core.settings import ProbeSettings, UmapSettings
from pipeline.report.compare import CompareSpec, compare
from pipeline.report.document import write_report
from pipeline.stages.ingest.stage import ingest


def skipped(result):
    return {(r.pooling, stage): flag for r in result.runs for stage, flag in r.skipped.items()}


def test_second_compare_skips_and_a_change_reruns_only_its_dependants(tmp_path, sample_csv, tiny_model):
    work = tmp_path / "w"
    ingest([sample_csv], work)
    spec = CompareSpec(
        models=(str(tiny_model),),
        poolings=("mean", "cls"),
        probe=ProbeSettings(bootstrap=200),
        umap=UmapSettings(n_neighbors=4),
    )
    first = compare(work, spec, progress=False)
    assert not any(skipped(first).values())
    second = compare(work, spec, progress=False)
    assert all(skipped(second).values())

    changed_k = CompareSpec(**{**spec.__dict__, "probe": ProbeSettings(k=3, bootstrap=200)})
    third = skipped(compare(work, changed_k, progress=False))
    assert third == {  # k shapes the probe and its learning curve, not the TF-IDF combination
        ("mean", "embed"): True,
        ("mean", "probe"): False,
        ("mean", "plot"): True,
        ("mean", "curve"): False,
        ("mean", "combined"): True,
        ("cls", "embed"): True,
        ("cls", "probe"): False,
        ("cls", "plot"): True,
        ("cls", "curve"): False,
        ("cls", "combined"): True,
    }

    changed_length = CompareSpec(**{**changed_k.__dict__, "embed": {"max_length": 8}})
    assert not any(skipped(compare(work, changed_length, progress=False)).values())

    report = write_report(compare(work, changed_length, progress=False), ReportPaths(tmp_path / "report"))
    html = Path(report["html"]).read_text(encoding="utf-8")
    # two maps + two confusion figures + the learning curves and cost figures, inlined
    assert html.count("data:image/png;base64,") == 6
    markdown = Path(report["markdown"]).read_text(encoding="utf-8")
    assert "| mean | 32 |" in markdown and "| cls | 32 |" in markdown  # one row per run
    assert "paired bootstrap" in markdown
    data = json.loads(Path(report["json"]).read_text(encoding="utf-8"))
    assert {run["pooling"] for run in data["runs"]} == {"mean", "cls"}
    assert set(data["pairs"]) == {"logistic", "knn"}
    lr_pairs = {frozenset((row["a"], row["b"])) for row in data["pairs"]["logistic"]}
    mean, cls = (f"{run['model']} · {run['pooling']}" for run in data["runs"])
    systems = [mean, cls, f"{mean} + TF-IDF", f"{cls} + TF-IDF", "TF-IDF baseline"]
    # every pair of runs, their combinations with TF-IDF and the TF-IDF baseline, each tested once
    assert lr_pairs == {frozenset((a, b)) for i, a in enumerate(systems) for b in systems[i + 1 :]}
    assert len(data["pairs"]["logistic"]) == 10
    assert all(row["p_holm"] >= row["p_value"] for row in data["pairs"]["logistic"])
    assert set(data["baselines"]) == {"majority", "tfidf"}


def test_run_command_does_the_whole_chain(tmp_path, sample_csv, tiny_model):
    out = CliRunner().invoke(
        main,
        [
            "run",
            str(sample_csv),
            "-w",
            str(tmp_path / "w"),
            "-m",
            str(tiny_model),
            "--no-plots",
            "--bootstrap",
            "100",
            "--no-progress",
            "--json",
        ],
        catch_exceptions=False,
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["ingest"]["rows_kept"] == 8 and data["indexes"][0]["vectors"] == 8
    assert len(data["runs"]) == 1
    # the figure the report shows is scikit-learn's, refitted on the saved embeddings
    corpus = pd.read_parquet(tmp_path / "w" / "corpus.parquet")
    (embeddings,) = (tmp_path / "w" / "runs").glob("*/embeddings.pt")
    x = torch.load(embeddings, weights_only=True)["embeddings"].numpy()
    train, test = (corpus["split"] == "train").to_numpy(), (corpus["split"] == "test").to_numpy()
    probe = json.loads(next((tmp_path / "w" / "runs").glob("*/probe.json")).read_text(encoding="utf-8"))
    assert data["runs"][0]["lr_C"] == probe["logistic"]["refit"]["C"]
    refit = probe["logistic"]["refit"]
    fitted = LogisticRegression(**refit, random_state=0).fit(x[train], corpus["label"][train])
    expected = f1_score(corpus["label"][test], fitted.predict(x[test]), average="macro")
    assert data["runs"][0]["lr_macro_f1"] == pytest.approx(expected)


def test_relabelling_reruns_probe_and_plot_but_not_embed(tmp_path, tiny_model):
    from tests.conftest import SAMPLE_ROWS, write_csv

    work = tmp_path / "w"
    csv_path = write_csv(tmp_path / "t.csv", SAMPLE_ROWS)
    ingest([csv_path], work)
    spec = CompareSpec(
        models=(str(tiny_model),), probe=ProbeSettings(bootstrap=100), umap=UmapSettings(n_neighbors=4)
    )
    compare(work, spec, progress=False)
    relabelled = [
        (i, text, "x" if n % 2 else "y", split) for n, (i, text, _, split) in enumerate(SAMPLE_ROWS)
    ]
    write_csv(csv_path, relabelled)
    ingest([csv_path], work)
    assert skipped(compare(work, spec, progress=False)) == {
        ("mean", "embed"): True,
        ("mean", "probe"): False,
        ("mean", "plot"): False,
        ("mean", "curve"): False,
        ("mean", "combined"): False,
    }


def test_compare_config_with_flags_on_top(tmp_path, sample_csv, tiny_model):
    """A config file sets the grid and some settings; flags typed on the command line override it,
    and settings given in neither keep their defaults."""
    work = tmp_path / "w"
    ingest([sample_csv], work)
    config = tmp_path / "grid.toml"
    config.write_text(
        f'models = ["{tiny_model}"]\nplots = true\n[probe]\nk = 3\nbootstrap = 200\n[umap]\nmin_dist = 0.3\n',
        encoding="utf-8",
    )
    flags = ["--seed", "2", "--n-neighbors", "4", "--max-length", "16", "--no-plots"]
    args = ["compare", "-w", str(work), "--config", str(config), *flags, "--no-progress", "--json"]
    out = CliRunner().invoke(main, args, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    (run_dir,) = (work / "runs").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    probe = json.loads((run_dir / "probe.json").read_text())["settings"]
    assert (probe["k"], probe["bootstrap"], probe["seed"]) == (3, 200, 2)  # file, file, flag
    assert manifest["embed"]["inputs"]["max_length"] == 16 and "plot" not in manifest  # flags
    assert json.loads(out.stdout)["runs"][0]["model"] == str(tiny_model)  # the file's grid

    out = CliRunner().invoke(
        main, ["compare", "-w", str(work), "--config", str(config), *flags[:4], "--json"]
    )
    assert out.exit_code == 0, out.output
    plot = json.loads((run_dir / "manifest.json").read_text())["plot"]["inputs"]
    assert (plot["n_neighbors"], plot["seed"], plot["min_dist"]) == (4, 2, 0.3)  # flag, flag, file


def test_a_bad_comparison_file_is_a_clear_error_before_any_work(tmp_path, sample_csv, tiny_model):
    work = tmp_path / "w"
    ingest([sample_csv], work)
    for body, says in (
        ('models = "minilm"', "models must be a list of names"),
        ("[probe]\nbootstrap = 5", "--bootstrap must be at least 100"),
        ('[embed]\nmax_length = "abc"', "--max-length takes a whole number"),
        ("[umap]\nn_neighbors = 1", "--n-neighbors must be at least 2"),
        ("[probe]\nlearning_rate = 1", "unknown keys ['learning_rate'] in [probe]"),
    ):
        config = tmp_path / "bad.toml"
        config.write_text(
            f'models = ["{tiny_model}"]\n{body}\n' if "models" not in body else body, encoding="utf-8"
        )
        out = CliRunner().invoke(main, ["compare", "-w", str(work), "--config", str(config)])
        assert out.exit_code == 1 and says in out.output and str(config) in out.output, out.output
        assert "Traceback" not in out.output and not (work / "runs").exists()


def test_report_opens_with_the_verdict_and_shows_label_names(tmp_path, tiny_model):
    from tests.conftest import SAMPLE_ROWS, write_csv

    codes = {"😂": "0", "🔥": "1", "❤": "2", "😢": "3"}
    coded = [(i, text, codes[label], label, split) for i, text, label, split in SAMPLE_ROWS]
    work = tmp_path / "w"
    ingest([write_csv(tmp_path / "coded.csv", coded, header="id,text,label,emoji,split")], work)
    spec = CompareSpec(
        models=(str(tiny_model),), poolings=("mean", "cls"), probe=ProbeSettings(bootstrap=100)
    )
    result = compare(work, spec, progress=False)
    assert result.label_names == {"0": "😂", "1": "🔥", "2": "❤", "3": "😢"}
    from pipeline.artifacts.status import workdir_status

    assert workdir_status(work).baselines["state"] == "fresh"  # made once per corpus, listed by status
    report = write_report(result, ReportPaths(tmp_path / "report"))
    markdown = Path(report["markdown"]).read_text(encoding="utf-8")
    first_paragraph = markdown.split("\n\n")[1]
    assert first_paragraph.startswith("Logistic regression: ") and "**" in first_paragraph
    assert (
        "no significant difference" in first_paragraph or "is best" in first_paragraph
    )  # words, not a table
    assert "kNN: " in first_paragraph and "Holm-adjusted" in first_paragraph
    assert "| 😂 face with tears of joy |" in markdown and "\n| 0 |" not in markdown  # names, not codes
    html = Path(report["html"]).read_text(encoding="utf-8")
    assert "<p class=lead>Logistic regression: " in html and "p (Holm)" in html
    assert "baseline: TF-IDF" in html and "baseline: majority class" in html
