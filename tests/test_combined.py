"""The combined probe (TF-IDF + a run's embeddings in one logistic regression), the TF-IDF cache the
baselines and it share, and the TF-IDF baseline's throughput.

The corpus is built so each half of the label lives in one block only: a marker word decides one bit,
a direction of the embeddings the other. Each block alone gets one bit; only both together get both."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline import Workspace
from pipeline.core.layout import Workdir
from pipeline.core.settings import ProbeSettings
from pipeline.stages.probe.baseline_stage import baselines
from pipeline.stages.probe.baselines import tfidf_baseline, tfidf_predict, tfidf_set
from pipeline.stages.probe.combined import block_scale, combine, mean_row_norm
from pipeline.stages.probe.combined_stage import combined_run
from pipeline.stages.probe.estimators import Choice, inner_folds
from pipeline.stages.probe.stage import probe_run
from pipeline.stages.probe.tfidf_cache import SplitTexts, corpus_tfidf
from tests.conftest import WORDS, write_csv, write_vectors_run

MODEL = "synthetic/vectors"
SETTINGS = ProbeSettings(cv_folds=3, seed=0, bootstrap=100)
FILLER = [word for word in WORDS if word not in ("verano", "invierno")]


def two_bit_corpus(n: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, labels and unit vectors: the word 'verano'/'invierno' is one bit, the sign of the
    vectors' first coordinate the other; the label is the pair."""
    rng = np.random.default_rng(seed)
    word, direction = rng.integers(0, 2, n), rng.integers(0, 2, n)
    texts = [
        f"{'verano' if w else 'invierno'} {' '.join(rng.choice(FILLER, 5))} {i}" for i, w in enumerate(word)
    ]
    vectors = rng.standard_normal((n, 16)) * 0.5
    vectors[:, 0] += 3.0 * (2 * direction - 1)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array([f"{'vw'[w]}{'+-'[d]}" for w, d in zip(word, direction, strict=True)])
    return texts, labels, vectors.astype(np.float32)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("combined")
    texts, labels, vectors = two_bit_corpus(360, 0)
    splits = ["train"] * 240 + ["test"] * 120
    rows = [(f"r{i}", t, lab, s) for i, (t, lab, s) in enumerate(zip(texts, labels, splits, strict=True))]
    ws = Workspace(root / "w")
    ws.ingest([write_csv(root / "tweets.csv", rows)])
    assert ws.corpus["id"].tolist() == [row[0] for row in rows]  # the vectors are in row order
    write_vectors_run(root / "w", vectors, MODEL)
    return root / "w"


@pytest.fixture(scope="module")
def stages(workdir):
    combined = combined_run(workdir, MODEL, "mean", SETTINGS)  # first: it builds the TF-IDF cache
    return combined, baselines(workdir, SETTINGS), probe_run(workdir, MODEL, "mean", SETTINGS)


def test_combined_beats_each_block_alone(stages):
    combined, base, probe = stages
    tfidf_f1, run_f1 = base.results["tfidf"]["macro_f1"], probe.logistic.macro_f1
    assert max(tfidf_f1, run_f1) < 0.7  # each block knows one bit of two
    assert combined.result.macro_f1 > max(tfidf_f1, run_f1) + 0.25
    assert combined.result.C is not None and combined.result.C.tuned


def test_predictions_align_with_the_probe_and_the_baselines(stages):
    combined, base, probe = stages
    ours = pd.read_parquet(combined.predictions)
    assert list(ours.columns) == ["row_id", "label", "combined"]
    for other in (pd.read_parquet(probe.predictions), pd.read_parquet(base.predictions)):
        assert ours["row_id"].tolist() == other["row_id"].tolist()
        assert ours["label"].tolist() == other["label"].tolist()


def test_the_scales_bring_both_blocks_to_mean_training_norm_one(stages, workdir):
    combined = stages[0]
    (cached,) = Workdir.at(workdir).tfidf_caches()
    import scipy.sparse as sp

    tfidf_train = sp.load_npz(cached / "train.npz")
    assert mean_row_norm(tfidf_train) == pytest.approx(np.sqrt(2), abs=0.01)  # two unit blocks
    assert combined.scales.tfidf == pytest.approx(block_scale(tfidf_train))
    assert combined.scales.embeddings == pytest.approx(1.0, abs=1e-5)  # unit vectors already
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((30, 8)) * 3.0
    fit, held, scales = combine(tfidf_train[:30], tfidf_train[30:40], emb, emb[:10])
    assert mean_row_norm(fit[:, : tfidf_train.shape[1]]) == pytest.approx(1.0)
    assert mean_row_norm(fit[:, tfidf_train.shape[1] :]) == pytest.approx(1.0)
    assert held.shape == (10, tfidf_train.shape[1] + 8) and scales.embeddings < 0.5


def test_the_json_holds_the_report_its_C_and_scales(stages):
    combined = stages[0]
    written = json.loads(combined.combined.read_text(encoding="utf-8"))
    for key in ("macro_f1", "macro_f1_ci", "accuracy", "per_class", "confusion", "labels", "seconds"):
        assert key in written
    assert Choice.from_dict(written["C"]) == combined.result.C
    assert written["scales"] == combined.scales.to_dict()
    assert written["C"]["grid"] and written["seconds"] >= 0


def test_a_rerun_is_fresh_and_a_forced_one_gives_the_same_numbers(stages, workdir):
    combined = stages[0]
    before = pd.read_parquet(combined.predictions)
    again = combined_run(workdir, MODEL, "mean", SETTINGS)
    assert again.skipped and again.result == combined.result and again.scales == combined.scales
    assert again.lines()[1:] == combined.lines()[1:]
    forced = combined_run(workdir, MODEL, "mean", SETTINGS, force=True)
    assert not forced.skipped and forced.result == combined.result
    assert pd.read_parquet(combined.predictions).equals(before)


def test_cached_tfidf_gives_the_baseline_its_uncached_predictions_and_a_throughput(stages, workdir):
    base = stages[1]
    corpus = Workspace(workdir).corpus
    train, test = (corpus["split"] == "train").to_numpy(), (corpus["split"] == "test").to_numpy()
    texts, y = corpus["text"].to_numpy(), corpus["label"].astype(str).to_numpy()
    expected, C = tfidf_predict(list(texts[train]), y[train], list(texts[test]), None, 3, 0, 1000)
    written = pd.read_parquet(base.predictions)
    assert written["tfidf"].tolist() == list(expected)
    tfidf = json.loads(base.baselines.read_text(encoding="utf-8"))["results"]["tfidf"]
    assert Choice.from_dict(tfidf["C"]) == C
    assert tfidf["texts_per_second"] > 0 and tfidf["features"] > 10


def test_the_cache_is_read_again_and_rebuilt_for_other_settings_or_damage(workdir, tmp_path, monkeypatch):
    import pipeline.stages.probe.tfidf_cache as cache

    corpus = Workspace(workdir).corpus
    train, test = (corpus["split"] == "train").to_numpy(), (corpus["split"] == "test").to_numpy()
    texts, y = corpus["text"].to_numpy(), corpus["label"].astype(str).to_numpy()
    split = SplitTexts(list(texts[train]), y[train], list(texts[test]))
    work, built = Workdir.at(tmp_path), []  # a workdir of its own: the cache only
    monkeypatch.setattr(cache, "tfidf_set", lambda *args: built.append(1) or tfidf_set(*args))
    first = corpus_tfidf(work, "hash", split, SETTINGS)
    again = corpus_tfidf(work, "hash", split, SETTINGS)
    assert len(built) == 1 and (again.full.train != first.full.train).nnz == 0
    assert len(again.folds) == 3 and again.full.transform_seconds == first.full.transform_seconds
    corpus_tfidf(work, "another corpus", split, SETTINGS)
    corpus_tfidf(work, "another corpus", split, ProbeSettings(cv_folds=4, seed=0, bootstrap=100))
    assert len(built) == 3 and len(Workdir.at(tmp_path).tfidf_caches()) == 1  # stale removed
    (Workdir.at(tmp_path).tfidf_caches()[0] / "fold0-fit.npz").write_bytes(b"damaged")
    corpus_tfidf(work, "another corpus", split, ProbeSettings(cv_folds=4, seed=0, bootstrap=100))
    assert len(built) == 4


def test_fold_matrices_learn_their_vocabulary_from_the_fold_rows_only():
    texts, labels, _ = two_bit_corpus(60, 2)
    texts[0] = "palabraunica palabraunica otra"
    splits = inner_folds(labels, 3, 0)
    built = tfidf_set(texts, ["prueba"], splits)
    for fold in built.folds:  # a fold without row 0 knows fewer terms than one with it
        assert fold.matrices.train.shape[0] == len(fold.rows)
        assert fold.matrices.test.shape == (len(fold.held), fold.matrices.train.shape[1])
    with pytest.raises(ValueError):
        built.fold(splits[0][1], splits[0][0])
    outcome = tfidf_baseline(built, labels, None, 3, 0, 1000)
    assert outcome.choice.tuned and outcome.features == built.features and len(outcome.predicted) == 1
