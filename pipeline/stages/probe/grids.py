"""Grids that find their optimum, pure: a hyper-parameter search whose best value sits at an edge of its
grid has not found the optimum, only a bound on it. So an edge that wins is pushed outward (``Reach``)
and the new values scored on the same folds, until the best is interior or the grid hits its bound.

``Choice`` records the grid actually scored and how the search ended, so a report can say whether the
value is an optimum or only the edge of what was tried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Reach:
    """How far a grid grows past an edge that wins: by ``factor`` per step, up to ``cap``, and down to
    ``floor`` (None: the bottom never extends, as k = 1 cannot)."""

    factor: float
    cap: float
    floor: float | None = None

    def beyond(self, grid: tuple[float, ...], value: float) -> float | None:
        """The next value to score past the edge ``value`` sits on (``grid`` ascending); None when it is
        interior, or its edge is already at the bound."""
        if value == grid[-1]:
            up = min(value * self.factor, self.cap)
            return up if up > value else None
        if value == grid[0] and self.floor is not None:
            down = max(value / self.factor, self.floor)
            return down if down < value else None
        return None

    def bounded(self, grid: tuple[float, ...], value: float) -> bool:
        """The value sits on an edge the grid may not grow past."""
        at_edge = value == grid[-1] or (value == grid[0] and self.floor is not None)
        return at_edge and self.beyond(grid, value) is None


C_REACH = Reach(4.0, 4096.0, 1 / 1024)  # C up to 4096, down to 1/1024, by factors of 4
# embeddings crowded into a narrow cone (CLS vectors of middle layers) need far weaker regularisation
EMBEDDING_C_REACH = Reach(4.0, 65536.0, 1 / 1024)
K_REACH = Reach(2, 400)  # k up to 400 (and the fitted rows of the smallest fold), doubling


@dataclass(frozen=True)
class Choice:
    """A hyper-parameter and how it was set: by inner cross-validation (with each grid value's mean
    macro-F1 over the folds), fixed by the user, or a default when the rows are too few to tune.
    ``extended``: the grid grew past an edge that won; ``capped``: the value sits on an edge the grid
    could not grow past (the best found, not an optimum)."""

    value: float
    tuned: bool
    grid: tuple[float, ...] = ()
    cv_macro_f1: tuple[float, ...] = ()
    folds: int = 0
    note: str = ""
    extended: bool = False
    capped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Choice:
        """Back from ``to_dict`` or its JSON (lists for the tuples), equal to the choice written; a dict
        written before ``extended`` and ``capped`` existed reads with them False."""
        tuples = {key: tuple(data[key]) for key in ("grid", "cv_macro_f1") if key in data}
        return cls(**(data | tuples))

    @property
    def best_cv(self) -> float | None:
        """The best mean inner-CV macro-F1 (the chosen value's); None when the value was not tuned."""
        return max(self.cv_macro_f1) if self.tuned and self.cv_macro_f1 else None

    def words(self, name: str = "") -> str:
        """'16 (3-fold CV)', '256 (3-fold CV, grid extended to 1024)', '4096 (3-fold CV, at the cap of
        the extended grid)', '64 (3-fold CV, top of the grid)' (a grid that was not let grow), '1
        (fixed)' or '1 (default: too few rows to tune)': how the value was set, as the reports say it."""
        if self.tuned:
            how = f"{self.folds}-fold CV{self._edge_words()}"
        else:
            how = f"default: {self.note}" if self.note else "fixed"
        return f"{name + ' = ' if name else ''}{self.value:g} ({how})"

    def _edge_words(self) -> str:
        if not self.grid:
            return ""
        grid = tuple(sorted(self.grid))
        top = self.value == grid[-1]
        if self.capped:
            return f", at the {'cap' if top else 'floor'} of the {'extended ' if self.extended else ''}grid"
        if self.extended:  # the search stopped one step short of the end it grew: that end lost
            upward = grid.index(self.value) == len(grid) - 2
            return f", grid extended to {grid[-1] if upward else grid[0]:g}"
        return ", top of the grid" if top else ""


def choice_words(choice: dict[str, Any], name: str = "") -> str:
    """``Choice.words`` of a choice kept as a dict (the baselines' TF-IDF C)."""
    return Choice.from_dict(choice).words(name)


def best_on_grid(grid: tuple[float, ...], scores: np.ndarray, largest_on_ties: bool = False) -> Choice:
    """The grid value with the best mean score over the folds (rows of ``scores``); ties go to the first
    value, or to the last with ``largest_on_ties``."""
    mean = scores.mean(axis=0)
    best = len(grid) - 1 - int(np.argmax(mean[::-1])) if largest_on_ties else int(np.argmax(mean))
    return Choice(grid[best], True, tuple(grid), tuple(float(s) for s in mean), len(scores))


ScoreValue = Callable[[float, float], np.ndarray]  # (new value, the edge it grows from) -> fold scores
FLAT = 1e-12  # mean scores this close are equal


def _growing_edge(values: tuple[float, ...], mean: np.ndarray, best: float) -> float | None:
    """The edge the grid should grow past: the best's, when it sits on an edge and beats its neighbour;
    the top when every value scores the same; else None (the optimum is interior, or levelled off)."""
    if len(values) < 2 or mean.max() - mean.min() <= FLAT:
        return values[-1]
    i = values.index(best)
    if i == len(values) - 1 and mean[i] > mean[i - 1] + FLAT:
        return best
    if i == 0 and mean[0] > mean[1] + FLAT:
        return best
    return None


def extend_to_optimum(
    grid: tuple[float, ...],
    scores: np.ndarray,
    score_value: ScoreValue,
    reach: Reach | None,
    largest_on_ties: bool = False,
) -> Choice:
    """The best of ``grid`` (ascending; ``scores``: folds x grid), the grid grown one value at a time
    past an edge that wins (``score_value`` scores a new value on the same folds) until the best is
    interior or ``reach`` stops it. An edge wins only when it scores above its neighbour: a tie there
    says the scores have levelled off. A grid where every value scores the same learnt nothing from
    any of them (constant predictions under too much regularisation, as CLS vectors crowded into one
    direction give): it grows upward, towards weaker regularisation. Without ``reach`` the grid is
    kept as given."""
    values, table, extended = tuple(grid), np.asarray(scores, dtype=float), False
    while True:
        choice = best_on_grid(values, table, largest_on_ties)
        edge = _growing_edge(values, table.mean(axis=0), choice.value)
        new = reach.beyond(values, edge) if reach and edge is not None else None
        if new is None:
            break
        column = np.asarray(score_value(new, edge), dtype=float)[:, None]
        upward = new > edge
        values = (*values, new) if upward else (new, *values)
        table = np.hstack([table, column] if upward else [column, table])
        extended = True
    capped = reach is not None and reach.bounded(values, choice.value)
    return replace(choice, extended=extended, capped=capped)
