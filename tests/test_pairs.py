"""Every pair tested: Holm's adjustment, paired-bootstrap differences, and who is tied with the best."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.report.pairs import all_pairs, holm, tied_with_best


def test_holm_matches_a_worked_example():
    # p sorted: 0.01*4 = 0.04, 0.02*3 = 0.06, 0.03*2 = 0.06, 0.5*1 = 0.5 (monotone, in input order)
    assert holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # 0.8 x 2 caps at 1; monotone after it
    assert max(holm([0.6, 0.7, 0.8])) <= 1.0


def test_all_pairs_orders_each_pair_and_separates_a_real_difference_only():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 800).astype(str)
    good = np.where(rng.random(800) < 0.8, truth, rng.integers(0, 4, 800).astype(str))
    also_good = np.where(rng.random(800) < 0.8, truth, rng.integers(0, 4, 800).astype(str))
    bad = rng.integers(0, 4, 800).astype(str)
    pairs = all_pairs(truth, {"bad": bad, "good": good, "also good": also_good}, n_resamples=400, seed=0)
    assert len(pairs) == 3
    by_pair = {frozenset((p["a"], p["b"])): p for p in pairs}
    real = by_pair[frozenset(("good", "bad"))]
    assert real["a"] == "good" and real["difference"] > 0.3 and real["low"] > 0 and real["significant"]
    tie = by_pair[frozenset(("good", "also good"))]
    assert abs(tie["difference"]) < 0.05 and not tie["significant"] and tie["p_holm"] >= tie["p_value"]
    scores = {"good": 0.8, "also good": 0.79, "bad": 0.25}
    assert tied_with_best(scores, pairs) == ("good", ["also good"])


def test_identical_systems_are_never_different():
    truth = np.array(list("abcabcabca"))
    (pair,) = all_pairs(truth, {"x": truth, "y": truth.copy()}, n_resamples=200)
    assert pair["difference"] == 0 and pair["p_value"] == 1.0 and not pair["significant"]


def test_too_few_resamples_for_many_pairs_is_said_not_hidden():
    from pipeline.report.pairs import resolution_problem

    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 300).astype(str)
    systems = {f"s{i}": np.where(rng.random(300) < i / 8, truth, "0") for i in range(8)}  # 28 pairs
    pairs = all_pairs(truth, systems, n_resamples=200)
    assert len(pairs) == 28 and not any(row["significant"] for row in pairs)  # 2/201 x 28 > 0.05
    assert "no pair can be significant" in resolution_problem(pairs)
    assert resolution_problem(all_pairs(truth, systems, n_resamples=3000)) == ""
