"""The probe's searches find their optimum (a value that wins on an edge of its grid grows the grid, up
to a cap), and the probe stage measures near-duplicate leakage: test rows with a training twin, and the
probes scored without them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from pipeline.core.settings import ProbeSettings
from pipeline.stages.probe.estimators import C_GRID, EmbeddingFit, choose_k, inner_folds, search_C
from pipeline.stages.probe.grids import C_REACH, Choice, Reach


@dataclass(frozen=True)
class ScriptedFit:
    """A fitter whose held-out score is a function of C alone: the search's logic without fitting.
    Its 'models' are (fold size, C, start), so a test can see where each chain started."""

    peak: Any  # C -> score
    grid: tuple[float, ...] = C_GRID
    reach: Reach | None = C_REACH
    backend = "threading"

    def chains(self) -> list[tuple[float, ...]]:
        return [tuple(sorted(self.grid))]

    def chain_scores(self, fold: Any, chain: tuple[float, ...], seed: int, start: Any = None) -> list:
        out, model = [], start
        for C in chain:
            model = (len(fold[1]), C, model)
            out.append((self.peak(C), model))
        return out

    def start(self, models: list) -> list:
        return models


def data(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype(np.float32), np.array(["a", "b", "c"] * (n // 3))


def argmax_holds(choice: Choice) -> None:
    """The chosen value is the recorded grid's best mean score (the smallest value among ties)."""
    assert choice.grid == tuple(sorted(choice.grid)) and len(choice.grid) == len(choice.cv_macro_f1)
    assert choice.value == choice.grid[int(np.argmax(choice.cv_macro_f1))]
    assert choice.best_cv == max(choice.cv_macro_f1)


def test_a_winning_top_C_grows_the_grid_from_each_folds_last_model():
    fit = ScriptedFit(lambda C: -abs(np.log(C / 1024)))  # the optimum is past the grid's top
    choice, starts = search_C(*data(), folds=3, seed=0, fit=fit)
    assert choice.value == 1024 and choice.grid == (*C_GRID, 256.0, 1024.0, 4096.0)
    assert choice.extended and not choice.capped
    assert choice.words("C") == "C = 1024 (3-fold CV, grid extended to 4096)"
    argmax_holds(choice)
    for rows, C, start in starts:  # each fold's chain went on from its own model at the edge
        assert C == 1024 and start[:2] == (rows, 256.0) and start[2][:2] == (rows, 64.0)


def test_an_interior_optimum_keeps_the_grid():
    choice = search_C(*data(), folds=3, seed=0, fit=ScriptedFit(lambda C: -abs(np.log(C / 4))))[0]
    assert choice.value == 4 and choice.grid == C_GRID and not choice.extended and not choice.capped
    assert choice.words("C") == "C = 4 (3-fold CV)"
    argmax_holds(choice)


def test_the_cap_and_the_floor_stop_the_grid():
    up = search_C(*data(), folds=3, seed=0, fit=ScriptedFit(lambda C: C))[0]
    assert up.value == 4096 and up.grid[-1] == 4096 and up.extended and up.capped
    assert up.words() == "4096 (3-fold CV, at the cap of the extended grid)"
    down = search_C(*data(), folds=3, seed=0, fit=ScriptedFit(lambda C: -C))[0]
    assert down.value == 1 / 1024 and down.grid[0] == 1 / 1024 and len(down.grid) == len(C_GRID) + 4
    assert down.words() == "0.000976562 (3-fold CV, at the floor of the extended grid)"
    for choice in (up, down):
        argmax_holds(choice)
    shrink = search_C(*data(), folds=3, seed=0, fit=ScriptedFit(lambda C: -abs(np.log(C / 0.05))))[0]
    assert shrink.value == 0.0625 and shrink.words() == "0.0625 (3-fold CV, grid extended to 0.015625)"
    fixed = search_C(*data(), folds=3, seed=0, fit=ScriptedFit(lambda C: C, reach=None))[0]
    assert fixed.grid == C_GRID and fixed.words() == "64 (3-fold CV, top of the grid)"  # a grid kept as given


def test_ties_keep_the_most_regularised_C():
    choice = search_C(*data(), folds=3, seed=0, fit=ScriptedFit(lambda C: min(C, 64.0)))[0]
    assert choice.value == 64 and choice.grid[-1] == 256 and choice.extended  # 256 ties: 64 stays


def separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors whose classes differ by a small offset on a large shared direction: weak
    regularisation keeps helping past the default grid."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.ones(16) + 0.02 * np.random.default_rng(99).standard_normal((3, 16))[y]
    x = x + 0.02 * rng.standard_normal((n, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.array([f"c{i}" for i in y])


@pytest.mark.filterwarnings("ignore:.*[Ll]ine [Ss]earch")  # scikit-learn's refit at a large C
def test_real_fits_past_the_top_of_the_grid_are_scored_as_their_own_C():
    x, y = separable(300, 0)
    choice = search_C(x, y, folds=3, seed=0)[0]
    assert choice.value > max(C_GRID) and choice.extended and set(C_GRID) < set(choice.grid)
    argmax_holds(choice)
    assert search_C(x, y, folds=3, seed=0)[0] == choice  # same seed, same numbers
    for C, score in zip(choice.grid, choice.cv_macro_f1, strict=True):
        if max(C_GRID) >= C:
            continue
        folds = []  # the chain continued from 64: each new C's score is a from-scratch fit's
        for fit, held in inner_folds(y, 3, 0):
            model = LogisticRegression(**EmbeddingFit().params(C), random_state=0).fit(x[fit], y[fit])
            folds.append(f1_score(y[held], model.predict(x[held]), average="macro"))
        assert score == pytest.approx(np.mean(folds), abs=0.01), C


def label_noise(n: int, flip: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two clean clusters whose labels are flipped at random: the wider the vote, the better."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.eye(4)[y] + 0.3 * rng.standard_normal((n, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    noisy = np.where(rng.random(n) < flip, 1 - y, y)
    return x.astype(np.float32), np.array([f"c{i}" for i in noisy])


def test_k_grows_when_50_wins_and_stops_at_its_caps():
    grown = choose_k(*label_noise(600, 0.4), folds=3, seed=0)
    assert grown.value == 50 and grown.grid == (1, 5, 10, 20, 50, 100) and grown.extended
    assert grown.words("k") == "k = 50 (3-fold CV, grid extended to 100)" and not grown.capped
    capped = choose_k(*label_noise(600, 0.3), folds=3, seed=0)
    assert capped.value == 400 and capped.grid[-1] == 400 and capped.capped
    for choice in (grown, capped):
        best = len(choice.grid) - 1 - int(np.argmax(choice.cv_macro_f1[::-1]))  # ties: the largest k
        assert choice.value == choice.grid[best]
    assert choose_k(*label_noise(600, 0.4), folds=3, seed=0) == grown


def test_k_stops_at_the_fitted_rows_of_the_smallest_fold(monkeypatch):
    import pipeline.stages.probe.estimators as estimators

    voted: list[int] = []
    real_vote = estimators._vote

    def vote(sims: np.ndarray, neighbours: np.ndarray, codes: np.ndarray, classes: int, k: int) -> np.ndarray:
        voted.append(k)
        return real_vote(sims, neighbours, codes, classes, k)

    monkeypatch.setattr(estimators, "_vote", vote)
    monkeypatch.setattr(estimators, "_macro_f1", lambda truth, predicted: float(voted[-1]))  # wider wins
    x, y = data(90)
    smallest_fold = min(len(fit) for fit, _ in inner_folds(y, 3, 0))
    grown = choose_k(x, y, folds=3, seed=0)
    assert grown.grid == (1, 5, 10, 20, 50, smallest_fold) and grown.value == smallest_fold
    assert grown.capped and grown.words() == f"{smallest_fold} (3-fold CV, at the cap of the extended grid)"
    x, y = data(30)  # 20 fitted rows a fold: the grid's own top is past them
    kept = choose_k(x, y, folds=3, seed=0)
    assert kept.grid == (1, 5, 10, 20, 50) and kept.capped and not kept.extended
    assert kept.words() == "50 (3-fold CV, at the cap of the grid)"


def test_choice_fields_read_from_older_files_and_best_cv():
    old = {
        "value": 64.0,
        "tuned": True,
        "grid": [1.0, 64.0],
        "cv_macro_f1": [0.4, 0.5],
        "folds": 3,
        "note": "",
    }
    choice = Choice.from_dict(old)
    assert not choice.extended and not choice.capped and choice.best_cv == 0.5
    assert choice.words() == "64 (3-fold CV, top of the grid)"  # what an old search stopped at
    assert Choice(1.0, False).best_cv is None and Choice(10, False, note="too few").best_cv is None
    assert Choice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice


# --- near-duplicate leakage ---------------------------------------------------------------------------


def test_leakage_counts_scores_clean_rows_and_flags_both_ways():
    from pipeline.stages.probe.data import measure_leakage, score
    from pipeline.stages.probe.scores import ProbeScores

    rng = np.random.default_rng(0)
    truth = rng.choice(np.array(["a", "b", "c"]), 600)
    nearest = np.where(np.arange(600) < 200, 0.99, 0.5).astype(np.float32)
    settings = ProbeSettings(bootstrap=200)
    guess = rng.choice(np.array(["a", "b", "c"]), 600)
    leaky = np.where(nearest >= 0.95, truth, guess)  # right on every twin, chance elsewhere
    predicted = {"logistic": truth.copy(), "knn": leaky}
    full = {name: ProbeScores.from_dict(r) for name, r in score(truth, predicted, settings).items()}
    found = measure_leakage(truth, predicted, nearest, full, settings)
    clean = nearest < 0.95
    assert found.twins == 200 and found.test_rows == 600 and found.knn.rows == 400
    assert found.knn.macro_f1 == pytest.approx(f1_score(truth[clean], leaky[clean], average="macro"))
    assert found.knn.outside and not found.logistic.outside and found.flagged  # kNN's score was the twins'
    honest = {"logistic": truth.copy(), "knn": guess}
    full = {name: ProbeScores.from_dict(r) for name, r in score(truth, honest, settings).items()}
    assert not measure_leakage(truth, honest, nearest, full, settings).flagged
    everything = measure_leakage(truth, honest, np.ones(600, np.float32), full, settings)
    assert everything.twins == 600 and everything.knn is None and not everything.flagged
    assert "no test rows without one" in everything.words()


def leaky_workdir(root):
    """A workdir whose first test rows are near-copies of training rows, the next three looser copies."""
    from pipeline import Workspace
    from tests.conftest import write_csv, write_vectors_run

    rng = np.random.default_rng(1)
    labels = rng.choice(np.array(["x", "y", "z"]), 150)
    splits = ["train"] * 100 + ["test"] * 50
    rows = [(f"r{i}", f"tuit {i}", labels[i], splits[i]) for i in range(150)]
    ws = Workspace(root)
    ws.ingest([write_csv(root.parent / "tweets.csv", rows)])
    vectors = rng.standard_normal((150, 16)) + 0.8 * np.eye(16)[np.searchsorted(["x", "y", "z"], labels)]
    vectors[100:107] = vectors[:7] + 0.01 * rng.standard_normal((7, 16))  # 7 planted twins
    vectors[107:110] = vectors[7:10] + 1.0 * rng.standard_normal((3, 16))  # 3 near, not twins
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return write_vectors_run(root, vectors.astype(np.float32))


def test_the_stage_counts_twins_as_brute_force_and_scores_the_rest(tmp_path):
    from pipeline.artifacts.store import load_embeddings
    from pipeline.core.manifest import stage_entry
    from pipeline.stages.probe.stage import load_probe_report, probe_run

    paths = leaky_workdir(tmp_path / "w")
    settings = ProbeSettings(bootstrap=200, near_dup=0.97)
    report = probe_run(tmp_path / "w", "synthetic/vectors", settings=settings)
    saved = load_embeddings(paths.embeddings)
    x = saved.take(np.arange(150))
    brute = (x[100:].astype(np.float64) @ x[:100].T.astype(np.float64)).max(axis=1)
    assert report.leakage.twins == int((brute >= 0.97).sum()) == 7
    predictions = pd.read_parquet(paths.predictions)
    assert predictions["nearest_train_cos"].dtype == np.float32
    np.testing.assert_allclose(predictions["nearest_train_cos"], brute, atol=1e-5)
    clean = predictions[predictions["nearest_train_cos"] < 0.97]
    for name in ("logistic", "knn"):
        got = getattr(report.leakage, name)
        assert got.rows == len(clean)
        assert got.macro_f1 == pytest.approx(f1_score(clean["label"], clean[name], average="macro"))
    assert any(line.startswith(f"near-duplicates: {report.leakage.twins} of 50") for line in report.lines())
    written = json.loads(paths.probe.read_text(encoding="utf-8"))
    assert written["leakage"] == report.leakage.to_dict() and written["layer"] == "last"
    recorded = stage_entry(paths.manifest, "probe")["outputs"]["leakage"]
    assert recorded == {"twins": report.leakage.twins, "flagged": report.leakage.flagged,
                        "logistic_macro_f1": report.leakage.logistic.macro_f1,
                        "knn_macro_f1": report.leakage.knn.macro_f1}  # fmt: skip
    again = probe_run(tmp_path / "w", "synthetic/vectors", settings=settings)
    assert again.skipped and again.leakage == report.leakage
    del written["leakage"]  # a probe.json from before leakage was measured still reads
    paths.probe.write_text(json.dumps(written), encoding="utf-8")
    older = load_probe_report(paths)
    assert older.leakage is None and "leakage" not in older.to_dict()
    assert not any(line.startswith("near-duplicates") for line in older.lines())


def test_probe_run_takes_a_layer(tmp_path):
    from pipeline.core.errors import EncajesError
    from pipeline.stages.probe.stage import probe_run

    leaky_workdir(tmp_path / "w")
    with pytest.raises(EncajesError, match=r"at layer 6.*--layers 6"):
        probe_run(tmp_path / "w", "synthetic/vectors", layer="6")


def test_a_flat_grid_grows_towards_weaker_regularisation_and_a_levelled_edge_does_not_grow():
    """Every C scoring the same (constant predictions) says too much regularisation: the grid grows
    upward until the scores move; an edge that only ties its neighbour has levelled off."""
    flat = search_C(*data(), folds=3, seed=0, fit=ScriptedFit(lambda C: 0.0 if C < 1000 else C))[0]
    assert flat.value == 4096 and flat.grid[-1] == 4096 and flat.extended and flat.capped
    argmax_holds(flat)
    level = search_C(*data(), folds=3, seed=0, fit=ScriptedFit(lambda C: -max(C, 1.0)))[0]
    assert level.value == 0.25 and level.grid == C_GRID and not level.extended
