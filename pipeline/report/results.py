"""A comparison's results: one row per run, the baselines, per-class figures and every pair tested, as
data that the report renders (``document``) and the CLI prints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.report.pairs import resolution_problem, tied_with_best
from pipeline.stages.probe.scores import KnnResult, LogisticResult, ProbeScores


@dataclass
class RunResult:
    model: str
    pooling: str
    run_dir: Path
    embed: dict[str, Any]
    probe: dict[str, Any]  # the probe report's dict (``ProbeReport.to_dict``); its probes read typed below
    plot: dict[str, Any] | None
    skipped: dict[str, bool]

    def scores(self, probe: str) -> ProbeScores:
        """One probe's figures, typed: ``probe`` is 'logistic' or 'knn'."""
        return {"logistic": self.logistic, "knn": self.knn}[probe]

    @cached_property
    def logistic(self) -> LogisticResult:  # read once: the report asks for it per table and per class
        return LogisticResult.from_dict(self.probe["logistic"])

    @cached_property
    def knn(self) -> KnnResult:
        return KnnResult.from_dict(self.probe["knn"])


@dataclass
class CompareResult:
    workdir: Path
    runs: list[RunResult]
    pairs: dict[str, list[dict[str, Any]]]  # probe -> every pair of systems, tested (``report.pairs``)
    seconds: float
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> classification report
    report: dict[str, str] = field(default_factory=dict)  # where report.{md,html,json} were written
    label_names: dict[str, str] = field(default_factory=dict)  # label code -> name, where the corpus has them

    def table(self) -> pd.DataFrame:
        """One row per run: the figures a reader compares."""
        rows = []
        for run in self.runs:
            lr, knn = run.logistic, run.knn
            rows.append(
                {
                    "model": run.model,
                    "pooling": run.pooling,
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
            f"{r.model} · {r.pooling}": {k: v.f1 for k, v in r.scores(probe).per_class.items()}
            for r in self.runs
        }
        frame = pd.DataFrame(columns)
        support = pd.Series({k: v.support for k, v in self.runs[0].scores(probe).per_class.items()})
        frame.insert(0, "support", support)
        return frame.sort_values("support", ascending=False)

    def payload(self) -> dict[str, Any]:
        """What report.json holds."""
        return {
            "workdir": str(self.workdir),
            "runs": self.table().to_dict(orient="records"),
            "baselines": {
                name: {k: v for k, v in result.items() if k not in ("per_class", "confusion")}
                for name, result in self.baselines.items()
            },
            "pairs": self.pairs,
            "per_class_f1": json.loads(self.per_class_f1().to_json()),
            "skipped": {f"{r.model} · {r.pooling}": r.skipped for r in self.runs},
            "seconds": self.seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.payload(), default=str)) | {"report": self.report}

    def lines(self) -> list[str]:
        table = self.table()
        lr_head, knn_head = "LR macro-F1 [95% CI]", "kNN macro-F1 [95% CI]"
        out = [f"{'model':<28} {'pooling':<7} {'dim':>4}  {lr_head:<24} {'C':>5}  {knn_head:<24} {'k':>3}"]
        for _, row in table.iterrows():
            lr = f"{row.lr_macro_f1:.3f} [{row.lr_ci_low:.3f}, {row.lr_ci_high:.3f}]"
            knn = f"{row.knn_macro_f1:.3f} [{row.knn_ci_low:.3f}, {row.knn_ci_high:.3f}]"
            C, k = (
                f"{value:g}" if value is not None and value == value else "?"
                for value in (row.lr_C, row.knn_k)
            )
            out.append(
                f"{str(row.model)[-28:]:<28} {row.pooling:<7} {row.dim:>4}  {lr:<24} {C:>5}  {knn:<24} {k:>3}"
            )
        for name, result in self.baselines.items():
            ci = result["macro_f1_ci"]
            value = f"{result['macro_f1']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"
            out.append(f"{'baseline: ' + BASELINE_NAMES[name]:<41} {value:<24}")
        for name, column in (("C", "lr_C_how"), ("k", "knn_k_how")):
            hows = sorted({how.partition("(")[2].rstrip(")") for how in table[column]})
            out.append(f"{name}: {'; '.join(hows)}" + (" on the training rows" if "CV" in str(hows) else ""))
        out += [sentence.replace("**", "") for sentence in verdicts(self)]
        stages = [done for r in self.runs for name, done in r.skipped.items() if name != "plot" or r.plot]
        computed = sum(not skipped for skipped in stages)
        out.append(
            f"{len(self.runs)} run{'s' * (len(self.runs) != 1)}: {computed} of {len(stages)} stages "
            "computed, the rest reused "
            f"({self.seconds:.1f}s)"
        )
        if self.report:
            out.append(f"report: {self.report['html']}  (and report.md, report.json)")
        return out


BASELINE_NAMES = {"majority": "majority class", "tfidf": "TF-IDF"}
PROBES = {"logistic": "logistic regression", "knn": "kNN"}
SIGNIFICANCE = (
    "a difference counts when its p from a paired bootstrap over the test rows, Holm-adjusted, is < 0.05"
)
SENTENCE_START = {"logistic": "Logistic regression", "knn": "kNN"}


def run_name(run: RunResult) -> str:
    return f"{run.model} · {run.pooling}"


def system_scores(result: CompareResult, probe: str) -> dict[str, float]:
    """Macro-F1 of every system in a probe's pair table: the runs, and the TF-IDF baseline for LR."""
    scores = {run_name(run): float(run.scores(probe).macro_f1) for run in result.runs}
    if probe == "logistic" and "tfidf" in result.baselines:
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
