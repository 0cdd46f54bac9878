"""``encajes bench probe``: what tuning C and k costs, on one run's saved embeddings.

Three ways to fit the two probes on the same rows, in rounds in one process (A B C, B C A, C A B, ...):
- ``tuned``: the default, C and k chosen by inner cross-validation (``stages.probe.logistic`` fits, one
  warm-started chain over the C grid per fold);
- ``fixed``: the fixed protocol, ``--C 1.0 --k 10``;
- ``tuned, scikit-learn``: the same search with scikit-learn's ``newton-cg``, every fold x C from
  scratch (how the probe searched before), to show what the solver buys.
Each part is timed from embeddings in memory to test predictions; loading, the bootstrap and the
figures are the same for all three and left out. Ratios are per round, and their median reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.artifacts.runs import find_run
from pipeline.core.layout import Workdir
from pipeline.core.settings import ProbeBenchSettings, ProbeSettings
from pipeline.core.stage_report import ResultReport
from pipeline.stages.probe.estimators import LogisticFit
from pipeline.stages.probe.metrics import classification_report
from pipeline.stages.probe.stage import ProbeRows, fit_probes, probe_rows

VARIANTS = ("tuned", "fixed", "tuned, scikit-learn")

Variant = Callable[[ProbeRows], tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]]


def _variants(settings: ProbeBenchSettings) -> dict[str, Variant]:
    tuned = ProbeSettings(cv_folds=settings.cv_folds, seed=settings.seed)
    fixed = ProbeSettings(C=1.0, k=10, cv_folds=settings.cv_folds, seed=settings.seed)

    return {
        "tuned": lambda rows: fit_probes(rows.x_train, rows.y_train, rows.x_test, tuned),
        "fixed": lambda rows: fit_probes(rows.x_train, rows.y_train, rows.x_test, fixed),
        "tuned, scikit-learn": lambda rows: fit_probes(
            rows.x_train, rows.y_train, rows.x_test, tuned, LogisticFit()
        ),
    }


def bench_probe_rows(
    rows: ProbeRows, settings: ProbeBenchSettings, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Seconds of each variant per round, the ratios, and what each variant chose and scored."""
    variants = _variants(settings)
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    outcome: dict[str, dict[str, Any]] = {}
    for round_number in range(settings.rounds):
        turn = round_number % len(VARIANTS)  # each goes first in turn: the process's first fit pays warm-ups
        for name in VARIANTS[turn:] + VARIANTS[:turn]:
            started = time.perf_counter()
            predicted, choices = variants[name](rows)
            seconds[name].append(time.perf_counter() - started)
            outcome[name] = {
                "logistic_macro_f1": classification_report(rows.y_test, predicted["logistic"])["macro_f1"],
                "knn_macro_f1": classification_report(rows.y_test, predicted["knn"])["macro_f1"],
                "C": choices["logistic"]["value"],
                "k": choices["knn"]["value"],
            }
            if log:
                log(f"round {round_number + 1}: {name} {seconds[name][-1]:.2f}s")
    ratio = _ratios(seconds)
    return {
        "train_rows": len(rows.y_train),
        "test_rows": len(rows.y_test),
        "dim": int(rows.x_train.shape[1]),
        "classes": len(np.unique(rows.y_train)),
        "rounds": settings.rounds,
        "seconds": {name: [round(s, 3) for s in values] for name, values in seconds.items()},
        "median_seconds": {name: round(statistics.median(values), 3) for name, values in seconds.items()},
        "ratios": ratio,
        "outcome": outcome,
    }


def _ratios(seconds: dict[str, list[float]]) -> dict[str, Any]:
    def per_round(top: str, bottom: str) -> list[float]:
        return [a / b for a, b in zip(seconds[top], seconds[bottom], strict=True)]

    tuned_over_fixed = per_round("tuned", "fixed")
    scikit_over_tuned = per_round("tuned, scikit-learn", "tuned")
    return {
        "tuned_over_fixed": [round(r, 2) for r in tuned_over_fixed],
        "tuned_over_fixed_median": round(statistics.median(tuned_over_fixed), 2),
        "scikit_learn_over_tuned": [round(r, 2) for r in scikit_over_tuned],
        "scikit_learn_over_tuned_median": round(statistics.median(scikit_over_tuned), 2),
    }


@dataclass
class ProbeBench(ResultReport):
    def lines(self) -> list[str]:
        r = self.result
        out = [
            f"{r['train_rows']:,} train / {r['test_rows']:,} test rows, {r['dim']}-d, "
            f"{r['classes']} classes, {r['rounds']} rounds "
            "(probe fits only: loading, bootstrap and figures left out)"
        ]
        for name in VARIANTS:
            o = r["outcome"][name]
            out.append(
                f"  {name:<20} {r['median_seconds'][name]:>7.2f}s  LR macro-F1 {o['logistic_macro_f1']:.4f} "
                f"(C {o['C']:g})  kNN macro-F1 {o['knn_macro_f1']:.4f} (k {o['k']:g})"
            )
        ratios = r["ratios"]
        out.append(
            f"  tuned / fixed: {ratios['tuned_over_fixed_median']:.2f}x "
            f"(per round {ratios['tuned_over_fixed']})"
        )
        out.append(
            f"  scikit-learn search / ours: {ratios['scikit_learn_over_tuned_median']:.2f}x "
            f"(per round {ratios['scikit_learn_over_tuned']})"
        )
        return out


def bench_probe(
    workdir: str,
    model: str,
    pooling: str | None,
    settings: ProbeBenchSettings,
    log: Callable[[str], None] | None = None,
) -> ProbeBench:
    """``encajes bench probe``."""
    work = Workdir.at(workdir)
    run = find_run(work, model, pooling)
    rows = probe_rows(work, run, ProbeSettings(seed=settings.seed))
    return ProbeBench(bench_probe_rows(rows, settings, log))
