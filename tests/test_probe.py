"""Probes: kNN via FAISS equals brute force, splits follow the corpus, the stage writes what it says."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import EncajesError
from pipeline.stages.probe.stage import ProbeSettings, choose_split, knn_predict


def brute_force_knn(train_x, train_y, test_x, k):
    sims = test_x @ train_x.T
    out = []
    for row in sims:
        top = np.argsort(-row, kind="stable")[:k]
        votes = {}
        for j in top:
            votes[train_y[j]] = votes.get(train_y[j], 0.0) + row[j]
        best = max(votes.values())
        out.append(min(label for label, v in votes.items() if np.isclose(v, best)))
    return np.array(out)


def test_knn_via_faiss_equals_brute_force():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 16))
    train_y = rng.integers(0, 4, 300)
    test_y = rng.integers(0, 4, 80)
    train_x = centers[train_y] + rng.standard_normal((300, 16))
    test_x = centers[test_y] + rng.standard_normal((80, 16))
    train_x /= np.linalg.norm(train_x, axis=1, keepdims=True)
    test_x /= np.linalg.norm(test_x, axis=1, keepdims=True)
    labels = np.array(["a", "b", "c", "d"])
    got = knn_predict(train_x.astype(np.float32), labels[train_y], test_x.astype(np.float32), k=10)
    np.testing.assert_array_equal(got, brute_force_knn(train_x, labels[train_y], test_x, 10))
    assert (got == labels[test_y]).mean() > 0.5  # the clusters are learnable


def corpus(splits, labels):
    return pd.DataFrame({"row_id": range(len(labels)), "label": labels, "split": splits})


def test_split_uses_train_and_test_and_optionally_val():
    frame = corpus(["train", "train", "val", "test", "test", "train"], ["a", "b", "a", "b", None, "a"])
    train, test, how = choose_split(frame, ProbeSettings())
    assert train.tolist() == [True, True, False, False, False, True] and how == "train -> test"
    assert test.tolist() == [False, False, False, True, False, False]  # unlabelled rows are left out
    train, _, how = choose_split(frame, ProbeSettings(include_val=True))
    assert train[2] and how == "train + val -> test"


def test_without_splits_a_seeded_stratified_80_20():
    frame = corpus([None] * 100, ["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    train, test, how = choose_split(frame, ProbeSettings(seed=1))
    again, _, _ = choose_split(frame, ProbeSettings(seed=1))
    assert test.sum() == 20 and (train ^ test).all() and "stratified" in how
    assert frame.label[test].value_counts().to_dict() == {"a": 10, "b": 6, "c": 4}
    assert (train == again).all()


def test_train_without_test_is_a_clear_error():
    with pytest.raises(EncajesError, match="no 'test' split"):
        choose_split(corpus(["train"] * 4, ["a", "b", "a", "b"]), ProbeSettings())


def test_probe_stage_numbers_match_sklearn_on_saved_embeddings(tmp_path, sample_csv, tiny_model):
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    from pipeline import Workspace
    from pipeline.stages.probe.stage import probe_run

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    run_dir = ws.embed(model=str(tiny_model), progress=False).run_dir
    report = probe_run(tmp_path / "w", str(tiny_model), settings=ProbeSettings(bootstrap=200))
    saved = torch.load(run_dir / "embeddings.pt", weights_only=True)
    frame = ws.corpus
    train, test = (frame.split == "train").to_numpy(), (frame.split == "test").to_numpy()
    x = saved["embeddings"].numpy()
    pred = LogisticRegression(C=1.0, max_iter=1000).fit(x[train], frame.label[train]).predict(x[test])
    assert report.logistic.macro_f1 == pytest.approx(f1_score(frame.label[test], pred, average="macro"))
    written = json.loads((run_dir / "probe.json").read_text())
    assert written["logistic"]["macro_f1"] == report.logistic.macro_f1
    predictions = pd.read_parquet(run_dir / "predictions.parquet")
    assert predictions["row_id"].tolist() == frame.row_id[test].tolist()
    assert (run_dir / "confusion.png").stat().st_size > 1000
    assert probe_run(tmp_path / "w", str(tiny_model), settings=ProbeSettings(bootstrap=200)).skipped


def test_a_corpus_too_small_to_stratify_gets_a_random_split():
    frame = corpus([None] * 4, ["a", "a", "b", "b"])  # 1 test row cannot hold both classes
    train, test, how = choose_split(frame, ProbeSettings())
    assert test.sum() == 1 and train.sum() == 3 and how.startswith("no split in the corpus: a random")
