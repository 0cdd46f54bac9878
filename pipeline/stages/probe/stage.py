"""Probes: how well do a run's embeddings separate the labels? Logistic regression and FAISS kNN.

Both are trained on the ``train`` split (plus ``val`` if asked) and scored on ``test``; a corpus without
splits gets a stratified, seeded 80/20 split. C and k are chosen on the training rows (``estimators``)
unless given. Tweet corpora are full of near-copies, and a test row whose twin is among the training rows
flatters kNN most: the kNN search also finds each test row's nearest training row, and both probes are
scored again on the rows without a twin (``leakage`` in probe.json). Same seed, same numbers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.artifacts.corpus import corpus_hash, load_corpus
from pipeline.artifacts.label_names import load_label_names, names_input
from pipeline.artifacts.run_layer import find_layer_run
from pipeline.artifacts.run_stage import RunStage
from pipeline.artifacts.runs import Run
from pipeline.artifacts.store import load_embeddings
from pipeline.core.atomic import write_atomic, write_text_atomic
from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER, RunPaths, Workdir
from pipeline.core.runner import Timings, run_stage
from pipeline.core.settings import DEFAULT_MODEL, ProbeSettings
from pipeline.core.stage_report import StageReport
from pipeline.stages.probe.data import choose_split, measure_leakage, score
from pipeline.stages.probe.estimators import (
    Choice,
    EmbeddingFit,
    Fitter,
    knn_predict,
    knn_probe,
    logistic_predict,
)
from pipeline.stages.probe.scores import KnnResult, Leakage, LogisticResult


@dataclass(kw_only=True)
class ProbeReport(StageReport):
    stage = "probe"
    probe: Path
    predictions: Path
    confusion_png: Path
    split: str
    train_rows: int
    test_rows: int
    logistic: LogisticResult
    knn: KnnResult
    seconds: float
    leakage: Leakage | None = None  # None: a probe.json written before leakage was measured

    def to_dict(self) -> dict[str, Any]:
        """As probe.json holds it: each probe's section in its own dict form (no leakage key when it was
        not measured)."""
        whole = super().to_dict() | {"logistic": self.logistic.to_dict(), "knn": self.knn.to_dict()}
        whole.pop("leakage")
        return whole | ({"leakage": self.leakage.to_dict()} if self.leakage else {})

    @classmethod
    def rebuild(cls, recorded: dict[str, Any], **paths: Path) -> ProbeReport:
        """From probe.json, each section typed again."""
        typed: dict[str, Any] = {"logistic": LogisticResult.from_dict(recorded["logistic"])}
        typed["knn"] = KnnResult.from_dict(recorded["knn"])
        if recorded.get("leakage"):
            typed["leakage"] = Leakage.from_dict(recorded["leakage"])
        return super().rebuild(recorded | typed, **paths)

    def summary(self) -> dict[str, Any]:
        """Headline figures (no per-class tables)."""
        return {"logistic": self.logistic.headline(), "knn": self.knn.headline()}

    def record(self) -> dict[str, Any]:
        leakage = {"leakage": self.leakage.headline()} if self.leakage else {}
        return {"split": self.split, **self.summary(), **leakage}  # the full figures are in probe.json

    def lines(self) -> list[str]:
        out = [
            f"{'fresh, kept' if self.skipped else 'wrote'} {self.probe}",
            f"split: {self.split} ({self.train_rows:,} train / {self.test_rows:,} test rows)",
        ]
        for name, result in (("logistic", self.logistic), ("kNN", self.knn)):
            ci = result.macro_f1_ci
            out.append(
                f"{name:>9}: macro-F1 {result.macro_f1:.3f} [{ci.low:.3f}, {ci.high:.3f}]  "
                f"accuracy {result.accuracy:.3f}  weighted-F1 {result.weighted_f1:.3f}  "
                f"{result.hyper_words()}"
            )
        if self.leakage:
            out.append(self.leakage.words())
        out.append(f"confusion matrices: {self.confusion_png}")
        return out


class ProbeStage(RunStage[ProbeReport]):
    name = "probe"

    def inputs(self) -> dict[str, Any]:
        return {
            "corpus_sha256": corpus_hash(self.work),
            "embeddings_sha256": self.run.embeddings_sha256,
            **asdict(self.settings),
            **names_input(self.names),
        }

    @cached_property
    def names(self) -> dict[str, str]:
        """Shown in confusion.png, hence an input."""
        return load_label_names(self.work)

    def rebuild(self, entry: dict[str, Any]) -> ProbeReport:
        return load_probe_report(self.run.paths, skipped=True)

    def compute(self, inputs: dict[str, Any], timings: Timings) -> ProbeReport:
        paths, settings = self.run.paths, self.settings
        with timings.part("seconds"):
            rows = probe_rows(self.work, self.run, settings)
            fitted = fit_both(rows.x_train, rows.y_train, rows.x_test, settings)
            predicted, choices = fitted.predicted, fitted.choices
            results = score(rows.y_test, predicted, settings)
            refit = EmbeddingFit(max_iter=settings.max_iter).params(choices["logistic"].value)
            logistic = LogisticResult.from_dict(
                results["logistic"] | {"C": choices["logistic"].to_dict(), "refit": refit}
            )
            knn = KnnResult.from_dict(results["knn"] | {"k": choices["knn"].to_dict()})
            full = {"logistic": logistic, "knn": knn}
            leakage = measure_leakage(rows.y_test, predicted, fitted.nearest_cos, full, settings)
            frame = pd.DataFrame(
                {
                    "row_id": rows.test_row_ids,
                    "label": rows.y_test,
                    **predicted,
                    "nearest_train_cos": fitted.nearest_cos.astype(np.float32),
                }
            )
            write_atomic(paths.predictions, lambda tmp: frame.to_parquet(tmp, index=False))
            from pipeline.render.figures import plot_confusions

            plot_confusions(results, self.run.title, paths.confusion_png, names=self.names)
        report = ProbeReport(
            probe=paths.probe,
            predictions=paths.predictions,
            confusion_png=paths.confusion_png,
            split=rows.how,
            train_rows=len(rows.y_train),
            test_rows=len(rows.y_test),
            logistic=logistic,
            knn=knn,
            seconds=timings.rounded()["seconds"],
            leakage=leakage,
        )
        payload = {
            **report.to_dict(),
            "settings": asdict(settings),
            "model": self.run.model,
            "pooling": self.run.pooling,
            "layer": self.run.layer,
        }
        write_text_atomic(paths.probe, json.dumps(payload, indent=2, ensure_ascii=False))
        return report


@dataclass(frozen=True)
class ProbeRows:
    """A run's labelled rows as the probes see them: train and test embeddings and labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_row_ids: np.ndarray
    how: str  # how the split was chosen, in words


def probe_rows(work: Workdir, run: Run, settings: ProbeSettings) -> ProbeRows:
    corpus = load_corpus(work, columns=["row_id", "label", "split"])
    embeddings = load_embeddings(run.paths.embeddings)
    if not np.array_equal(embeddings.row_ids, corpus["row_id"].to_numpy()):
        raise EncajesError(
            f"{run.paths.embeddings} does not match the corpus row for row: run `encajes embed` again."
        )
    train, test, how = choose_split(corpus, settings)
    y = corpus["label"].astype(str).to_numpy()
    return ProbeRows(
        embeddings.take(np.flatnonzero(train)),
        y[train],
        embeddings.take(np.flatnonzero(test)),
        y[test],
        corpus["row_id"].to_numpy()[test],
        how,
    )


@dataclass(frozen=True)
class FittedProbes:
    """Both probes' test predictions ('logistic', 'knn'), how each one's C or k was set, and each test
    row's cosine to its nearest training row (found by the kNN probe's search)."""

    predicted: dict[str, np.ndarray]
    choices: dict[str, Choice]
    nearest_cos: np.ndarray


def fit_both(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    settings: ProbeSettings,
    fit: Fitter | None = None,
) -> FittedProbes:
    """Both probes fitted on the training rows. The kNN probe runs in a thread beside the logistic one:
    its FAISS searches fill the cores the logistic folds leave idle."""
    from concurrent.futures import ThreadPoolExecutor

    folds, seed = settings.cv_folds, settings.seed
    with ThreadPoolExecutor(max_workers=1) as beside:
        knn_job = beside.submit(knn_probe, x_train, y_train, x_test, settings.k, folds, seed)
        lr, C = logistic_predict(
            x_train, y_train, x_test, settings.C, folds, seed, fit or EmbeddingFit(max_iter=settings.max_iter)
        )
        knn = knn_job.result()
    return FittedProbes(
        {"logistic": lr, "knn": knn.predicted}, {"logistic": C, "knn": knn.choice}, knn.nearest_cos
    )


def fit_probes(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    settings: ProbeSettings,
    fit: Fitter | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Each probe's test predictions, and how its C or k was set (as dicts): ``fit_both`` for callers
    that need no more."""
    fitted = fit_both(x_train, y_train, x_test, settings, fit)
    return fitted.predicted, {name: choice.to_dict() for name, choice in fitted.choices.items()}


def probe_run(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    settings: ProbeSettings | None = None,
    force: bool = False,
    layer: str = LAST_LAYER,
) -> ProbeReport:
    """Fit both probes on one run's embeddings (the run of ``layer``: "last", a layer number, "last4" or
    "first-last"); writes probe.json, predictions.parquet, confusion.png."""
    work = Workdir.at(workdir)
    run = find_layer_run(work, model, pooling, layer)
    return run_stage(ProbeStage(work, run, settings or ProbeSettings()), force)


def load_probe_report(paths: RunPaths, skipped: bool = False) -> ProbeReport:
    if not paths.probe.exists():
        raise EncajesError(f"No probe results in {paths.root}: run `encajes probe` first.")
    data = json.loads(paths.probe.read_text(encoding="utf-8"))
    report = ProbeReport.rebuild(
        data, probe=paths.probe, predictions=paths.predictions, confusion_png=paths.confusion_png
    )
    report.skipped = skipped
    return report


__all__ = [
    "FittedProbes",
    "ProbeReport",
    "ProbeSettings",
    "choose_split",
    "fit_both",
    "fit_probes",
    "knn_predict",
    "logistic_predict",
    "probe_run",
]
