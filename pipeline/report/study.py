"""What a comparison learns beyond one number per run, as data and sentences: which hidden layer (chosen
by inner CV), how much labelled data before an encoder beats TF-IDF (learning curves), whether test rows
with a near-twin in the training rows flatter a run (leakage), whether the encoder adds to n-grams
(the combined probe), and what each figure costs (throughput against macro-F1). ``study_sections``
renders them; the sentences here open the report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.core.layers import layer_order
from pipeline.core.layout import LAST_LAYER
from pipeline.render.study_values import CostPoint, CurveSeries, LayerScore
from pipeline.report.cost import cost_sentence, pareto_front
from pipeline.report.curves import crossover_sentence
from pipeline.report.layers import best_layer, layer_sentence
from pipeline.report.results import (
    PROBES,
    TFIDF_SYSTEM,
    CompareResult,
    RunResult,
    combined_name,
    run_name,
    system_scores,
)
from pipeline.stages.probe.scores import ProbeScores

BASELINE_CURVES = {"tfidf": "TF-IDF", "majority": "majority class"}


def layer_score(layer: str, scores: ProbeScores) -> LayerScore:
    """One layer's test macro-F1 with its interval, and the inner-CV figure its choice was made on."""
    choice = scores.choice
    cv = choice.best_cv if choice is not None else None
    return LayerScore(layer, scores.macro_f1, scores.macro_f1_ci.low, scores.macro_f1_ci.high, cv)


@dataclass(frozen=True)
class LayerStudy:
    """One model x pooling swept over layers: per probe, every layer's scores and inner CV's pick."""

    system: str  # "e5-small · mean"
    scores: dict[str, list[LayerScore]]  # probe -> layers in ``layer_order``
    best: dict[str, LayerScore]  # probe -> the layer inner CV picks
    runs: dict[str, RunResult]  # layer -> its run


def layer_studies(result: CompareResult) -> list[LayerStudy]:
    """Every model x pooling with more than one layer."""
    groups: dict[tuple[str, str], dict[str, RunResult]] = {}
    for run in result.runs:
        groups.setdefault((run.model, run.pooling), {})[run.layer] = run
    studies = []
    for (model, pooling), runs in groups.items():
        if len(runs) < 2:
            continue
        ordered = sorted(runs, key=layer_order)
        scores = {
            probe: [layer_score(layer, runs[layer].scores(probe)) for layer in ordered] for probe in PROBES
        }
        best = {probe: best_layer(values) for probe, values in scores.items()}
        studies.append(LayerStudy(f"{model} · {pooling}", scores, best, runs))
    return studies


def find_pair(pairs: list[dict[str, Any]], a: str, b: str) -> dict[str, Any] | None:
    """The tested pair of two systems, whichever order it was written in."""
    return next((row for row in pairs if {row["a"], row["b"]} == {a, b}), None)


def layer_sentences(result: CompareResult, probes: tuple[str, ...] = tuple(PROBES)) -> list[str]:
    out = []
    for study in layer_studies(result):
        for probe in probes:
            best, scores = study.best[probe], study.scores[probe]
            pair, best_first = None, None
            if best.layer != LAST_LAYER and LAST_LAYER in study.runs:
                names = run_name(study.runs[best.layer]), run_name(study.runs[LAST_LAYER])
                pair = find_pair(result.pairs.get(probe, []), *names)
                best_first = pair["a"] == names[0] if pair else None
            out.append(layer_sentence(study.system, PROBES[probe], scores, best, pair, best_first))
    return out


def curve_series(result: CompareResult, probe: str = "logistic") -> list[CurveSeries]:
    """A line per headline run with a learning curve, then the baselines' (logistic only: the
    baselines are logistic regressions, TF-IDF's, or no model at all)."""
    series = []
    for run in result.headline:
        if run.curve:
            points = run.curve["curve"]["points"]
            sizes, scores = [p["rows"] for p in points], [p["scores"][probe] for p in points]
            series.append(CurveSeries(run_name(run), sizes, scores, "run"))
    if probe == "logistic" and result.baseline_curve:
        points = result.baseline_curve["curve"]["points"]
        for key, name in BASELINE_CURVES.items():
            sizes, scores = [p["rows"] for p in points], [p["scores"][key] for p in points]
            series.append(CurveSeries(name, sizes, scores, "baseline"))
    return series


def crossover_sentences(result: CompareResult) -> list[str]:
    """Against TF-IDF: the best headline run's curve (by its full-size LR figure) in the opening;
    every run's in the learning-curve section."""
    series = curve_series(result)
    tfidf = next((s for s in series if s.name == BASELINE_CURVES["tfidf"]), None)
    runs = [s for s in series if s.kind == "run"]
    if tfidf is None or not runs:
        return []
    pairs = result.pairs.get("logistic", [])
    ranked = sorted(runs, key=lambda s: -sum(s.scores[-1]) / len(s.scores[-1]))
    return [crossover_sentence(s, tfidf, find_pair(pairs, s.name, TFIDF_SYSTEM)) for s in ranked]


TYPICAL_SHARE = 0.10  # above this share of test rows "twinned", the threshold is a typical neighbour


def leakage_sentences(result: CompareResult) -> list[str]:
    """Each flagged run in a sentence; otherwise one sentence saying the twins change nothing. A run
    where more than a tenth of the test rows have a "twin" is not judged: in its space the threshold is
    an ordinary neighbour's cosine (anisotropic spaces such as CLS vectors), not a copy's."""
    found = [(run, run.leakage) for run in result.headline if run.leakage]
    if not found:
        return []
    judged = [(run, leak) for run, leak in found if leak.twins <= TYPICAL_SHARE * leak.test_rows]
    crowded = [run_name(run) for run, leak in found if leak.twins > TYPICAL_SHARE * leak.test_rows]
    rows, threshold = found[0][1].test_rows, found[0][1].threshold
    out = []
    if judged:
        flagged = [(run, leak) for run, leak in judged if leak.flagged]
        counts = sorted({leak.twins for _, leak in judged})
        span = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}–{counts[-1]:,}"
        out.append(
            f"Near-duplicates: {span} of {rows:,} test rows have a training row at cosine ≥ {threshold:g} "
            "(per run)"
            + ("; scored without them, no run's figures leave their 95% interval." if not flagged else ".")
        )
        out += [_flagged(run, leak) for run, leak in flagged]
    if crowded:
        out.append(
            f"Not judged for near-duplicates: {', '.join(crowded)}: over {TYPICAL_SHARE:.0%} of test rows "
            f"lie at cosine ≥ {threshold:g} from a training row, an ordinary neighbour in that space "
            "(raise --near-dup)."
        )
    return out


def _flagged(run: RunResult, leak: Any) -> str:
    moved = [
        f"{PROBES[probe]} {clean.macro_f1:.3f} instead of {run.scores(probe).macro_f1:.3f}"
        for probe, clean in (("logistic", leak.logistic), ("knn", leak.knn))
        if clean is not None and clean.outside
    ]
    return (
        f"**{run_name(run)}** is flattered by near-duplicates: without its {leak.twins:,} twinned test rows "
        f"it scores {', '.join(moved)}, outside the interval."
    )


def combined_sentences(result: CompareResult) -> list[str]:
    """Per headline run: does adding its embeddings to TF-IDF's features help, and does TF-IDF add to
    the run? Both tested in the logistic pair table."""
    pairs, scores = result.pairs.get("logistic", []), system_scores(result, "logistic")
    out = []
    for run in result.headline:
        if not run.combined or TFIDF_SYSTEM not in scores:
            continue
        both = combined_name(run)
        row = find_pair(pairs, both, TFIDF_SYSTEM)
        gain = scores[both] - scores[TFIDF_SYSTEM]
        if row is None:
            verdict = "not tested"
        elif row["significant"] and gain > 0:
            verdict = f"the encoder adds to n-grams (Holm p = {row['p_holm']:.3g})"
        elif row["significant"]:
            verdict = f"adding it makes TF-IDF worse (Holm p = {row['p_holm']:.3g})"
        else:
            verdict = f"no significant gain over TF-IDF alone (Holm p = {row['p_holm']:.3g})"
        out.append(
            f"{run_name(run)} with TF-IDF in one probe: {scores[both]:.3f} against TF-IDF's "
            f"{scores[TFIDF_SYSTEM]:.3f} ({100 * gain:+.1f} points): {verdict}."
        )
    return out


def cost_points(result: CompareResult) -> list[CostPoint]:
    """Each model x pooling's LR macro-F1 (at the layer inner CV picks for LR) against its measured
    embedding throughput, and TF-IDF's."""
    points = [
        CostPoint(
            run_name(run),
            run.embed.get("texts_per_second"),
            run.logistic.macro_f1,
            run.embed.get("parameters") or None,
            run.embed.get("dim"),
        )
        for run in result.runs
        if "logistic" in run.picked_for
    ]
    tfidf = result.baselines.get("tfidf")
    if tfidf and tfidf.get("texts_per_second"):
        points.append(
            CostPoint("TF-IDF", tfidf["texts_per_second"], tfidf["macro_f1"], None, None, "baseline")
        )
    return points


def cost_findings(result: CompareResult) -> tuple[list[CostPoint], set[str], str]:
    """The systems with a measured throughput (runs recorded without one are left out), the Pareto
    front among them, and the sentence."""
    points = [point for point in cost_points(result) if point.texts_per_second]
    front = pareto_front(points)
    return points, front, cost_sentence(points, front) if len(points) > 1 else ""


def study_sentences(result: CompareResult) -> list[str]:
    """What the opening paragraph adds to the verdicts: inner CV's layer for LR, the best run's
    crossover with TF-IDF, near-duplicate leakage, and what the encoder adds to n-grams."""
    crossovers = crossover_sentences(result)
    return [
        *layer_sentences(result, ("logistic",)),
        *crossovers[:1],
        *leakage_sentences(result),
        *combined_sentences(result)[:1],
    ]


def layer_picks(scores: Mapping[str, Mapping[str, ProbeScores]]) -> dict[str, str]:
    """Per probe, the layer inner CV picks (``scores``: layer -> probe -> its scores), on the training
    rows only, never the test figure; one layer alone is its own pick."""
    return {
        probe: best_layer([layer_score(layer, by_probe[probe]) for layer, by_probe in scores.items()]).layer
        for probe in PROBES
    }
