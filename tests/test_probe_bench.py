"""`encajes bench probe`: its three ways of fitting the probes choose and score what the probe stage
chooses and scores with the same settings, and its seconds and ratios are those of its rounds as timed
from outside."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from pipeline import Workspace
from pipeline.core.settings import ProbeBenchSettings, ProbeSettings
from pipeline.stages.probe.stage import probe_run
from pipeline.tools.bench.probe import VARIANTS, bench_probe
from tests.conftest import write_csv, write_vectors_run
from tests.test_probe_models import clusters

MODEL = "synthetic/vectors"


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    """A workdir whose corpus has train and test rows of six classes, embedded as clustered vectors."""
    root = tmp_path_factory.mktemp("bench-probe")
    (x, y), (test_x, test_y) = clusters(600, 0), clusters(200, 1)
    rows = [(f"r{i}", f"tuit {i}", label, "train") for i, label in enumerate(y)]
    rows += [(f"s{i}", f"prueba {i}", label, "test") for i, label in enumerate(test_y)]
    ws = Workspace(root / "w")
    ws.ingest([write_csv(root / "tweets.csv", rows)])
    assert ws.corpus["id"].tolist() == [row[0] for row in rows]  # the vectors below are in row order
    write_vectors_run(root / "w", np.concatenate([x, test_x]))
    return root / "w"


def test_each_variant_chooses_and_scores_what_the_probe_stage_does_with_its_settings(labelled_run):
    settings = ProbeBenchSettings(rounds=1, cv_folds=3, seed=0)
    result = bench_probe(str(labelled_run), MODEL, "mean", settings).result
    stage = {
        "tuned": probe_run(labelled_run, MODEL, "mean", ProbeSettings(cv_folds=3, seed=0, bootstrap=100)),
        "fixed": probe_run(
            labelled_run, MODEL, "mean", ProbeSettings(C=1.0, k=10, cv_folds=3, seed=0, bootstrap=100)
        ),
    }
    for name, report in stage.items():
        probe, outcome = report.to_dict(), result["outcome"][name]
        assert outcome["C"] == probe["logistic"]["C"]["value"] and outcome["k"] == probe["knn"]["k"]["value"]
        assert outcome["logistic_macro_f1"] == pytest.approx(probe["logistic"]["macro_f1"], abs=1e-12)
        assert outcome["knn_macro_f1"] == pytest.approx(probe["knn"]["macro_f1"], abs=1e-12)
        assert (result["train_rows"], result["test_rows"]) == (probe["train_rows"], probe["test_rows"])
    assert stage["tuned"].to_dict()["logistic"]["C"]["tuned"] and result["outcome"]["fixed"]["C"] == 1.0
    scikit, tuned = result["outcome"]["tuned, scikit-learn"], result["outcome"]["tuned"]
    assert (scikit["k"], scikit["knn_macro_f1"]) == (tuned["k"], tuned["knn_macro_f1"])  # the same kNN search
    assert abs(scikit["logistic_macro_f1"] - tuned["logistic_macro_f1"]) <= 0.01  # another solver, near-ties
    assert (result["classes"], result["dim"]) == (6, 32)


def test_seconds_and_ratios_are_those_of_the_rounds_timed_from_outside(labelled_run):
    """The log line after each fit is timed here: a variant's reported seconds lie within the time since
    the previous line (less only the scoring and logging after the fit), and each round's ratios within
    what those times allow; every variant goes first in its turn."""
    said: list[tuple[float, str]] = []
    before = time.perf_counter()
    result = bench_probe(
        str(labelled_run),
        MODEL,
        "mean",
        ProbeBenchSettings(rounds=3, cv_folds=3, seed=0),
        log=lambda line: said.append((time.perf_counter(), line)),
    ).result
    order = [re.match(r"round (\d+): (.+) [\d.]+s$", line).groups() for _, line in said]
    assert order == [(str(r + 1), name) for r in range(3) for name in VARIANTS[r:] + VARIANTS[:r]]
    stamps = [before] + [stamp for stamp, _ in said]
    timed: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}  # (least, most) seconds
    for (_, name), start, end in zip(order, stamps, stamps[1:], strict=False):
        elapsed = end - start
        timed[name].append((elapsed - 0.03 - 0.1 * elapsed, elapsed + 0.001))  # + rounding to 3 decimals
    first_round = timed[VARIANTS[0]][0]  # the first interval also loaded the run: its floor is vacuous
    timed[VARIANTS[0]][0] = (0.0, first_round[1])
    for name in VARIANTS:
        assert len(result["seconds"][name]) == 3
        for seconds, (least, most) in zip(result["seconds"][name], timed[name], strict=True):
            assert least <= seconds <= most, (name, seconds, least, most)

    def allowed(top: str, bottom: str) -> list[tuple[float, float]]:
        return [
            (max(t_least, 0.0) / b_most - 0.005, t_most / max(b_least, 1e-3) + 0.005)  # ratios: 2 decimals
            for (t_least, t_most), (b_least, b_most) in zip(timed[top], timed[bottom], strict=True)
        ]

    ratios = result["ratios"]
    for key, (top, bottom) in {
        "tuned_over_fixed": ("tuned", "fixed"),
        "scikit_learn_over_tuned": ("tuned, scikit-learn", "tuned"),
    }.items():
        bounds = allowed(top, bottom)
        assert all(low <= r <= high for r, (low, high) in zip(ratios[key], bounds, strict=True)), (
            key,
            bounds,
        )
        lows, highs = zip(*bounds, strict=True)
        assert float(np.median(lows)) <= ratios[f"{key}_median"] <= float(np.median(highs))
    assert ratios["tuned_over_fixed_median"] > 1  # tuning searches a grid of C and k: it costs more
