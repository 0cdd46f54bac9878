"""The embedding probes' logistic regression reaches scikit-learn's optimum, from zero or warm-started."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression

from pipeline.logistic import LogisticProblem, fit_logistic
from tests.test_probe_models import clusters


def objective(x: np.ndarray, codes: np.ndarray, coef: np.ndarray, intercept: np.ndarray, C: float) -> float:
    """scikit-learn's multinomial objective: mean log-loss + ||W||^2 / (2 C n)."""
    logits = x.astype(np.float64) @ coef + intercept
    rows = len(codes)
    loss = logsumexp(logits, axis=1) - logits[np.arange(rows), codes]
    return float(loss.mean() + (coef**2).sum() / (2 * C * rows))


def sklearn_optimum(x: np.ndarray, y: np.ndarray, C: float) -> LogisticRegression:
    return LogisticRegression(C=C, solver="newton-cg", tol=1e-10, max_iter=1000).fit(x.astype(np.float64), y)


@pytest.mark.parametrize("C", [0.25, 4.0, 64.0])
def test_the_fit_is_scikit_learns_optimum(C):
    x, y = clusters(900, 0)
    test_x, _ = clusters(600, 1)
    model, reference = fit_logistic(x, y, C), sklearn_optimum(x, y, C)
    codes = np.searchsorted(model.classes, y)
    ours = objective(x, codes, model.coef, model.intercept, C)
    theirs = objective(x, codes, reference.coef_.T, reference.intercept_, C)
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert np.mean(model.predict(test_x) == reference.predict(test_x)) >= 0.995


def test_two_classes_match_scikit_learns_binomial_model():
    """scikit-learn fits one vector for two classes; its C is twice a two-column softmax's."""
    x, y = clusters(600, 2, classes=2)
    test_x, _ = clusters(400, 3, classes=2)
    for C in (0.25, 16.0):
        model, reference = fit_logistic(x, y, C), sklearn_optimum(x, y, C)
        margin = model.decision(test_x) @ np.array([-1.0, 1.0])
        assert np.corrcoef(margin, reference.decision_function(test_x))[0, 1] > 0.9999
        assert np.allclose(margin, reference.decision_function(test_x), rtol=1e-2, atol=1e-2)


def test_a_warm_start_runs_to_its_own_optimum_not_the_previous_cs():
    x, y = clusters(900, 4)
    problem = LogisticProblem(x, y)
    codes = problem.codes
    weak = problem.fit(1.0)
    warm, cold = problem.fit(64.0, start=weak), problem.fit(64.0)
    reference = sklearn_optimum(x, y, 64.0)
    optimum = objective(x, codes, reference.coef_.T, reference.intercept_, 64.0)
    at_64 = [objective(x, codes, m.coef, m.intercept, 64.0) for m in (weak, warm, cold)]
    assert at_64[1] == pytest.approx(optimum, rel=1e-5) and at_64[2] == pytest.approx(optimum, rel=1e-5)
    assert at_64[0] > optimum + 1e-3  # the C = 1 model is far from the C = 64 optimum: the start moved
    assert warm.iterations > 0


def test_one_class_is_a_clear_error():
    with pytest.raises(ValueError, match="two classes"):
        LogisticProblem(np.ones((5, 3), np.float32), np.array(["a"] * 5))


def test_the_folds_average_is_a_start_only_when_their_classes_line_up():
    from pipeline.logistic import average_model

    x, y = clusters(600, 5)
    folds = [LogisticProblem(x[part], y[part]).fit(4.0) for part in (slice(0, 300), slice(300, 600))]
    start = average_model(folds)
    assert start is not None and np.allclose(start.coef, (folds[0].coef + folds[1].coef) / 2)
    problem = LogisticProblem(x, y)
    assert np.array_equal(problem.fit(4.0, start=start).predict(x), problem.fit(4.0).predict(x))
    short = LogisticProblem(x[y != "c0"], y[y != "c0"]).fit(4.0)  # a fold that never saw class c0
    assert average_model([folds[0], short]) is None
    # a start with other classes is ignored, not misread column by column
    assert np.array_equal(problem.fit(4.0, start=short).predict(x), problem.fit(4.0).predict(x))
