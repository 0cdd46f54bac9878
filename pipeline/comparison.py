"""A comparison's results: one row per run, per-class figures and the paired tests, as data that the
report renders (``comparison_report``) and the CLI prints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class RunResult:
    model: str
    pooling: str
    run_dir: Path
    embed: dict[str, Any]
    probe: dict[str, Any]
    plot: dict[str, Any] | None
    skipped: dict[str, bool]


@dataclass
class CompareResult:
    workdir: Path
    runs: list[RunResult]
    tests: dict[str, dict[str, Any]]
    seconds: float
    report: dict[str, str] = field(default_factory=dict)  # where report.{md,html,json} were written
    label_names: dict[str, str] = field(default_factory=dict)  # label code -> name, where the corpus has them

    def table(self) -> pd.DataFrame:
        """One row per run: the figures a reader compares."""
        rows = []
        for run in self.runs:
            lr, knn = run.probe["logistic"], run.probe["knn"]
            rows.append(
                {
                    "model": run.model,
                    "pooling": run.pooling,
                    "dim": run.embed["dim"],
                    "parameters": run.embed.get("parameters", 0),
                    "texts_per_s": run.embed.get("texts_per_second"),
                    "lr_macro_f1": lr["macro_f1"],
                    "lr_ci_low": lr["macro_f1_ci"]["low"],
                    "lr_ci_high": lr["macro_f1_ci"]["high"],
                    "lr_accuracy": lr["accuracy"],
                    "knn_macro_f1": knn["macro_f1"],
                    "knn_ci_low": knn["macro_f1_ci"]["low"],
                    "knn_ci_high": knn["macro_f1_ci"]["high"],
                    "knn_accuracy": knn["accuracy"],
                }
            )
        return pd.DataFrame(rows)

    def per_class_f1(self, probe: str = "logistic") -> pd.DataFrame:
        columns = {
            f"{r.model} · {r.pooling}": {k: v["f1"] for k, v in r.probe[probe]["per_class"].items()}
            for r in self.runs
        }
        frame = pd.DataFrame(columns)
        support = pd.Series(self.runs[0].probe[probe]["per_class"]).map(lambda v: v["support"])
        frame.insert(0, "support", support)
        return frame.sort_values("support", ascending=False)

    def payload(self) -> dict[str, Any]:
        """What report.json holds."""
        return {
            "workdir": str(self.workdir),
            "runs": self.table().to_dict(orient="records"),
            "tests": self.tests,
            "per_class_f1": json.loads(self.per_class_f1().to_json()),
            "skipped": {f"{r.model} · {r.pooling}": r.skipped for r in self.runs},
            "seconds": self.seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.payload(), default=str)) | {"report": self.report}

    def lines(self) -> list[str]:
        table = self.table()
        lr_head, knn_head = "LR macro-F1 [95% CI]", "kNN macro-F1 [95% CI]"
        out = [f"{'model':<28} {'pooling':<7} {'dim':>4}  {lr_head:<24} {knn_head:<24}"]
        for _, row in table.iterrows():
            lr = f"{row.lr_macro_f1:.3f} [{row.lr_ci_low:.3f}, {row.lr_ci_high:.3f}]"
            knn = f"{row.knn_macro_f1:.3f} [{row.knn_ci_low:.3f}, {row.knn_ci_high:.3f}]"
            out.append(f"{str(row.model)[-28:]:<28} {row.pooling:<7} {row.dim:>4}  {lr:<24} {knn:<24}")
        out += [sentence.replace("**", "") for sentence in test_sentences(self)]
        stages = [done for r in self.runs for name, done in r.skipped.items() if name != "plot" or r.plot]
        computed = sum(not skipped for skipped in stages)
        out.append(
            f"{len(self.runs)} runs: {computed} of {len(stages)} stages computed, the rest reused "
            f"({self.seconds:.1f}s)"
        )
        if self.report:
            out.append(f"report: {self.report['html']}  (and report.md, report.json)")
        return out


def test_sentences(result: CompareResult) -> list[str]:
    out = []
    for probe, test in result.tests.items():
        name = "logistic regression" if probe == "logistic" else "kNN"
        verdict = "significant" if test["significant"] else "not significant"
        out.append(
            f"{name}: **{test['best']}** beats {test['runner_up']} by {test['difference']:+.3f} macro-F1 "
            f"(95% CI [{test['low']:+.3f}, {test['high']:+.3f}], paired bootstrap over the same test rows, "
            f"{test['resamples']} resamples, one-sided p = {test['p_value']:.3f}): {verdict} at 0.05."
        )
    return out
