"""Probes: how well do a run's embeddings separate the labels? Logistic regression and FAISS kNN.

Both are trained on the ``train`` split (plus ``val`` if asked) and scored on ``test``; a corpus without
splits gets a stratified, seeded 80/20 split. C and k are chosen on the training rows (``probe_models``)
unless given. Same seed, same numbers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.atomic import write_atomic, write_text_atomic
from pipeline.corpus import corpus_hash, load_corpus
from pipeline.errors import EncajesError
from pipeline.label_names import load_label_names, names_input
from pipeline.layout import RunPaths, Workdir
from pipeline.metrics import bootstrap_macro_f1, classification_report
from pipeline.models import DEFAULT_MODEL
from pipeline.probe_models import knn_predict, knn_tuned_predict, logistic_params, logistic_predict
from pipeline.runner import RunStage, Timings, run_stage
from pipeline.runs import find_run
from pipeline.settings import ProbeSettings
from pipeline.stage_report import StageReport
from pipeline.store import load_embeddings

# --- the pure core -------------------------------------------------------------------------------------


def choose_split(corpus: pd.DataFrame, settings: ProbeSettings) -> tuple[np.ndarray, np.ndarray, str]:
    """Boolean masks (train, test) over labelled rows, and a sentence saying how they were chosen."""
    labelled = corpus["label"].notna().to_numpy()
    split = corpus["split"].fillna("").to_numpy()
    if labelled.sum() < 2 or corpus.loc[labelled, "label"].nunique() < 2:
        raise EncajesError(
            "Probes need labels: the corpus has fewer than two labelled classes (--label-col?)."
        )
    has_train, has_test = (labelled & (split == "train")).any(), (labelled & (split == "test")).any()
    if has_train and has_test:
        train_splits = ["train", "val"] if settings.include_val else ["train"]
        train = labelled & np.isin(split, train_splits)
        test = labelled & (split == "test")
        return train, test, f"{' + '.join(train_splits)} -> test"
    if has_train or has_test:
        only = "train" if has_train else "test"
        raise EncajesError(
            f"The corpus has a {only!r} split but no {'test' if has_train else 'train'!r} split: ingest both "
            f"files (named train.csv/test.csv or with a split column), or ingest without splits for 80/20."
        )
    from sklearn.model_selection import train_test_split

    positions = np.flatnonzero(labelled)
    labels = corpus["label"].to_numpy()[positions]
    counts = pd.Series(labels).value_counts()
    test_rows = int(np.ceil(settings.test_size * len(labels)))
    # stratifying needs two rows a class, and room for every class on both sides
    can_stratify = counts.min() >= 2 and min(test_rows, len(labels) - test_rows) >= len(counts)
    stratify = labels if can_stratify else None
    tr, te = train_test_split(
        positions, test_size=settings.test_size, random_state=settings.seed, stratify=stratify
    )
    train, test = np.zeros(len(corpus), bool), np.zeros(len(corpus), bool)
    train[tr], test[te] = True, True
    how = "stratified" if stratify is not None else "random (too few rows a class to stratify)"
    return (
        train,
        test,
        f"{how} {1 - settings.test_size:.0%}/{settings.test_size:.0%} split, seed {settings.seed}",
    )


# --- the stage -----------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class ProbeReport(StageReport):
    stage = "probe"
    probe: Path
    predictions: Path
    confusion_png: Path
    split: str
    train_rows: int
    test_rows: int
    logistic: dict[str, Any]
    knn: dict[str, Any]
    seconds: float

    def summary(self) -> dict[str, Any]:
        """Headline figures (no per-class tables)."""
        keep = ("macro_f1", "macro_f1_ci", "accuracy", "weighted_f1", "C", "k")
        return {
            name: {key: result[key] for key in keep if key in result}
            for name, result in (("logistic", self.logistic), ("knn", self.knn))
        }

    def record(self) -> dict[str, Any]:
        return {"split": self.split, **self.summary()}  # the full figures are in probe.json

    def lines(self) -> list[str]:
        out = [
            f"{'fresh, kept' if self.skipped else 'wrote'} {self.probe}",
            f"split: {self.split} ({self.train_rows:,} train / {self.test_rows:,} test rows)",
        ]
        for name, result in (("logistic", self.logistic), ("kNN", self.knn)):
            ci = result["macro_f1_ci"]
            out.append(
                f"{name:>9}: macro-F1 {result['macro_f1']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]  "
                f"accuracy {result['accuracy']:.3f}  weighted-F1 {result['weighted_f1']:.3f}  "
                f"{choice_words(result)}"
            )
        out.append(f"confusion matrices: {self.confusion_png}")
        return out


def choice_words(result: dict[str, Any]) -> str:
    """'C = 16 (3-fold CV)' / 'k = 10 (fixed)': how a probe's hyper-parameter was set."""
    for name in ("C", "k"):
        if name in result:
            how = f"{result[name]['folds']}-fold CV" if result[name]["tuned"] else "fixed"
            return f"{name} = {result[name]['value']:g} ({how})"
    return ""


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
            corpus = load_corpus(self.work, columns=["row_id", "label", "split"])
            embeddings = load_embeddings(paths.embeddings)
            if not np.array_equal(embeddings.row_ids, corpus["row_id"].to_numpy()):
                raise EncajesError(
                    f"{paths.embeddings} does not match the corpus row for row: run `encajes embed` again."
                )
            train, test, how = choose_split(corpus, settings)
            y = corpus["label"].astype(str).to_numpy()
            x_train, x_test = embeddings.take(np.flatnonzero(train)), embeddings.take(np.flatnonzero(test))
            predicted, choices = fit_probes(x_train, y[train], x_test, settings)
            results = score(y[test], predicted, settings)
            results["logistic"] |= {
                "C": choices["logistic"],
                "refit": logistic_params(choices["logistic"]["value"], settings.max_iter),
            }
            results["knn"] |= {"k": choices["knn"]}
            row_ids = corpus["row_id"].to_numpy()[test]
            frame = pd.DataFrame({"row_id": row_ids, "label": y[test], **predicted})
            write_atomic(paths.predictions, lambda tmp: frame.to_parquet(tmp, index=False))
            from pipeline.figures import plot_confusions

            plot_confusions(results, self.run.title, paths.confusion_png, names=self.names)
        report = ProbeReport(
            probe=paths.probe,
            predictions=paths.predictions,
            confusion_png=paths.confusion_png,
            split=how,
            train_rows=int(train.sum()),
            test_rows=int(test.sum()),
            logistic=results["logistic"],
            knn=results["knn"],
            seconds=timings.rounded()["seconds"],
        )
        payload = {
            **report.to_dict(),
            "settings": asdict(settings),
            "model": self.run.model,
            "pooling": self.run.pooling,
        }
        write_text_atomic(paths.probe, json.dumps(payload, indent=2, ensure_ascii=False))
        return report


def fit_probes(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, settings: ProbeSettings
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Each probe's test predictions, and how its C or k was set."""
    folds, seed = settings.cv_folds, settings.seed
    lr, C = logistic_predict(x_train, y_train, x_test, settings.C, folds, seed, settings.max_iter)
    knn, k = knn_tuned_predict(x_train, y_train, x_test, settings.k, folds, seed)
    return {"logistic": lr, "knn": knn}, {"logistic": C.to_dict(), "knn": k.to_dict()}


def score(truth: np.ndarray, predicted: dict[str, np.ndarray], settings: ProbeSettings) -> dict[str, Any]:
    """Each probe's classification report with a bootstrap interval of its macro-F1."""
    results = {}
    for name, pred in predicted.items():
        report = classification_report(truth, pred)
        report["macro_f1_ci"] = bootstrap_macro_f1(truth, pred, settings.bootstrap, settings.seed)
        results[name] = report
    return results


def probe_run(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    settings: ProbeSettings | None = None,
    force: bool = False,
) -> ProbeReport:
    """Fit both probes on one run's embeddings; writes probe.json, predictions.parquet, confusion.png."""
    work = Workdir.at(workdir)
    return run_stage(ProbeStage(work, find_run(work, model, pooling), settings or ProbeSettings()), force)


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
    "ProbeReport",
    "ProbeSettings",
    "choose_split",
    "fit_probes",
    "knn_predict",
    "logistic_predict",
    "probe_run",
]
