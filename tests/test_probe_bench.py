"""`encajes bench probe`: the three ways of fitting the probes run on the same rows and agree."""

from __future__ import annotations

import numpy as np

from pipeline.core.settings import ProbeBenchSettings
from pipeline.stages.probe.stage import ProbeRows
from pipeline.tools.bench.probe import VARIANTS, bench_probe_rows
from tests.test_probe_models import clusters


def test_the_three_variants_run_on_the_same_rows_and_ratios_come_from_their_timings():
    x, y = clusters(900, 0)
    test_x, test_y = clusters(300, 1)
    rows = ProbeRows(x, y, test_x, test_y, np.arange(len(test_y)), "train -> test")
    result = bench_probe_rows(rows, ProbeBenchSettings(rounds=2))
    tuned, fixed, scikit = (result["outcome"][name] for name in VARIANTS)
    assert fixed["C"] == 1.0 and fixed["k"] == 10 and tuned["k"] == scikit["k"]  # same kNN search
    assert abs(tuned["logistic_macro_f1"] - scikit["logistic_macro_f1"]) <= 0.01  # near-ties aside
    seconds = result["seconds"]
    assert all(len(seconds[name]) == 2 for name in VARIANTS)
    expected = [round(t / f, 2) for t, f in zip(seconds["tuned"], seconds["fixed"], strict=True)]
    assert np.allclose(result["ratios"]["tuned_over_fixed"], expected, rtol=0.1)  # seconds are rounded
