"""Probes: how well do a run's embeddings separate the labels? Logistic regression and FAISS kNN.

Both are trained on the ``train`` split (plus ``val`` if asked) and scored on ``test``; a corpus without
splits gets a stratified, seeded 80/20 split. Same seed, same numbers.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd

from pipeline.embed import find_run
from pipeline.errors import EncajesError
from pipeline.ingest import corpus_hash, load_corpus
from pipeline.layout import RunPaths, Workdir, is_fresh, record_stage, write_atomic
from pipeline.lock import writes_workdir
from pipeline.metrics import bootstrap_macro_f1, classification_report
from pipeline.models import DEFAULT_MODEL
from pipeline.store import load_embeddings


@dataclass(frozen=True)
class ProbeSettings:
    k: int = 10
    C: float = 1.0
    max_iter: int = 1000
    include_val: bool = False
    seed: int = 0
    test_size: float = 0.2
    bootstrap: int = 1000


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
    stratify = labels if counts.min() >= 2 else None
    tr, te = train_test_split(
        positions, test_size=settings.test_size, random_state=settings.seed, stratify=stratify
    )
    train, test = np.zeros(len(corpus), bool), np.zeros(len(corpus), bool)
    train[tr], test[te] = True, True
    how = "stratified" if stratify is not None else "random (a class has one row)"
    return (
        train,
        test,
        f"{how} {1 - settings.test_size:.0%}/{settings.test_size:.0%} split, seed {settings.seed}",
    )


def logistic_predict(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, settings: ProbeSettings
) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=settings.C, max_iter=settings.max_iter, random_state=settings.seed)
    return model.fit(train_x, train_y).predict(test_x)


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int) -> np.ndarray:
    """Similarity-weighted vote of the k most cosine-similar training rows (exact FAISS search)."""
    classes, codes = np.unique(train_y, return_inverse=True)
    index = faiss.IndexFlatIP(train_x.shape[1])
    index.add(np.ascontiguousarray(train_x, dtype=np.float32))
    sims, neighbours = index.search(np.ascontiguousarray(test_x, dtype=np.float32), min(k, len(train_x)))
    votes = np.zeros((len(test_x), len(classes)))
    np.add.at(votes, (np.arange(len(test_x))[:, None], codes[neighbours]), sims)
    return classes[votes.argmax(axis=1)]  # a tie goes to the first label in sorted order


# --- the stage -----------------------------------------------------------------------------------------


@dataclass
class ProbeReport:
    probe: Path
    predictions: Path
    confusion_png: Path
    split: str
    train_rows: int
    test_rows: int
    logistic: dict[str, Any]
    knn: dict[str, Any]
    seconds: float
    skipped: bool

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            stage="probe",
            probe=str(self.probe),
            predictions=str(self.predictions),
            confusion_png=str(self.confusion_png),
        )
        return out

    def summary(self) -> dict[str, Any]:
        """Headline figures (no per-class tables)."""
        keep = ("macro_f1", "macro_f1_ci", "accuracy", "weighted_f1")
        return {
            name: {key: result[key] for key in keep}
            for name, result in (("logistic", self.logistic), ("knn", self.knn))
        }


@writes_workdir()
def probe_run(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    settings: ProbeSettings | None = None,
    force: bool = False,
) -> ProbeReport:
    """Fit both probes on one run's embeddings; writes probe.json, predictions.parquet, confusion.png."""
    settings = settings or ProbeSettings()
    work = Workdir.at(workdir)
    run, embed_entry = find_run(work, model, pooling)
    inputs = {
        "corpus_sha256": corpus_hash(work),
        "embeddings_sha256": embed_entry.get("embeddings_sha256"),
        **asdict(settings),
    }
    outputs = [run.probe, run.predictions, run.confusion_png]
    if not force and is_fresh(run.manifest, "probe", inputs, outputs):
        return load_probe_report(run, skipped=True)

    start = time.perf_counter()
    corpus = load_corpus(work, columns=["row_id", "label", "split"])
    embeddings = load_embeddings(run.embeddings)
    if not np.array_equal(embeddings.row_ids, corpus["row_id"].to_numpy()):
        raise EncajesError(
            f"{run.embeddings} does not match the corpus row for row: run `encajes embed` again."
        )
    train, test, how = choose_split(corpus, settings)
    y = corpus["label"].astype(str).to_numpy()
    x_train, x_test = embeddings.take(np.flatnonzero(train)), embeddings.take(np.flatnonzero(test))
    predicted = {
        "logistic": logistic_predict(x_train, y[train], x_test, settings),
        "knn": knn_predict(x_train, y[train], x_test, settings.k),
    }
    results = {}
    for name, pred in predicted.items():
        report = classification_report(y[test], pred)
        report["macro_f1_ci"] = bootstrap_macro_f1(y[test], pred, settings.bootstrap, settings.seed)
        results[name] = report
    predictions = pd.DataFrame({"row_id": corpus["row_id"].to_numpy()[test], "label": y[test], **predicted})
    write_atomic(run.predictions, lambda tmp: predictions.to_parquet(tmp, index=False))
    from pipeline.plot import plot_confusions

    title = f"{embed_entry['inputs']['model']} · {embed_entry['inputs']['pooling']}"
    plot_confusions(results, title, run.confusion_png)
    report = ProbeReport(
        run.probe,
        run.predictions,
        run.confusion_png,
        how,
        int(train.sum()),
        int(test.sum()),
        results["logistic"],
        results["knn"],
        round(time.perf_counter() - start, 3),
        False,
    )
    payload = {
        **report.to_dict(),
        "settings": asdict(settings),
        "model": embed_entry["inputs"]["model"],
        "pooling": embed_entry["inputs"]["pooling"],
    }
    write_atomic(run.probe, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False)))
    record_stage(run.manifest, "probe", inputs, {"split": how, **report.summary()})
    return report


def load_probe_report(run: RunPaths, skipped: bool = False) -> ProbeReport:
    if not run.probe.exists():
        raise EncajesError(f"No probe results in {run.root}: run `encajes probe` first.")
    data = json.loads(run.probe.read_text(encoding="utf-8"))
    return ProbeReport(
        run.probe,
        run.predictions,
        run.confusion_png,
        data["split"],
        data["train_rows"],
        data["test_rows"],
        data["logistic"],
        data["knn"],
        data["seconds"],
        skipped,
    )
