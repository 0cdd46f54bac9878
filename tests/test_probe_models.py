"""Tuned probes: C and k are chosen by inner cross-validation on the training rows only, seeded, and the
reported figure is what scikit-learn gives when refitted at the chosen C."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from pipeline.stages.probe.baselines import majority_predict, tfidf_predict
from pipeline.stages.probe.estimators import (
    C_GRID,
    EmbeddingFit,
    choose_k,
    knn_tuned_predict,
    logistic_predict,
    search_C,
)


def clusters(n: int, seed: int, classes: int = 6, dim: int = 32, spread: float = 0.1, noise: float = 0.2):
    """Unit-norm points like sentence embeddings: one large shared direction, small class offsets, so a
    strongly regularised probe underfits (as C = 0.25 does on real embeddings)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((classes, dim)) / np.sqrt(dim)
    y = rng.integers(0, classes, n)
    x = (
        np.ones(dim) / np.sqrt(dim)
        + spread * centres[y]
        + noise * rng.standard_normal((n, dim)) / np.sqrt(dim)
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.array([f"c{i}" for i in y])


def test_tuned_C_is_the_refit_of_scikit_learn_and_beats_a_strongly_regularised_fixed_C():
    x, y = clusters(900, 0)
    test_x, test_y = clusters(600, 1)
    tuned, choice = logistic_predict(x, y, test_x, None, folds=3, seed=0)
    assert choice.tuned and choice.value in C_GRID and len(choice.cv_macro_f1) == len(C_GRID)
    assert choice.value == C_GRID[int(np.argmax(choice.cv_macro_f1))]
    refit_params = EmbeddingFit().params(choice.value)
    refit = LogisticRegression(**refit_params, random_state=0).fit(x, y).predict(test_x)
    assert np.mean(tuned == refit) >= 0.995
    assert f1_score(test_y, tuned, average="macro") == pytest.approx(
        f1_score(test_y, refit, average="macro"), abs=0.005
    )
    fixed, fixed_choice = logistic_predict(x, y, test_x, 0.25, folds=3, seed=0)
    assert not fixed_choice.tuned and fixed_choice.value == 0.25
    assert choice.value > 0.25  # unit-norm features: the smallest C underfits
    assert f1_score(test_y, tuned, average="macro") > f1_score(test_y, fixed, average="macro")


def test_the_choice_sees_only_the_training_rows_and_is_seeded():
    x, y = clusters(600, 2)
    first = search_C(x, y, folds=3, seed=0)[0]
    assert search_C(x, y, folds=3, seed=0)[0] == first  # same seed, same numbers
    # the test rows are not an argument anywhere: two different test sets give the same choice
    _, a = logistic_predict(x, y, clusters(50, 3)[0], None, 3, 0)
    _, b = logistic_predict(x, y, clusters(80, 4)[0], None, 3, 0)
    assert a == b == first


def test_k_is_chosen_by_cross_validation_and_a_given_k_is_kept():
    x, y = clusters(600, 5, noise=0.4)
    choice = choose_k(x, y, folds=3, seed=0)
    assert choice.tuned and choice.value == choice.grid[int(np.argmax(choice.cv_macro_f1))]
    assert choice.value > 1  # noisy clusters: one neighbour is the worst vote
    _, kept = knn_tuned_predict(x, y, x[:10], 7, 3, 0)
    assert kept.value == 7 and not kept.tuned


def test_too_few_rows_to_cross_validate_fall_back_to_the_fixed_protocol():
    x, y = clusters(5, 6, classes=3)
    predicted, choice = logistic_predict(x, y, x, None, folds=3, seed=0)
    assert not choice.tuned and choice.value == 1.0 and len(predicted) == 5


def test_majority_and_tfidf_baselines():
    assert list(majority_predict(np.array(["b", "a", "b", "c"]), 3)) == ["b", "b", "b"]
    texts = ["me encanta la playa", "odio los lunes", "la playa y el sol", "lunes otra vez, qué pereza"] * 10
    labels = np.array(["sol", "lunes", "sol", "lunes"] * 10)
    predicted, choice = tfidf_predict(texts, labels, ["sol y playa", "otro lunes"], None, 3, 0, 1000)
    assert list(predicted) == ["sol", "lunes"] and choice.tuned


def test_every_grid_score_is_that_of_its_own_C():
    """Each fold's grid is one warm-started chain: a chain that stopped at once would score the previous
    C again. Each score is scikit-learn's from-scratch fit's, within half a point of macro-F1."""
    from pipeline.stages.probe.estimators import inner_folds

    x, y = clusters(600, 7)
    choice = search_C(x, y, folds=3, seed=0)[0]
    for C, score in zip(choice.grid, choice.cv_macro_f1, strict=True):
        folds = []
        for fit, held in inner_folds(y, 3, 0):
            model = LogisticRegression(**EmbeddingFit().params(C), random_state=0).fit(x[fit], y[fit])
            folds.append(f1_score(y[held], model.predict(x[held]), average="macro"))
        assert score == pytest.approx(np.mean(folds), abs=0.005), C
    assert len(set(choice.cv_macro_f1)) > 2  # the grid's points are really different models


def test_how_a_value_was_set_reads_right():
    from pipeline.stages.probe.estimators import choice_words

    tuned = search_C(*clusters(600, 8), folds=3, seed=0)[0].to_dict()
    assert choice_words(tuned, "C").startswith(f"C = {tuned['value']:g} (3-fold CV")
    _, fallback = logistic_predict(*clusters(5, 6, classes=3), clusters(5, 6, classes=3)[0], None, 3, 0)
    assert choice_words(fallback.to_dict()) == "1 (default: too few rows to tune)"
    _, fixed = logistic_predict(*clusters(50, 6), clusters(5, 6)[0], 2.0, 3, 0)
    assert choice_words(fixed.to_dict()) == "2 (fixed)"


def test_the_tfidf_baseline_learns_each_folds_vocabulary_from_its_fitted_rows_only(monkeypatch):
    import pipeline.stages.probe.baselines as baselines

    fitted_on: list[tuple[set[str], set[str]]] = []
    real = baselines.tfidf_features

    def spy(train_texts, test_texts):
        fitted_on.append((set(train_texts), set(test_texts)))
        return real(train_texts, test_texts)

    monkeypatch.setattr(baselines, "tfidf_features", spy)
    texts = [f"texto {i} {'sol playa' if i % 2 else 'lunes lluvia'}" for i in range(60)]
    labels = np.array(["sol" if i % 2 else "lunes" for i in range(60)])
    baselines.tfidf_predict(texts, labels, ["sol y playa"], None, 3, 0, 1000)
    folds, final = fitted_on[:-1], fitted_on[-1]
    assert len(folds) == 3 and all(not (fit & held) for fit, held in folds)  # never fitted on held-out rows
    assert final == (set(texts), {"sol y playa"})  # the final model: every training row


def test_the_probes_leave_the_blas_thread_count_as_they_found_it():
    """The fits limit BLAS to one thread a job; the limit is process-wide, so it must be undone."""
    from threadpoolctl import threadpool_info

    from pipeline.core.settings import ProbeSettings
    from pipeline.stages.probe.stage import fit_probes

    before = [pool["num_threads"] for pool in threadpool_info()]
    x, y = clusters(600, 9)
    fit_probes(x, y, clusters(100, 10)[0], ProbeSettings())
    assert [pool["num_threads"] for pool in threadpool_info()] == before
