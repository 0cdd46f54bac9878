"""A comparison's results: one row per run, the baselines, per-class figures and every pair tested, as
data that the report renders (``document``) and the CLI prints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.artifacts.runs import run_title
from pipeline.core.layout import LAST_LAYER
from pipeline.report.pairs import resolution_problem, tied_with_best
from pipeline.stages.probe.scores import KnnResult, Leakage, LogisticResult, ProbeScores


@dataclass
class RunResult:
    model: str
    pooling: str
    run_dir: Path
    embed: dict[str, Any]
    probe: dict[str, Any]  # the probe report's dict (``ProbeReport.to_dict``); its probes read typed below
    plot: dict[str, Any] | None
    skipped: dict[str, bool]
    layer: str = LAST_LAYER
    picked_for: tuple[str, ...] = ("logistic", "knn")  # probes whose inner CV picks this layer
    curve: dict[str, Any] | None = None  # the learning curve's report (``CurveReport.to_dict``)
    combined: dict[str, Any] | None = None  # the embeddings + TF-IDF probe's report

    @property
    def headline(self) -> bool:
        """Reported in full: the last layer, and each probe's pick among the layers swept."""
        return self.layer == LAST_LAYER or bool(self.picked_for)

    def in_pairs(self, probe: str) -> bool:
        """Whether the run is one of the probe's tested systems: the last layer and the probe's pick."""
        return self.layer == LAST_LAYER or probe in self.picked_for

    def scores(self, probe: str) -> ProbeScores:
        """One probe's figures, typed: ``probe`` is 'logistic' or 'knn'."""
        return {"logistic": self.logistic, "knn": self.knn}[probe]

    @cached_property
    def logistic(self) -> LogisticResult:  # read once: the report asks for it per table and per class
        return LogisticResult.from_dict(self.probe["logistic"])

    @cached_property
    def knn(self) -> KnnResult:
        return KnnResult.from_dict(self.probe["knn"])

    @cached_property
    def leakage(self) -> Leakage | None:
        """Near-duplicate leakage, where the probe measured it."""
        return Leakage.from_dict(self.probe["leakage"]) if self.probe.get("leakage") else None


@dataclass
class CompareResult:
    workdir: Path
    runs: list[RunResult]
    pairs: dict[str, list[dict[str, Any]]]  # probe -> every pair of systems, tested (``report.pairs``)
    seconds: float
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> classification report
    report: dict[str, str] = field(default_factory=dict)  # where report.{md,html,json} were written
    label_names: dict[str, str] = field(default_factory=dict)  # label code -> name, where the corpus has them

    baseline_curve: dict[str, Any] | None = None  # the baselines' learning curve
    findings: list[str] = field(default_factory=list)  # the studies' sentences (``report.study``)

    @property
    def headline(self) -> list[RunResult]:
        """The runs reported in full (every run, unless layers were swept)."""
        return [run for run in self.runs if run.headline]

    def table(self, runs: list[RunResult] | None = None) -> pd.DataFrame:
        """One row per run (the headline runs unless given): the figures a reader compares."""
        rows = []
        for run in self.headline if runs is None else runs:
            lr, knn = run.logistic, run.knn
            rows.append(
                {
                    "model": run.model,
                    "pooling": run.pooling,
                    "layer": run.layer,
                    "picked_for": ",".join(run.picked_for),
                    "dim": run.embed["dim"],
                    "parameters": run.embed.get("parameters", 0),
                    "texts_per_s": run.embed.get("texts_per_second"),
                    "lr_macro_f1": lr.macro_f1,
                    "lr_ci_low": lr.macro_f1_ci.low,
                    "lr_ci_high": lr.macro_f1_ci.high,
                    "lr_accuracy": lr.accuracy,
                    "lr_C": lr.C.value if lr.C else None,
                    "lr_C_how": lr.C.words() if lr.C else "?",
                    "knn_macro_f1": knn.macro_f1,
                    "knn_ci_low": knn.macro_f1_ci.low,
                    "knn_ci_high": knn.macro_f1_ci.high,
                    "knn_accuracy": knn.accuracy,
                    "knn_k": knn.k.value if knn.k else None,
                    "knn_k_how": knn.k.words() if knn.k else "?",
                }
            )
        return pd.DataFrame(rows)

    def per_class_f1(self, probe: str = "logistic") -> pd.DataFrame:
        columns = {
            run_name(r): {k: v.f1 for k, v in r.scores(probe).per_class.items()} for r in self.headline
        }
        frame = pd.DataFrame(columns)
        support = pd.Series({k: v.support for k, v in self.headline[0].scores(probe).per_class.items()})
        frame.insert(0, "support", support)
        return frame.sort_values("support", ascending=False)

    def payload(self) -> dict[str, Any]:
        """What report.json holds."""
        return {
            "workdir": str(self.workdir),
            "runs": self.table(self.runs).to_dict(orient="records"),
            "baselines": {
                name: {k: v for k, v in result.items() if k not in ("per_class", "confusion")}
                for name, result in self.baselines.items()
            },
            "pairs": self.pairs,
            "per_class_f1": json.loads(self.per_class_f1().to_json()),
            "skipped": {run_name(r): r.skipped for r in self.runs},
            "findings": self.findings,
            "curves": {run_name(r): r.curve["curve"] for r in self.runs if r.curve},
            "baseline_curve": self.baseline_curve["curve"] if self.baseline_curve else None,
            "combined": {
                combined_name(r): {k: r.combined[k] for k in ("macro_f1", "macro_f1_ci", "C", "scales")}
                for r in self.runs
                if r.combined
            },
            "leakage": {run_name(r): r.probe["leakage"] for r in self.runs if r.probe.get("leakage")},
            "seconds": self.seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.payload(), default=str)) | {"report": self.report}

    def lines(self) -> list[str]:
        lr_head, knn_head = "LR macro-F1 [95% CI]", "kNN macro-F1 [95% CI]"
        out = [f"{'run':<36} {'dim':>4}  {lr_head:<24} {'C':>6}  {knn_head:<24} {'k':>4}"]
        for run in self.headline:
            lr, knn = run.logistic, run.knn
            C, k = (f"{c.value:g}" if c else "?" for c in (lr.C, knn.k))
            out.append(
                f"{run_name(run)[-36:]:<36} {run.embed['dim']:>4}  {_interval(lr):<24} {C:>6}  "
                f"{_interval(knn):<24} {k:>4}"
            )
        for name, result in self.baselines.items():
            ci = result["macro_f1_ci"]
            value = f"{result['macro_f1']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"
            out.append(f"{'baseline: ' + BASELINE_NAMES[name]:<41} {value:<24}")
        for run in self.headline:
            if run.combined:
                out.append(
                    f"{combined_name(run)[-41:]:<41} {_interval(LogisticResult.from_dict(run.combined))}"
                )
        hows = sorted({c.words() for run in self.headline for c in (run.logistic.C, run.knn.k) if c})
        if hows:
            out.append("C and k (chosen on the training rows): " + "; ".join(hows))
        out += [sentence.replace("**", "") for sentence in self.opening()]
        stages = [done for r in self.runs for done in r.skipped.values()]
        reused = sum(stages)
        out.append(
            f"{len(self.runs)} run{'s' * (len(self.runs) != 1)}: {len(stages) - reused} stage(s) computed, "
            f"{reused} reused ({self.seconds:.1f}s)"
        )
        if self.report:
            out.append(f"report: {self.report['html']}  (and report.md, report.json)")
        return out

    def opening(self) -> list[str]:
        """The report's first paragraph: the verdicts, then what the studies add (best layers,
        learning-curve crossovers, leakage, what the encoder adds to TF-IDF: ``report.study``)."""
        return verdicts(self) + self.findings


def _interval(scores: ProbeScores) -> str:
    ci = scores.macro_f1_ci
    return f"{scores.macro_f1:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


BASELINE_NAMES = {"majority": "majority class", "tfidf": "TF-IDF"}
PROBES = {"logistic": "logistic regression", "knn": "kNN"}
SIGNIFICANCE = (
    "a difference counts when its p from a paired bootstrap over the test rows, Holm-adjusted, is < 0.05"
)
SENTENCE_START = {"logistic": "Logistic regression", "knn": "kNN"}


def run_name(run: RunResult) -> str:
    return run_title(run.model, run.pooling, run.layer)


def combined_name(run: RunResult) -> str:
    """The system of a run's embeddings and the TF-IDF features in one probe."""
    return f"{run_name(run)} + TF-IDF"


def system_scores(result: CompareResult, probe: str) -> dict[str, float]:
    """Macro-F1 of every system in a probe's pair table: the headline runs, and for LR each run's
    combination with TF-IDF and the TF-IDF baseline."""
    scores = {run_name(run): float(run.scores(probe).macro_f1) for run in result.runs if run.in_pairs(probe)}
    if probe == "logistic":
        scores |= {combined_name(r): float(r.combined["macro_f1"]) for r in result.headline if r.combined}
        if "tfidf" in result.baselines:
            scores[TFIDF_SYSTEM] = float(result.baselines["tfidf"]["macro_f1"])
    return scores


TFIDF_SYSTEM = "TF-IDF baseline"


def _listed(names: list[str], scores: dict[str, float]) -> str:
    return ", ".join(f"{name} ({scores[name]:.3f})" for name in names)


def verdicts(result: CompareResult) -> list[str]:
    """The report's first words: per probe, the best system, which others no test separates from it
    (Holm-adjusted paired bootstrap), and where the baselines stand."""
    out = []
    for probe, pairs in result.pairs.items():
        scores = system_scores(result, probe)
        if len(scores) < 2:
            continue
        best, tied = tied_with_best(scores, pairs)
        worse = sorted(set(scores) - {best, *tied}, key=lambda name: -scores[name])
        top = f"**{best}** ({scores[best]:.3f} macro-F1)"
        if not worse:
            sentence = (
                f"{SENTENCE_START[probe]}: no significant difference: {top} scores highest, but no test "
            )
            sentence += f"separates it from {_listed(tied, scores)}"
        elif not tied:
            sentence = f"{SENTENCE_START[probe]}: {top} is best, significantly better than every other"
        else:
            sentence = f"{SENTENCE_START[probe]}: {top} scores highest; no test separates it from "
            sentence += f"{_listed(tied, scores)}; significantly worse: {_listed(worse, scores)}"
        out.append(sentence + f" ({SIGNIFICANCE}).")
        out += [problem] if (problem := resolution_problem(pairs)) else []
    if "majority" in result.baselines:
        out.append(f"Majority-class baseline: {result.baselines['majority']['macro_f1']:.3f} macro-F1.")
    return out
