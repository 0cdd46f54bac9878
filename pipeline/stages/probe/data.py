"""What the probes and the baselines share, pure: which labelled rows train and which test, and how
predictions are scored (a classification report with a bootstrap interval of macro-F1, and again on
the test rows without a near-duplicate among the training rows)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.errors import EncajesError
from pipeline.core.settings import ProbeSettings
from pipeline.stages.probe.grids import choice_words
from pipeline.stages.probe.metrics import bootstrap_macro_f1, classification_report
from pipeline.stages.probe.scores import CleanScores, Interval, Leakage, ProbeScores

NO_SPLIT = "no split in the corpus"


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
        classes = corpus.loc[train, "label"].unique()
        if len(classes) < 2:
            raise EncajesError(
                f"The {' + '.join(train_splits)} rows hold one class only ({classes[0]!r}): a probe needs "
                "two to learn anything. Check the label column and which file is the training file."
            )
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
        f"{NO_SPLIT}: a {how} {1 - settings.test_size:.0%}/{settings.test_size:.0%} split was drawn "
        f"(seed {settings.seed})",
    )


def score(truth: np.ndarray, predicted: dict[str, np.ndarray], settings: ProbeSettings) -> dict[str, Any]:
    """Each probe's classification report with a bootstrap interval of its macro-F1."""
    results = {}
    for name, pred in predicted.items():
        report = classification_report(truth, pred)
        report["macro_f1_ci"] = bootstrap_macro_f1(truth, pred, settings.bootstrap, settings.seed)
        results[name] = report
    return results


def hyper_words(result: dict[str, Any]) -> str:
    """'C = 16 (3-fold CV)' for a probe result that records its C (or k); '' when it records neither."""
    for name in ("C", "k"):
        if name in result:
            return choice_words(result[name], name)
    return ""


def measure_leakage(
    truth: np.ndarray,
    predicted: dict[str, np.ndarray],
    nearest_cos: np.ndarray,
    full: dict[str, ProbeScores],
    settings: ProbeSettings,
) -> Leakage:
    """Near-duplicate leakage: test rows whose nearest training row (``nearest_cos``) is at
    ``settings.near_dup`` or above are twins; each probe's predictions (``predicted``: 'logistic',
    'knn') are scored again on the rest, and flagged when that lies outside ``full``'s interval."""
    twins = nearest_cos >= settings.near_dup
    clean = ~twins
    scores: dict[str, CleanScores | None] = {"logistic": None, "knn": None}
    if clean.any():
        for name in scores:
            truth_c, pred_c = truth[clean], predicted[name][clean]
            f1 = float(classification_report(truth_c, pred_c)["macro_f1"])
            ci = Interval(**bootstrap_macro_f1(truth_c, pred_c, settings.bootstrap, settings.seed))
            whole = full[name].macro_f1_ci
            scores[name] = CleanScores(int(clean.sum()), f1, ci, not whole.low <= f1 <= whole.high)
    flagged = any(s.outside for s in scores.values() if s is not None)
    return Leakage(
        settings.near_dup, int(twins.sum()), len(truth), scores["logistic"], scores["knn"], flagged
    )
