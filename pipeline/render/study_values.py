"""The values the study's figures draw (layer sweeps, learning curves, cost), as plain dataclasses.

They live here, below ``pipeline/report``, so that the figures (``study_figures``) and the sentences
that the report writes about the same numbers (``pipeline/report/layers``, ``curves``, ``cost``) share
one definition without the render floor importing anything above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SystemKind = Literal["run", "baseline"]


@dataclass(frozen=True)
class LayerScore:
    """One hidden layer's probe result: test macro-F1 with its 95% interval, and the probe's best mean
    inner-CV macro-F1 on the training rows (``cv``, None where the probe did not cross-validate), which
    is the only figure allowed to pick a layer."""

    layer: str
    macro_f1: float
    low: float
    high: float
    cv: float | None = None


@dataclass(frozen=True)
class CurveSeries:
    """A system's learning curve: test macro-F1 per training size, one value per resample
    (``scores[i]`` belongs to ``sizes[i]``; resample ``j`` is the same subsample for every system, so
    differences pair by position). The last size is usually all training rows, with one value."""

    name: str
    sizes: list[int]
    scores: list[list[float]]
    kind: SystemKind = "run"

    def __post_init__(self) -> None:
        if len(self.sizes) != len(self.scores) or any(not values for values in self.scores):
            raise ValueError(f"{self.name}: one non-empty list of scores per size is needed")


@dataclass(frozen=True)
class CostPoint:
    """What a system costs and gives: embedding throughput (texts/s; None where not measured), test
    macro-F1, parameters and dimension where known. TF-IDF is a ``baseline`` point like any other."""

    name: str
    texts_per_second: float | None
    macro_f1: float
    parameters: int | None = None
    dim: int | None = None
    kind: SystemKind = "run"
