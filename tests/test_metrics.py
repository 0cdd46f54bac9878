"""Probe metrics equal scikit-learn's on the same predictions; bootstrap intervals behave."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from pipeline.stages.probe.metrics import bootstrap_macro_f1, classification_report, paired_bootstrap


@pytest.fixture
def predictions():
    rng = np.random.default_rng(3)
    labels = np.array(["❤", "😂", "😢", "🔥", "✨"])
    y_true = labels[rng.integers(0, 4, 400)]  # ✨ never true ...
    y_pred = np.where(rng.random(400) < 0.6, y_true, labels[rng.integers(0, 5, 400)])  # ... but predicted
    y_pred[y_true == "😢"] = "❤"  # and 😢 never predicted
    return y_true, y_pred


def test_report_equals_scikit_learn(predictions):
    y_true, y_pred = predictions
    report = classification_report(y_true, y_pred)
    assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert report["weighted_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="weighted", zero_division=0)
    )
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    labels = report["labels"]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    for i, label in enumerate(labels):
        got = report["per_class"][label]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i])
        )
    assert report["confusion"] == confusion_matrix(y_true, y_pred, labels=labels).tolist()


def test_bootstrap_is_seeded_and_brackets_the_estimate(predictions):
    y_true, y_pred = predictions
    first = bootstrap_macro_f1(y_true, y_pred, n_resamples=300, seed=7)
    assert first == bootstrap_macro_f1(y_true, y_pred, n_resamples=300, seed=7)
    assert first != bootstrap_macro_f1(y_true, y_pred, n_resamples=300, seed=8)
    point = classification_report(y_true, y_pred)["macro_f1"]
    assert first["low"] < point < first["high"]


def test_paired_bootstrap_tells_real_from_no_difference(predictions):
    y_true, y_pred = predictions
    same = paired_bootstrap(y_true, y_pred, y_pred, n_resamples=200)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    better = paired_bootstrap(y_true, y_true, y_pred, n_resamples=200)
    assert better["difference"] > 0.2 and better["p_value"] < 0.01 and better["low"] > 0
