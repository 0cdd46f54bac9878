"""The probes' models, pure: arrays in, predictions and the chosen hyper-parameter out.

Logistic regression's C and kNN's k are chosen by stratified inner cross-validation on the training
rows only (SentEval's protocol; CLIP's linear probe sweeps C the same way), scored by macro-F1 like the
test figure; a value that wins on an edge of its grid grows the grid (``grids``), so the choice is an
optimum or says it is not. A fixed value skips the search. Both are seeded, so the same call gives the
same numbers.

Embeddings are fitted by ``logistic`` (scikit-learn's optimum, reached in far fewer steps), one
fold's grid as one chain warm-started from the previous C: it stops on a duality gap, a bound on the
distance to each C's own optimum, so a warm start cannot stop early. Sparse TF-IDF features keep
scikit-learn's solvers, each fold x C fitted from scratch: scikit-learn's tolerance is met at once from
a neighbouring C's solution, so a warm start there would score the previous C again.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any, Protocol

import faiss
import numpy as np

from pipeline.stages.probe.grids import (
    C_REACH,
    EMBEDDING_C_REACH,
    K_REACH,
    Choice,
    Reach,
    extend_to_optimum,
)
from pipeline.stages.probe.grids import choice_words as choice_words  # where reports import it from
from pipeline.stages.probe.logistic import TOL, LogisticModel, LogisticProblem, average_model
from pipeline.stages.probe.metrics import classification_report

C_GRID = (0.25, 1.0, 4.0, 16.0, 64.0)  # unit-norm embeddings need weak regularisation: C >> 1 often wins
K_GRID = (1, 5, 10, 20, 50)
MIN_ROWS_TO_TUNE = 20
FALLBACK_C, FALLBACK_K = 1.0, 10  # when there are too few training rows to cross-validate
TOO_FEW = "too few rows to tune"
MAX_ITER = 1000
ONE_THREAD_BELOW = 1 << 25  # rows x dim: smaller products lose more to BLAS thread wake-ups than they gain


def inner_folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds of the training rows (a class with fewer rows than folds is spread as far as it
    goes); none when the rows are too few, or fewer than two folds leave two classes to fit."""
    from sklearn.model_selection import StratifiedKFold

    if len(y) < MIN_ROWS_TO_TUNE or np.unique(y, return_counts=True)[1].max() < folds:
        return []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        found = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
        usable = [(fit, held) for fit, held in found if len(np.unique(y[fit])) > 1]  # a fit needs 2 classes
    return usable if len(usable) >= 2 else []


def _macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(classification_report(truth, predicted)["macro_f1"])


class Model(Protocol):
    def predict(self, x: Any) -> np.ndarray: ...


Fold = tuple[Any, np.ndarray, Any, np.ndarray]  # (fitted rows' x, their y, held-out x, their y)
Scored = tuple[float, Model | None]  # a grid point's held-out macro-F1, and its model if worth keeping


@dataclass(frozen=True)
class EmbeddingFit:
    """Logistic regressions on dense embeddings (``logistic``) and the Cs inner CV tries.

    The grid's fits stop at ``cv_tol``, a looser duality gap than the final fit's ``tol``: they only rank
    the Cs. The final fit starts from the average of the folds' models at the chosen C."""

    max_iter: int = MAX_ITER
    grid: tuple[float, ...] = C_GRID
    tol: float = TOL
    cv_tol: float = 10 * TOL
    reach: Reach | None = EMBEDDING_C_REACH  # how far the grid grows past a winning edge (None: never)
    # its fits are small matrix products and numpy releases the GIL in them: threads share the folds
    # without copying them to worker processes, each on one BLAS thread (more only add wake-ups)
    backend = "threading"

    def chains(self) -> list[tuple[float, ...]]:
        return [tuple(sorted(self.grid))]  # one warm-started chain per fold, weakest C last

    def chain_scores(
        self, fold: Fold, chain: tuple[float, ...], seed: int, start: Model | None = None
    ) -> list[Scored]:
        """The chain's held-out scores and models, each C warm-started from the one before (the first
        from ``start``: the fold's model at the C a grown grid continues from)."""
        x_fit, y_fit, x_held, y_held = fold
        problem, model, scored = LogisticProblem(x_fit, y_fit), start, []
        for C in chain:
            model = problem.fit(C, start=model, tol=self.cv_tol, max_iter=self.max_iter)
            scored.append((_macro_f1(y_held, model.predict(x_held)), model))
        return scored

    def start(self, models: list[Any]) -> LogisticModel | None:
        return average_model(models)

    def fit(self, x: Any, y: np.ndarray, C: float, seed: int, start: Any = None) -> Model:
        """The fit is deterministic: ``seed`` is for the interface scikit-learn's fits share."""
        small = x.shape[0] * x.shape[1] < ONE_THREAD_BELOW
        with _one_blas_thread() if small else nullcontext():
            model = LogisticProblem(x, y).fit(C, start=start, tol=self.tol, max_iter=self.max_iter)
        if not model.converged:
            warnings.warn(
                f"The logistic probe at C = {C:g} stopped after {model.iterations} iterations before its "
                f"duality gap reached {self.tol:g} of what the features explain (--max-iter, or float32 "
                "precision): its predictions may differ slightly from scikit-learn's refit.",
                stacklevel=2,
            )
        return model

    def params(self, C: float) -> dict[str, Any]:
        """What to pass to scikit-learn's ``LogisticRegression`` to refit the probe at its C: the same
        optimum, reached with a tolerance tight enough to agree with this fit."""
        return {"C": C, "solver": "newton-cg", "tol": 1e-6, "max_iter": self.max_iter}


@dataclass(frozen=True)
class LogisticFit:
    """scikit-learn's logistic regressions (for sparse features) and the Cs inner CV tries."""

    max_iter: int = MAX_ITER
    grid: tuple[float, ...] = C_GRID
    solver: str = "newton-cg"
    tol: float = 1e-4  # scikit-learn's default
    reach: Reach | None = C_REACH
    backend = "loky"  # worker processes: scikit-learn's solvers hold the GIL between steps

    def chains(self) -> list[tuple[float, ...]]:
        return [(C,) for C in self.grid]  # every C from scratch, each a job of its own

    def chain_scores(
        self, fold: Fold, chain: tuple[float, ...], seed: int, start: Model | None = None
    ) -> list[Scored]:
        """Each C fitted from scratch (``start`` is ignored)."""
        x_fit, y_fit, x_held, y_held = fold  # models stay in the worker: TF-IDF ones are large
        return [(_macro_f1(y_held, self.fit(x_fit, y_fit, C, seed).predict(x_held)), None) for C in chain]

    def start(self, models: list[Any]) -> None:
        return None  # scikit-learn's tolerance is met at once from a neighbouring solution

    def fit(self, x: Any, y: np.ndarray, C: float, seed: int, start: Any = None) -> Model:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(
            C=C, solver=self.solver, tol=self.tol, max_iter=self.max_iter, random_state=seed
        )
        with warnings.catch_warnings():  # a fold that stops at max_iter still ranks its C fairly
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            warnings.filterwarnings("ignore", message=".*[Ll]ine [Ss]earch.*")
            return model.fit(x, y)

    def params(self, C: float) -> dict[str, Any]:
        return {"C": C, "solver": self.solver, "max_iter": self.max_iter}


Fitter = EmbeddingFit | LogisticFit


FoldFeatures = Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]  # (fit rows, held rows) -> features


def search_C(
    x: Any,
    y: np.ndarray,
    folds: int,
    seed: int,
    fit: Fitter = EmbeddingFit(),
    features: FoldFeatures | None = None,
) -> tuple[Choice, Any]:
    """The C with the best mean inner-CV macro-F1 (the smallest C among ties: the most regularised), and
    where the final fit may start (``fit.start`` of the folds' models at that C). A C on an edge of the
    grid that wins grows the grid (``fit.reach``), each new C scored on the same folds, an embedding
    fold's chain continued from its model at the edge. The folds x chains are independent, so they run
    in parallel on the machine's cores. ``features`` builds a fold's inputs from its own rows (a TF-IDF
    vocabulary learnt on the fitted rows only); without it ``x`` is already the features."""
    from joblib import Parallel, delayed

    splits = inner_folds(y, folds, seed)
    if not splits:  # too few rows to cross-validate
        return Choice(FALLBACK_C, False, note=TOO_FEW), None
    folds_data = []
    for rows, held in splits:
        x_fit, x_held = features(rows, held) if features else (x[rows], x[held])
        folds_data.append((x_fit, y[rows], x_held, y[held]))
    jobs = [(f, chain, None) for f in range(len(splits)) for chain in fit.chains()]
    scored: dict[tuple[int, float], Scored] = {}
    blas = _one_blas_thread() if fit.backend == "threading" else nullcontext()
    n_jobs = min(len(jobs), os.cpu_count() or 1)
    with blas, Parallel(n_jobs=n_jobs, backend=fit.backend) as parallel:

        def run(batch: list[tuple[int, tuple[float, ...], Model | None]]) -> None:
            found = parallel(
                delayed(fit.chain_scores)(folds_data[f], chain, seed, start) for f, chain, start in batch
            )
            for (f, chain, _), results in zip(batch, found, strict=True):
                scored.update({(f, C): result for C, result in zip(chain, results, strict=True)})

        def score_C(C: float, edge: float) -> np.ndarray:
            run([(f, (C,), scored[f, edge][1]) for f in range(len(splits))])
            return np.array([scored[f, C][0] for f in range(len(splits))])

        run(jobs)
        grid = tuple(sorted(fit.grid))
        table = np.array([[scored[f, C][0] for C in grid] for f in range(len(splits))])
        choice = extend_to_optimum(grid, table, score_C, fit.reach)
    return choice, fit.start([scored[f, choice.value][1] for f in range(len(splits))])


def _one_blas_thread() -> Any:
    """Process-wide, so only ever entered from the calling thread, never from the jobs: threads share
    the process's BLAS pool, and more than one BLAS thread per job oversubscribes the cores (joblib
    already limits its worker processes')."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def logistic_predict(
    train_x: Any,
    train_y: np.ndarray,
    test_x: Any,
    C: float | None,
    folds: int,
    seed: int,
    fit: Fitter = EmbeddingFit(),
) -> tuple[np.ndarray, Choice]:
    """Test predictions of a logistic regression at the given C, or at the C inner CV chooses."""
    choice, start = (
        (Choice(C, False), None) if C is not None else search_C(train_x, train_y, folds, seed, fit)
    )
    return fit.fit(train_x, train_y, choice.value, seed, start).predict(test_x), choice


def _neighbours(train_x: np.ndarray, test_x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    index = faiss.IndexFlatIP(train_x.shape[1])
    index.add(np.ascontiguousarray(train_x, dtype=np.float32))
    return index.search(np.ascontiguousarray(test_x, dtype=np.float32), min(k, len(train_x)))


def _vote(sims: np.ndarray, neighbours: np.ndarray, codes: np.ndarray, n_classes: int, k: int) -> np.ndarray:
    """Class codes by similarity-weighted vote of the first k neighbours; a tie goes to the lower code."""
    votes = np.zeros((len(sims), n_classes))
    rows = np.arange(len(sims))[:, None]
    np.add.at(votes, (rows, codes[neighbours[:, :k]]), sims[:, :k])
    return votes.argmax(axis=1)


@dataclass(frozen=True)
class KnnPrediction:
    """The kNN probe's test predictions, how its k was set, and what its search found on the way: each
    test row's cosine to its nearest training row (float32; the unit vectors' exact inner product)."""

    predicted: np.ndarray
    choice: Choice
    nearest_cos: np.ndarray


def knn_search_predict(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Similarity-weighted vote of the k most cosine-similar training rows (exact FAISS search), and
    each test row's cosine to its nearest training row, from the same search."""
    classes, codes = np.unique(train_y, return_inverse=True)
    sims, neighbours = _neighbours(train_x, test_x, k)
    return classes[_vote(sims, neighbours, codes, len(classes), k)], sims[:, 0].astype(np.float32)


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int) -> np.ndarray:
    """Similarity-weighted vote of the k most cosine-similar training rows (exact FAISS search)."""
    return knn_search_predict(train_x, train_y, test_x, k)[0]


def choose_k(
    x: np.ndarray,
    y: np.ndarray,
    folds: int,
    seed: int,
    grid: tuple[int, ...] = K_GRID,
    reach: Reach | None = K_REACH,
) -> Choice:
    """k with the best mean inner-CV macro-F1 (the largest among ties: the smoothest vote); a winning
    largest k grows the grid (``reach``, capped at the smallest fold's fitted rows too). One search
    per fold at the largest k serves every k up to it."""
    classes, codes = np.unique(y, return_inverse=True)
    splits = inner_folds(y, folds, seed)
    if not splits:
        return Choice(FALLBACK_K, False, note=TOO_FEW)
    grid = tuple(sorted(grid))
    found = [_neighbours(x[fit_rows], x[held], max(grid)) for fit_rows, held in splits]

    def score_k(k: int, edge: int = 0) -> np.ndarray:
        scores = np.zeros(len(splits))
        for f, (fit_rows, held) in enumerate(splits):
            if found[f][1].shape[1] < min(k, len(fit_rows)):  # a grown grid searches deeper
                found[f] = _neighbours(x[fit_rows], x[held], k)
            sims, neighbours = found[f]
            scores[f] = _macro_f1(codes[held], _vote(sims, neighbours, codes[fit_rows], len(classes), k))
        return scores

    table = np.column_stack([score_k(k) for k in grid])
    if reach is not None:
        reach = replace(reach, cap=min(reach.cap, min(len(fit_rows) for fit_rows, _ in splits)))
    return extend_to_optimum(grid, table, score_k, reach, largest_on_ties=True)


def knn_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int | None, folds: int, seed: int
) -> KnnPrediction:
    """The kNN vote at the given k, or at the k inner CV chooses, with each test row's nearest cosine."""
    choice = Choice(k, False) if k is not None else choose_k(train_x, train_y, folds, seed)
    predicted, nearest = knn_search_predict(train_x, train_y, test_x, int(choice.value))
    return KnnPrediction(predicted, choice, nearest)


def knn_tuned_predict(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int | None, folds: int, seed: int
) -> tuple[np.ndarray, Choice]:
    """Test predictions of the kNN vote at the given k, or at the k inner CV chooses."""
    found = knn_probe(train_x, train_y, test_x, k, folds, seed)
    return found.predicted, found.choice
