"""The study's sentences and figures: the layer inner CV picks (never the test figure), learning-curve
crossovers in words for every pattern of who leads, the speed/quality Pareto front, and the three PNGs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.render.study_figures import plot_cost, plot_curves, plot_layers
from pipeline.report.cost import CostPoint, cost_sentence, cost_table_rows, pareto_front
from pipeline.report.curves import CurveSeries, crossover_sentence, curve_table_rows, size_verdicts
from pipeline.report.layers import LayerScore, best_layer, layer_sentence

# --- layers -------------------------------------------------------------------------------------------


def sweep(test: dict[str, float], cv: dict[str, float | None]) -> list[LayerScore]:
    return [LayerScore(layer, f1, f1 - 0.01, f1 + 0.01, cv.get(layer)) for layer, f1 in test.items()]


def test_best_layer_follows_inner_cv_not_the_test_figure():
    scores = sweep({"6": 0.20, "9": 0.15, "last": 0.14}, {"6": 0.10, "9": 0.13, "last": 0.12})
    assert best_layer(scores).layer == "9"


@pytest.mark.parametrize(
    ("cv", "expected"),
    [
        ({"4": 0.13, "9": 0.13, "last": 0.13}, "last"),  # "last" wins a tie it is part of
        ({"4": 0.13, "9": 0.13, "last": 0.12}, "9"),  # else the later layer
        ({"9": 0.13, "last4": 0.13, "last": 0.10}, "last4"),  # combinations come after "last"
        ({}, "last"),  # no inner CV anywhere: the last layer, whatever the test figures say
        ({"4": math.nan, "9": None}, "last"),
    ],
)
def test_best_layer_ties_and_missing_cv(cv, expected):
    scores = sweep({"4": 0.30, "9": 0.20, "last": 0.10, "last4": 0.25}, cv)
    assert best_layer(scores).layer == expected


def test_layer_sentence_reports_the_paired_test_oriented_best_minus_last():
    scores = sweep({"9": 0.151, "last": 0.142}, {"9": 0.13, "last": 0.12})
    pair = {"a": "x", "b": "y", "difference": 0.009, "low": -0.002, "high": 0.020, "p_holm": 0.31}
    pair |= {"significant": False}
    text = layer_sentence("e5-small · mean", "logistic regression", scores, best_layer(scores), pair)
    assert text == (
        "e5-small · mean: inner CV picks layer 9 for logistic regression (test 0.151 vs 0.142 at the last "
        "layer, +0.009 [-0.002, +0.020], Holm p = 0.31: no significant difference)."
    )
    worse = sweep({"9": 0.140, "last": 0.150}, {"9": 0.13, "last": 0.12})  # CV picked the worse one
    pair = {"difference": 0.010, "low": 0.002, "high": 0.018, "p_holm": 0.004, "significant": True}
    text = layer_sentence("m", "kNN", worse, best_layer(worse), pair)
    assert "-0.010 [-0.018, -0.002], Holm p = 0.004: the last layer is significantly better" in text
    assert "the highest test figure, 0.150, is at the last layer" in text


def test_layer_sentence_when_the_last_layer_is_picked_or_nothing_was_cross_validated():
    scores = sweep({"3": 0.16, "last": 0.142}, {"3": 0.10, "last": 0.12})
    text = layer_sentence("minilm · mean", "kNN", scores, best_layer(scores), None)
    assert text.startswith("minilm · mean: inner CV picks the last layer for kNN (test 0.142 [0.132, 0.152]")
    assert "highest test figure, 0.160, is at layer 3" in text
    blind = sweep({"3": 0.16, "last": 0.142}, {})
    assert "no inner-CV figures" in layer_sentence("m", "kNN", blind, best_layer(blind), None)


# --- learning curves ------------------------------------------------------------------------------------

SIZES = [150, 480, 1523, 4690, 10000]
BASE = CurveSeries(
    "TF-IDF",
    SIZES,
    [[0.10 + 0.01 * i + 0.003 * j for j in range(5)] for i in range(4)] + [[0.15]],
    "baseline",
)
JITTER = [0.001, -0.001, 0.0005, -0.0005, 0.0]  # paired differences that barely vary: a clear verdict
NOISY = [0.01, -0.01, 0.004, -0.004, 0.0]  # sd 0.0076: the t-interval's half-width is 0.0095
TIE = None


def run_against_base(diffs: list[float | None], name: str = "run") -> CurveSeries:
    """A run whose paired difference from BASE at each size is ``diffs[i]`` (TIE: noise around 0)."""
    scores = []
    for diff, base in zip(diffs, BASE.scores, strict=True):
        noise = [0.0] if len(base) == 1 else NOISY if diff is None else JITTER
        scores.append([b + (diff or 0.0) + e for b, e in zip(base, noise, strict=False)])
    return CurveSeries(name, SIZES, scores)


def full(significant: bool) -> dict:
    return {
        "a": "x",
        "b": "y",
        "difference": 0.01,
        "low": 0.0,
        "high": 0.02,
        "p_holm": 0.01,
        "significant": significant,
    }


@pytest.mark.parametrize(
    ("diffs", "pair", "expected"),
    [
        (  # ahead, then tied
            [0.041, 0.030, 0.020, TIE, 0.002],
            full(False),
            "With up to ~1,500 labelled tweets, e5-small · mean beats TF-IDF by 2.0–4.1 points; from ~4,700 "
            "on, they are indistinguishable.",
        ),
        (  # behind everywhere
            [-0.03, -0.02, -0.02, -0.01, -0.012],
            full(True),
            "No crossover in the measured range: TF-IDF is ahead at every size (150 to 10,000 labelled "
            "tweets), by 1.0–3.0 points.",
        ),
        (  # ahead, tied, then behind: one change of lead
            [0.03, 0.01, TIE, -0.02, -0.03],
            full(True),
            "With up to 480 labelled tweets, e5-small · mean beats TF-IDF by 1.0–3.0 points; at ~1,500, they "
            "are indistinguishable; from ~4,700 on, TF-IDF beats e5-small · mean by 2.0–3.0 points.",
        ),
        (  # behind, then ahead
            [-0.02, -0.01, 0.01, 0.02, 0.03],
            full(True),
            "With up to 480 labelled tweets, TF-IDF beats e5-small · mean by 1.0–2.0 points; from ~1,500 on, "
            "e5-small · mean beats TF-IDF by 1.0–3.0 points.",
        ),
        (  # tied everywhere
            [TIE, TIE, TIE, TIE, 0.004],
            full(False),
            "e5-small · mean and TF-IDF are indistinguishable at every size measured (150 to 10,000 labelled "
            "tweets).",
        ),
        (  # alternating: the first and the last regime
            [0.03, -0.02, 0.02, -0.02, -0.01],
            full(True),
            "The lead changes 3 times in the measured range (150 to 10,000 labelled tweets): with 150 "
            "labelled tweets, e5-small · mean beats TF-IDF by 3.0 points; then, after 3 changes of verdict, "
            "from ~4,700 on, TF-IDF beats e5-small · mean by 1.0–2.0 points.",
        ),
        (  # no pair row for the full size: point values, no word of significance
            [0.03, 0.03, 0.03, 0.03, 0.01],
            None,
            "With up to ~4,700 labelled tweets, e5-small · mean beats TF-IDF by 3.0 points; at 10,000, "
            "e5-small · mean scores 1.0 points above TF-IDF (one value each, not tested).",
        ),
    ],
)
def test_crossover_sentence_for_each_pattern(diffs, pair, expected):
    assert crossover_sentence(run_against_base(diffs, "e5-small · mean"), BASE, pair) == expected


def test_paired_verdicts_use_a_t_interval_with_resamples_minus_one_df():
    """A mean difference of 0.008 with sd 0.0076 over 5 resamples: a normal interval (half-width 0.0067)
    would call it; the t-interval with 4 df (0.0095) does not."""
    run = run_against_base([None] * 4 + [0.0])
    shifted = CurveSeries("run", SIZES, [[v + 0.008 for v in values] for values in run.scores[:4]] + [[0.15]])
    states = [verdict.state for verdict in size_verdicts(shifted, BASE, full(False))]
    assert states == ["tie"] * 5
    clear = [verdict.state for verdict in size_verdicts(run_against_base([0.008] * 5), BASE, full(True))]
    assert clear == ["run"] * 5


def test_one_resample_is_not_judged_by_the_full_size_test():
    """With one resample every size has one value: only the full size (the last) takes the pair's
    verdict; the others are the points' order, untested."""
    run = CurveSeries("run", [100, 500, 2000], [[0.30], [0.50], [0.70]])
    base = CurveSeries("TF-IDF", [100, 500, 2000], [[0.45], [0.52], [0.60]], "baseline")
    verdicts = size_verdicts(run, base, full(False))
    expected = [("baseline", False), ("baseline", False), ("tie", True)]
    assert [(v.state, v.tested) for v in verdicts] == expected


def test_curve_table_has_a_row_per_size_and_mean_plus_sd_cells():
    short = CurveSeries("majority", [150, 480], [[0.03, 0.03], [0.031, 0.033]], "baseline")
    rows = curve_table_rows([BASE, short])
    assert [row["labelled tweets"] for row in rows] == ["150", "480", "1,523", "4,690", "10,000"]
    assert rows[0]["TF-IDF"] == "0.106 ± 0.005" and rows[-1]["TF-IDF"] == "0.150"
    assert rows[1]["majority"] == "0.032 ± 0.001" and rows[2]["majority"] == "—"


# --- cost -----------------------------------------------------------------------------------------------

POINTS = [
    CostPoint("fast", 5000.0, 0.10, None, None, "baseline"),
    CostPoint("fast twin", 5000.0, 0.10, 1_000_000, 64),  # ties "fast" exactly: neither dominates
    CostPoint("mid", 1000.0, 0.15, 22_700_000, 384),
    CostPoint("beaten", 500.0, 0.14, 33_000_000, 384),  # slower and worse than "mid"
    CostPoint("slow best", 100.0, 0.16, 110_000_000, 768),
    CostPoint("same speed, worse", 1000.0, 0.12, 22_700_000, 384),  # as fast as "mid", less accurate
    CostPoint("unmeasured", None, 0.20),
]


def test_pareto_front_on_a_hand_example():
    front = pareto_front(POINTS)
    assert front == {"fast", "fast twin", "mid", "slow best"}
    rows = cost_table_rows(POINTS, front)
    assert [row["system"] for row in rows][:2] == ["unmeasured", "slow best"]
    assert rows[1] == {
        "system": "slow best",
        "macro-F1": "0.160",
        "texts/s": "100",
        "params": "110.0M",
        "dim": "768",
        "on the front": "yes",
    }
    text = cost_sentence(POINTS, front)
    assert "→ mid (+5.0 points, 5.0× slower) → slow best (+1.0 points, 10× slower)" in text
    assert "the other 2 systems are no faster and no more accurate" in text and "unmeasured" in text


# --- figures --------------------------------------------------------------------------------------------


def check_png(path: Path) -> None:
    from matplotlib.image import imread

    assert path.stat().st_size > 10_000
    height, width = imread(path).shape[:2]
    assert 400 < width < 3000 and 300 < height < 3000


def test_each_figure_writes_a_readable_png(tmp_path):
    layers = [*map(str, range(1, 12)), "last", "last4", "first-last"]
    panels = {
        key: {
            probe: sweep({layer: base + 0.002 * i for i, layer in enumerate(layers)}, {"6": 0.2})
            for probe, base in (("logistic", 0.14), ("knn", 0.10))
        }
        for key in ("minilm · mean", "e5-small · mean", "e5-small · cls")
    }
    best = {key: {probe: "6" for probe in probes} for key, probes in panels.items()}
    plot_layers(panels, best, tmp_path / "layers.png", "macro-F1 by layer")
    series = [run_against_base([0.01 * k] * 5, f"model {k}") for k in range(6)]
    plot_curves(
        [*series, BASE, CurveSeries("majority", SIZES, [[0.03] * 5] * 4 + [[0.03]], "baseline")],
        tmp_path / "curves.png",
        "learning curves",
    )
    plot_cost(POINTS, pareto_front(POINTS), tmp_path / "cost.png", "speed and macro-F1")
    for name in ("layers", "curves", "cost"):
        check_png(tmp_path / f"{name}.png")
