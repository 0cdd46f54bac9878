"""Confusions at many classes: the restricted matrix, the most-confused pairs, the collapsed-probe flag, and
a report whose per-class table folds after 15 rows while report.json keeps every class."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.layout import ReportPaths
from pipeline.core.settings import ProbeSettings, UmapSettings
from pipeline.render import figures
from pipeline.render.confusions import (
    OTHER,
    confused_pairs,
    narrow_prediction,
    predicted_classes,
    restricted_confusion,
    top_classes,
)
from pipeline.report.compare import CompareSpec, compare
from pipeline.report.document import write_report
from pipeline.report.results import CompareResult, RunResult
from pipeline.stages.ingest.stage import ingest
from pipeline.stages.probe.metrics import classification_report


def zipf_probe(n_classes: int, seed: int = 0, only: int | None = None) -> dict:
    """A probe's scores on a Zipf-like corpus; ``only`` makes it predict just that many classes."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, n_classes + 1)
    truth = rng.choice(n_classes, 3000, p=weights / weights.sum())
    pred = np.where(rng.random(len(truth)) < 0.5, truth, rng.integers(0, n_classes, len(truth)))
    if only:
        pred = pred % only
    report = classification_report([f"c{t:02d}" for t in truth], [f"c{p:02d}" for p in pred])
    return report | {"macro_f1_ci": {"low": 0.0, "high": 1.0}}


def test_restricted_matrix_keeps_top_classes_by_support_and_rows_sum_to_one():
    labels = [f"l{i}" for i in range(20)]
    cm = np.random.default_rng(1).integers(0, 30, (20, 20))
    cm[7] *= 10  # the largest class, whatever its place in the labels
    top = restricted_confusion(labels, cm, n=5)
    support = cm.sum(axis=1)
    assert top.labels[0] == "l7" and top.labels == top_classes(labels, cm, n=5)
    assert sorted(support[[labels.index(label) for label in top.labels]]) == sorted(support)[-5:]
    assert top.rates.shape == (5, 6) and top.columns[-1] == OTHER
    np.testing.assert_allclose(top.rates.sum(axis=1), 1.0)
    keep = [labels.index(label) for label in top.labels]
    np.testing.assert_array_equal(
        top.counts[:, -1], cm[keep].sum(axis=1) - cm[np.ix_(keep, keep)].sum(axis=1)
    )
    assert top.n_classes == 20 and top.covered == pytest.approx(support[keep].sum() / cm.sum())


def test_classes_never_in_the_truth_are_not_top_classes():
    cm = np.array([[5, 1, 0], [0, 0, 0], [2, 1, 4]])  # "b" is only ever predicted
    assert top_classes(["a", "b", "c"], cm, n=3) == ["c", "a"]


def test_most_confused_pairs_match_a_hand_count():
    labels = ["a", "b", "c"]
    cm = [
        [10, 4, 1],  # a: 15 rows, 4 sent to b
        [6, 20, 0],  # b: 26 rows, 6 sent to a
        [0, 4, 2],  # c: 6 rows, 4 sent to b (ties a->b on count, wins on share)
    ]
    pairs = confused_pairs(labels, cm, top=3)
    assert list(zip(pairs["true"], pairs["predicted"], pairs["count"], strict=True)) == [
        ("b", "a", 6),
        ("c", "b", 4),
        ("a", "b", 4),
    ]
    assert pairs["share"].tolist() == pytest.approx([6 / 26, 4 / 6, 4 / 15])
    assert len(confused_pairs(labels, cm)) == 4  # every off-diagonal cell with a row, no more


def test_a_probe_predicting_few_classes_is_flagged():
    labels = [f"c{i}" for i in range(64)]

    def predicting(k: int) -> np.ndarray:
        cm = np.eye(64, dtype=int)
        cm[:, :k] += 1
        cm[np.arange(k, 64), np.arange(k, 64)] = 0
        assert predicted_classes(cm) == k
        return cm

    assert narrow_prediction("minilm · mean (logistic)", labels, predicting(6)) == (
        "minilm · mean (logistic) predicts only 6 of 64 classes"
    )
    assert narrow_prediction("x", labels, predicting(40)) is None
    assert narrow_prediction("x", labels, predicting(32)) is None  # half is not fewer than half


def test_the_figure_at_64_classes_shows_the_top_15_readably(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(figures, "save_png", lambda fig, target: drawn.append(fig))
    results = {"logistic": zipf_probe(64), "knn": zipf_probe(64, only=6)}
    figures.plot_confusions(results, "minilm · mean", tmp_path / "c.png", names={"c00": "😂"})
    (fig,) = drawn
    assert "top 15 of 64 classes by support" in fig.get_suptitle()
    left, right, _colour_bar = fig.axes
    ticks = left.get_yticklabels()
    assert len(ticks) == 15 and ticks[0].get_text().startswith("😂 face with tears of joy")
    assert [t.get_text() for t in left.get_xticklabels()][-1] == OTHER
    assert min(t.get_fontsize() for t in [*ticks, *left.get_xticklabels()]) >= 8
    assert "predicts 6 of 64 classes" in right.get_title()
    assert any(text.get_text() for text in left.texts)  # cells annotated in percent


def fake_result(tmp_path: Path, n_classes: int) -> CompareResult:
    runs = []
    for i, (pooling, only) in enumerate((("mean", None), ("cls", 6))):
        probe = {"logistic": zipf_probe(n_classes, i, only), "knn": zipf_probe(n_classes, i + 2)}
        png = tmp_path / f"{pooling}.png"
        figures.plot_confusions(probe, pooling, png)
        probe |= {"split": "split column", "train_rows": 9000, "test_rows": 3000, "confusion_png": str(png)}
        embed = {"dim": 8, "parameters": 0, "texts_per_second": None}
        runs.append(RunResult("minilm", pooling, tmp_path, embed, probe, None, {"embed": True}))
    return CompareResult(tmp_path / "w", runs, {}, 1.0, label_names={"c00": "😂"})


def test_the_report_folds_the_per_class_table_after_15_rows_but_json_keeps_all(tmp_path):
    report = write_report(fake_result(tmp_path, 64), ReportPaths(tmp_path / "report"))
    page = Path(report["html"]).read_text(encoding="utf-8")
    section = page.split("<h2>Per-class F1")[1].split("<h2>")[0]
    shown, folded = section.split("<details>")
    assert shown.count("<tr>") == 16  # header + 15 classes
    assert "<summary>49 more classes</summary>" in folded and folded.count("<tr>") == 50
    assert "minilm · cls (logistic) predicts only 6 of 64 classes" in section.split("<table>")[0]
    assert "😂 face with tears of joy" in shown  # label names from the corpus
    assert page.count("Most-confused pairs") == 2 and page.count("<details open>") == 1
    markdown = Path(report["markdown"]).read_text(encoding="utf-8")
    assert "… and 49 more classes (report.json has them all)" in markdown
    assert "- **minilm · cls (logistic) predicts only 6 of 64 classes**." in markdown
    assert re.search(r"### Most-confused pairs — minilm · \w+ \(logistic regression\)", markdown)
    per_class = json.loads(Path(report["json"]).read_text(encoding="utf-8"))["per_class_f1"]
    assert all(len(column) == 64 for column in per_class.values())


def test_a_few_classes_need_no_folding(tmp_path):
    report = write_report(fake_result(tmp_path, 4), ReportPaths(tmp_path / "report"))
    page = Path(report["html"]).read_text(encoding="utf-8")
    assert "more classes</summary>" not in page and "predicts only" not in page
    assert "more classes" not in Path(report["markdown"]).read_text(encoding="utf-8")


def test_a_compare_run_renders_its_confusions(tmp_path, sample_csv, tiny_model):
    work = tmp_path / "w"
    ingest([sample_csv], work)
    spec = CompareSpec(
        models=(str(tiny_model),),
        probe=ProbeSettings(bootstrap=100),
        umap=UmapSettings(n_neighbors=4),
        plots=False,
    )
    report = write_report(compare(work, spec, progress=False), ReportPaths(tmp_path / "report"))
    page = Path(report["html"]).read_text(encoding="utf-8")
    # the confusion matrices, the learning curves and the cost figure
    assert "Most-confused pairs" in page and page.count("data:image/png;base64,") == 3
    assert "## Per-class F1" in Path(report["markdown"]).read_text(encoding="utf-8")
