"""Multinomial L2 logistic regression on dense embeddings, pure: scikit-learn's objective, a faster path.

Why not scikit-learn's own solvers: unit-norm sentence embeddings are badly conditioned (one shared
direction, a fast-decaying spectrum), so at the weak regularisation that probes need (C of 16-64) ``lbfgs``
takes hundreds of iterations and ``newton-cg`` hundreds of conjugate-gradient steps. Here the same
objective, ``mean log-loss + ||W||^2 / (2 C n)`` with an unpenalised intercept, is minimised by scipy's
L-BFGS in preconditioned coordinates: the features are centred (the intercept absorbs the mean, so the
optimum is unchanged) and each class's weights are scaled by ``(c_k S + 1/(C n))^-1/2`` in the
eigenbasis ``S`` of the feature covariance, ``c_k`` its softmax curvature at the class prior.

It stops on a certificate, not on a small gradient: the duality gap at the softmax probabilities,
``||grad_W||^2 / (2 penalty)``, bounds how far the objective is above the optimum whatever the
conditioning once the intercept is at its best for the weights; the intercept's Newton decrement is
added for the way it is not. Their sum must fall under ``tol`` times what the features explain
(``_learnt``).
A small gradient alone does not bound that: where the data are nearly separable, or the problem is
large, a fit started from another C's solution has a gradient under any fixed tolerance while still far
from its own optimum. A fit that float32 precision stops short of the certificate says so
(``LogisticModel.converged``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TOL = 1e-4  # duality gap / what the features explain: the predictions of a tight fit (tests, README)
MAX_ITER = 1000


@dataclass(frozen=True)
class LogisticModel:
    """A fitted probe: ``argmax(x @ coef + intercept)`` over ``classes``."""

    classes: np.ndarray
    coef: np.ndarray  # (dim, classes), float64
    intercept: np.ndarray  # (classes,)
    iterations: int = 0
    converged: bool = True  # the duality gap reached its tolerance (else scipy stopped making progress)

    def decision(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef + self.intercept

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes[np.argmax(self.decision(x), axis=1)]


class LogisticProblem:
    """One training set, fitted at as many Cs as asked: the centring and the eigenbasis are shared."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.classes, self.codes = np.unique(y, return_inverse=True)
        if len(self.classes) < 2:
            raise ValueError(f"logistic regression needs two classes; the rows hold {len(self.classes)}")
        x = np.asarray(x, dtype=np.float32)  # float64 reaches the same optimum at twice the cost
        self.rows, self.dim = x.shape
        self.mean = x.mean(axis=0, dtype=np.float64)
        # Fortran order: both products of a step (X W and X^T P) run faster on it than on C order
        self.centred = np.empty(x.shape, dtype=np.float32, order="F")
        np.subtract(x, self.mean.astype(np.float32), out=self.centred)
        covariance = (self.centred.T @ self.centred).astype(np.float64) / self.rows
        spectrum, self.basis = np.linalg.eigh(covariance)
        self.spectrum = np.clip(spectrum, 0.0, None)
        self.prior = np.bincount(self.codes, minlength=len(self.classes)) / self.rows
        self.curvature = np.maximum(self.prior * (1.0 - self.prior), 1e-6)
        # the objective knowing the prior only
        self.prior_entropy = float(-np.sum(self.prior * np.log(self.prior)))

    def _learnt(self, objective: float) -> float:
        """How far the objective is below the prior-only model's: what the features explain, the scale
        the gap is measured against. Strong regularisation leaves little learnt and tiny margins between
        classes, where a gap relative to the whole objective flipped predictions; the floor keeps
        features that explain nothing from asking for more than float32 can give."""
        return max(self.prior_entropy - objective, 1e-3 * abs(objective))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def _penalty(self, C: float) -> float:
        """1/(C n) on the mean loss; two classes fit scikit-learn's single binomial vector, whose C is
        twice a two-column softmax's (the penalty splits the vector between the columns)."""
        return 1.0 / ((C / 2.0 if self.n_classes == 2 else C) * self.rows)

    def fit(
        self, C: float, start: LogisticModel | None = None, tol: float = TOL, max_iter: int = MAX_ITER
    ) -> LogisticModel:
        """The optimum at C, from zero or from ``start`` (a model of the same classes: another C's, or
        the average of the cross-validation folds' at this C)."""
        from scipy.optimize import minimize

        penalty = self._penalty(C)
        scale = 1.0 / np.sqrt(self.curvature[None, :] * self.spectrum[:, None] + penalty)  # eigenbasis
        bias_scale = 1.0 / np.sqrt(self.curvature)
        objective = _Objective(self, penalty, scale, bias_scale)
        theta = np.zeros(self.dim * self.n_classes + self.n_classes)
        if start is not None and np.array_equal(start.classes, self.classes):
            theta = objective.to_theta(start)

        threshold = lambda value: tol * self._learnt(value)  # noqa: E731
        certified: list[np.ndarray] = []  # the best intercept at the point the run stopped on

        def stop_when_certified(intermediate_result: Any) -> None:
            theta, value = intermediate_result.x, intermediate_result.fun
            if objective.gap_at(theta) > threshold(value):  # a quick screen; the certificate is dearer
                return
            gap, best_bias = objective.certify(theta)
            if gap <= threshold(value):
                certified.append(best_bias)
                raise StopIteration  # scipy ends the run and returns this point

        found = minimize(
            objective,
            theta,
            jac=True,
            method="L-BFGS-B",
            callback=stop_when_certified,  # scipy's own gradient and decrease tests switched off
            options={"gtol": 0.0, "ftol": 0.0, "maxiter": max_iter, "maxcor": 20},
        )
        coef, _ = objective.weights(found.x)
        converged = bool(certified)
        if converged:
            centred_intercept = certified[-1]
        else:  # max_iter, or float32 precision left scipy no decrease to find
            gap, centred_intercept = objective.certify(found.x)
            converged = gap <= threshold(found.fun)
        intercept = centred_intercept - self.mean @ coef
        return LogisticModel(self.classes, coef, intercept, int(found.nit), converged)


class _Objective:
    """Loss and gradient in preconditioned coordinates ``theta`` = (V, c): W = U (scale * (U^T V))."""

    def __init__(self, problem: LogisticProblem, penalty: float, scale: np.ndarray, bias_scale: np.ndarray):
        self.problem, self.penalty, self.scale, self.bias_scale = problem, penalty, scale, bias_scale
        self.probabilities = np.empty((problem.rows, problem.n_classes), dtype=problem.centred.dtype)
        self.row_index = np.arange(problem.rows)
        self.last: tuple[np.ndarray, float] | None = None  # (theta, gap) of the last evaluation

    def gap_at(self, theta: np.ndarray) -> float:
        """A quick estimate of how far the objective is above the optimum, from the last evaluation:
        ||grad_W||^2 / (2 penalty) plus the intercept's Newton decrement. Below the tolerance it calls
        ``certify``; above it, the fit is not done either way."""
        if self.last is None or not np.array_equal(self.last[0], theta):
            self(theta)  # scipy calls back at a point it has just evaluated, so this rarely runs
        assert self.last is not None
        return self.last[1]

    def certify(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """A bound on how far the objective is above the optimum, and the best intercept for these
        weights. With the intercept at its best b*, the duality gap at the softmax probabilities is
        ||grad_W(W, b*)||^2 / (2 penalty); the intercept adds P(W, b) - P(W, b*)."""
        p = self.problem
        weights, bias = self.weights(theta)
        scores = (p.centred @ weights.astype(p.centred.dtype)).astype(np.float64)
        best, best_loss, loss, residual = _best_intercept(scores, p.codes, p.prior, bias)
        residual[self.row_index, p.codes] -= 1.0
        grad_w = (p.centred.T @ residual.astype(p.centred.dtype)).astype(np.float64) / p.rows
        grad_w += self.penalty * weights
        return max(loss - best_loss, 0.0) + float(np.sum(grad_w**2)) / (2 * self.penalty), best

    def _precondition(self, v: np.ndarray) -> np.ndarray:
        basis = self.problem.basis
        return basis @ (self.scale * (basis.T @ v))

    def weights(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(W, b) in centred coordinates."""
        p = self.problem
        v = theta[: p.dim * p.n_classes].reshape(p.dim, p.n_classes)
        return self._precondition(v), theta[p.dim * p.n_classes :] * self.bias_scale

    def to_theta(self, model: LogisticModel) -> np.ndarray:
        basis = self.problem.basis
        v = basis @ ((basis.T @ model.coef) / self.scale)
        centred_intercept = model.intercept + self.problem.mean @ model.coef
        return np.concatenate([v.ravel(), centred_intercept / self.bias_scale])

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        p, probs, rows = self.problem, self.probabilities, self.row_index
        weights, bias = self.weights(theta)
        dtype = p.centred.dtype
        logits = p.centred @ weights.astype(dtype)
        logits += bias.astype(dtype)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=probs)
        sums = probs.sum(axis=1, dtype=np.float64)
        loss = float(np.mean(np.log(sums) - logits[rows, p.codes]))
        loss += 0.5 * self.penalty * float(np.sum(weights**2))
        probs /= sums[:, None].astype(dtype)
        bias_hessian = _intercept_hessian(probs)  # for the Newton decrement in the gap
        probs[rows, p.codes] -= 1.0
        grad_w = (p.centred.T @ probs).astype(np.float64) / p.rows + self.penalty * weights
        grad_b = probs.sum(axis=0, dtype=np.float64) / p.rows
        bias_decrement = float(grad_b @ np.linalg.pinv(bias_hessian, hermitian=True) @ grad_b) / 2
        gap = float(np.sum(grad_w**2)) / (2 * self.penalty) + bias_decrement
        self.last = (theta.copy(), gap)
        return loss, np.concatenate([self._precondition(grad_w).ravel(), grad_b * self.bias_scale])


def _loss_and_probabilities(logits: np.ndarray, codes: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean log-loss and softmax of ``logits`` (float64), from one exponential."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    sums = probs.sum(axis=1)
    probs /= sums[:, None]
    return float(np.mean(np.log(sums) - shifted[np.arange(len(codes)), codes])), probs


def _intercept_hessian(probs: np.ndarray) -> np.ndarray:
    """The mean log-loss's Hessian in the intercept, mean(diag(p) - p p^T), in float64."""
    hessian = np.diag(probs.mean(axis=0, dtype=np.float64))
    hessian -= (probs.T @ probs).astype(np.float64) / len(probs)
    return hessian


def _best_intercept(
    scores: np.ndarray, codes: np.ndarray, prior: np.ndarray, bias: np.ndarray, steps: int = 30
) -> tuple[np.ndarray, float, float, np.ndarray]:
    """The intercept that minimises the mean log-loss of ``scores + b`` (the penalty does not touch
    it), by damped Newton steps from ``bias``: a K-variable problem, solved in float64. Returns it,
    the loss there, the loss at ``bias``, and the softmax there."""
    start_loss, probs = _loss_and_probabilities(scores + bias, codes)
    loss = start_loss
    for _ in range(steps):
        grad = probs.mean(axis=0) - prior
        if np.abs(grad).max() < 1e-10:
            break
        step = np.linalg.pinv(_intercept_hessian(probs), hermitian=True) @ grad
        for _ in range(30):  # halve the step until the loss goes down
            trial_loss, trial_probs = _loss_and_probabilities(scores + bias - step, codes)
            if trial_loss <= loss:
                bias, loss, probs = bias - step, trial_loss, trial_probs
                break
            step = step / 2
        else:
            break
    return bias, loss, start_loss, probs


def fit_logistic(
    x: np.ndarray, y: np.ndarray, C: float, tol: float = TOL, max_iter: int = MAX_ITER
) -> LogisticModel:
    """scikit-learn's ``LogisticRegression(C=C)`` optimum (multinomial; binomial for two classes)."""
    return LogisticProblem(x, y).fit(C, tol=tol, max_iter=max_iter)


def average_model(models: list[LogisticModel]) -> LogisticModel | None:
    """The mean of models fitted on overlapping rows (cross-validation folds), a start for the fit on
    all of them; None when a fold lacked a class, so their columns do not line up."""
    if not models or any(not np.array_equal(m.classes, models[0].classes) for m in models):
        return None
    coef = np.mean([m.coef for m in models], axis=0)
    return LogisticModel(models[0].classes, coef, np.mean([m.intercept for m in models], axis=0))
