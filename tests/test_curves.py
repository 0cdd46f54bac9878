"""Learning curves: the sizes asked for, stratified subsamples drawn the same for every run, the full
size read from the probe's own figures, and the stages fresh or stale as their inputs say."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pipeline.core.errors import EncajesError
from pipeline.core.settings import CurveSettings, ProbeSettings
from pipeline.stages.probe.curve_stage import baseline_curve, curve_run
from pipeline.stages.probe.curves import class_quotas, curve_sizes, dropped_sizes, subsample
from pipeline.stages.probe.stage import probe_run
from tests.conftest import write_csv, write_vectors_run
from tests.test_probe_models import clusters

MODEL = "synthetic/vectors"


def labels(counts: dict[str, int], seed: int = 0) -> np.ndarray:
    """Labels in a shuffled order, ``counts`` rows of each."""
    y = np.concatenate([[name] * n for name, n in counts.items()])
    return np.random.default_rng(seed).permutation(y)


def test_auto_sizes_run_from_eight_a_class_to_every_row_in_six_log_steps():
    y = labels({"a": 500, "b": 300, "c": 150, "d": 50})
    sizes = curve_sizes("auto", y)
    assert len(sizes) == 6 and sizes[0] == 8 * 4 and sizes[-1] == len(y)
    assert sizes == sorted(set(sizes))
    ratios = np.diff(np.log(sizes))
    assert np.allclose(ratios, ratios.mean(), atol=0.02)  # log-spaced, up to rounding to whole rows
    few = labels({"a": 10, "b": 9, "c": 8})  # 8 a class is 24 of 27 rows: fewer distinct sizes, still all
    assert curve_sizes("auto", few)[0] == 24 and curve_sizes("auto", few)[-1] == 27
    assert curve_sizes("auto", few) == sorted(set(curve_sizes("auto", few)))
    assert curve_sizes("auto", labels({"a": 3, "b": 2})) == [5]  # 8 a class is more than there are


def test_a_user_list_is_kept_less_sizes_above_the_rows_with_every_row_last():
    y = labels({"a": 600, "b": 400})
    assert curve_sizes(" 800, 160,4000", y) == [160, 800, 1000]
    assert dropped_sizes(" 800, 160,4000", len(y)) == [4000]
    assert curve_sizes("160,1000", y) == [160, 1000] and dropped_sizes("160,1000", len(y)) == []
    assert dropped_sizes("auto", len(y)) == []


def test_subsamples_are_stratified_with_eight_a_class_at_the_smallest_auto_size():
    y = labels({"a": 700, "b": 200, "c": 90, "d": 5})
    smallest = curve_sizes("auto", y)[0]
    drawn = subsample(y, smallest, 0, seed=0)
    counts = dict(zip(*np.unique(y[drawn], return_counts=True), strict=True))
    assert counts == {"a": 8 + 3, "b": 8, "c": 8, "d": 5}  # d has 5 rows only: a takes the 3 left
    assert len(drawn) == smallest and np.all(np.diff(drawn) > 0)  # sorted, each row once
    drawn = subsample(y, 500, 1, seed=0)
    counts = dict(zip(*np.unique(y[drawn], return_counts=True), strict=True))
    assert counts == {"a": 350, "b": 100, "c": 45, "d": 5}  # d at its floor, the 495 left as 70:20:9
    assert class_quotas(np.array([700, 200, 90, 5]), 10).tolist() == [8, 8, 8, 5]  # floors beat the size
    assert subsample(y, len(y), 3, seed=0).tolist() == list(range(len(y)))


def test_subsamples_depend_on_seed_size_and_resample_only():
    y = labels({"a": 300, "b": 200, "c": 100})
    first = subsample(y, 120, 0, seed=7)
    assert np.array_equal(first, subsample(y.copy(), 120, 0, seed=7))
    assert not np.array_equal(first, subsample(y, 120, 1, seed=7))
    assert not np.array_equal(first, subsample(y, 120, 0, seed=8))


@pytest.fixture
def probed(tmp_path):
    """A workdir with four classes of clustered vectors, probed; its baselines' curve drawn."""
    (x, y), (test_x, test_y) = clusters(240, 0, classes=4), clusters(80, 1, classes=4)
    rows = [(f"r{i}", f"tuit {label} numero {i}", label, "train") for i, label in enumerate(y)]
    rows += [(f"s{i}", f"prueba {label} numero {i}", label, "test") for i, label in enumerate(test_y)]
    from pipeline import Workspace

    ws = Workspace(tmp_path / "w")
    ws.ingest([write_csv(tmp_path / "tweets.csv", rows)])
    write_vectors_run(tmp_path / "w", np.concatenate([x, test_x]))
    settings = ProbeSettings(bootstrap=100)
    return tmp_path / "w", settings, probe_run(tmp_path / "w", MODEL, settings=settings)


CURVE = CurveSettings(train_sizes="auto", resamples=2)


def test_six_auto_sizes_end_at_the_probes_own_figures(probed):
    work, settings, probe = probed
    curve = curve_run(work, MODEL, probe=settings, curve=CURVE).curve
    assert len(curve.sizes) == 6 and curve.sizes[0] == 8 * 4 and curve.sizes[-1] == curve.train_rows == 240
    assert curve.points[0].rows == 32 and [p.size for p in curve.points] == curve.sizes
    last = curve.points[-1]
    assert last.scores == {"logistic": [probe.logistic.macro_f1], "knn": [probe.knn.macro_f1]}
    assert last.choices == {"logistic": [probe.logistic.C.value], "knn": [probe.knn.k.value]}
    for point in curve.points[:-1]:
        assert [len(point.scores[name]) for name in ("logistic", "knn")] == [2, 2]
        assert [len(point.choices[name]) for name in ("logistic", "knn")] == [2, 2]
    assert curve.means()["logistic"][0] < curve.means()["logistic"][-1]  # more rows, better probe


def test_the_baselines_curve_is_drawn_on_the_same_subsamples_as_a_runs(probed):
    work, settings, _ = probed
    spec = CurveSettings(train_sizes="40,100,5000", resamples=2)  # few sizes: TF-IDF fits are slow
    curve = curve_run(work, MODEL, probe=settings, curve=spec).curve
    base = baseline_curve(work, probe=settings, curve=spec).curve
    assert curve.sizes == base.sizes == [40, 100, 240] and curve.notes == base.notes
    assert "5,000" in curve.notes[0]  # the size above the training rows is left out, and said so
    assert base.subsamples_sha256 == curve.subsamples_sha256
    recorded = json.loads((work / "baselines" / "baselines.json").read_text(encoding="utf-8"))["results"]
    assert base.points[-1].scores == {name: [recorded[name]["macro_f1"]] for name in ("tfidf", "majority")}
    assert base.points[-1].choices == {"tfidf": [recorded["tfidf"]["C"]["value"]]}
    assert [len(p.scores["tfidf"]) for p in base.points] == [2, 2, 1] and "majority" not in base.points[
        0
    ].choices
    other = curve_run(work, MODEL, probe=settings, curve=replace(spec, resamples=1)).curve
    assert other.subsamples_sha256 != curve.subsamples_sha256  # the hash tells other rows apart


def test_a_rerun_is_fresh_and_a_forced_one_writes_the_same_file(probed):
    work, settings, _ = probed
    first = curve_run(work, MODEL, probe=settings, curve=CURVE)
    written = first.file.read_bytes()
    again = curve_run(work, MODEL, probe=settings, curve=CURVE)
    assert again.skipped and not first.skipped and again.curve == first.curve
    assert again.lines()[1:] == first.lines()[1:]
    forced = curve_run(work, MODEL, probe=settings, curve=CURVE, force=True)
    assert not forced.skipped and forced.file.read_bytes() == written  # same seed, same numbers


def test_a_changed_probe_setting_needs_its_probe_and_makes_the_curve_stale(probed):
    work, settings, _ = probed
    curve_run(work, MODEL, probe=settings, curve=CURVE)
    fixed = ProbeSettings(bootstrap=100, C=1.0, k=5)
    with pytest.raises(EncajesError, match="encajes probe"):
        curve_run(work, MODEL, probe=fixed, curve=CURVE)  # its probe has not run with these settings
    probe_run(work, MODEL, settings=fixed)
    report = curve_run(work, MODEL, probe=fixed, curve=CURVE)
    assert not report.skipped and report.curve.points[0].choices["logistic"] == [1.0, 1.0]
    with pytest.raises(EncajesError, match="encajes probe"):  # the first settings' probe was replaced
        curve_run(work, MODEL, probe=settings, curve=CURVE)
    assert not curve_run(work, MODEL, probe=fixed, curve=CurveSettings(resamples=1)).skipped
