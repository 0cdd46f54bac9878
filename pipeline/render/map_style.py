"""How a UMAP map stays readable with many labels, for the PNG (``map_figure``) and the page (``umap_page``)
alike: the most frequent labels in colours people can tell apart, every other label as one light-grey group
drawn underneath, and a view bounded by robust quantiles so that one far-off cluster does not squeeze the
main cloud (points beyond it are drawn at its edge and counted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

# Hand-picked qualitative colours, most distinct first (Tableau 10 without its grey, black, then darker and
# mid-tone hues). None is light, so the grey of the "other" group stays clearly paler than all of them.
PALETTE: tuple[str, ...] = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#17becf",  # cyan
    "#bcbd22",  # olive
    "#1a1a1a",  # black
    "#393b79",  # indigo
    "#e7969c",  # rose
    "#00796b",  # teal
    "#8c6d31",  # mustard
    "#6baed6",  # sky blue
    "#7b4173",  # plum
    "#74c476",  # light green
    "#843c39",  # maroon
    "#9e9ac8",  # lavender
    "#637939",  # moss
)
OTHER_COLOR = "#cccccc"
MISSING_COLOR = "#e6e6e6"  # a point without a value for the field the map is coloured by: paler still
# Viridis at nine even steps, dark to light: a continuous field (a time, a number) reads in order, in
# colour or in grey print, and no step is a grey that a missing value could be mistaken for.
SCALE_STOPS: tuple[str, ...] = (
    "#440154",
    "#472d7b",
    "#3b528b",
    "#2c728e",
    "#21918c",
    "#28ae80",
    "#5ec962",
    "#addc30",
    "#fde725",
)
OUTSIDE_NOTE = "outside the view, drawn at the edge"


@dataclass(frozen=True)
class MapGroups:
    """Which labels get a colour: ``order`` is every label, most frequent first (ties by name, so the PNG
    and the page agree); ``coloured`` its head, ``other`` the rest, shown together as one grey group."""

    order: list[str]
    counts: dict[str, int]
    coloured: list[str]
    other: list[str]
    colors: dict[str, str]  # every label's colour, the other group's included

    @property
    def other_count(self) -> int:
        return sum(self.counts[label] for label in self.other)

    def other_legend(self) -> str:
        return f"other: {len(self.other):,} labels ({self.other_count:,})"


def map_groups(counts: pd.Series | Mapping[str, int], top: int = 10) -> MapGroups:
    """The ``top`` most frequent labels coloured (at most one per palette colour), the rest grey."""
    items = sorted(((str(k), int(v)) for k, v in dict(counts).items()), key=lambda kv: (-kv[1], kv[0]))
    order = [label for label, _ in items]
    head = max(1, min(top, len(PALETTE)))
    coloured, other = order[:head], order[head:]
    colors = dict(zip(coloured, PALETTE, strict=False)) | dict.fromkeys(other, OTHER_COLOR)
    return MapGroups(order, dict(items), coloured, other, colors)


@dataclass(frozen=True)
class MapView:
    """The part of the plane a map shows, and which points lie beyond it."""

    x0: float
    x1: float
    y0: float
    y1: float
    outside: np.ndarray  # bool per point

    @property
    def n_outside(self) -> int:
        return int(self.outside.sum())

    def clamp(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points moved onto the view's edge where they lie beyond it."""
        return np.clip(x, self.x0, self.x1), np.clip(y, self.y0, self.y1)

    def as_dict(self) -> dict[str, float]:
        return {"x0": self.x0, "x1": self.x1, "y0": self.y0, "y1": self.y1}


def robust_limits(
    values: np.ndarray, tail: float = 0.02, reach: float = 0.5, margin: float = 0.04
) -> tuple[float, float]:
    """One axis' limits: every value within ``reach`` (a share of the ``tail``..``1-tail`` quantile
    span) of those quantiles, plus a ``margin``. So the ordinary edge of a cloud stays in view, and a
    far-off group smaller than ``tail`` of the points falls outside however far it is."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.quantile(values, [tail, 1 - tail]))
    near = values[(values >= lo - reach * (hi - lo)) & (values <= hi + reach * (hi - lo))]
    low, high = float(near.min()), float(near.max())
    pad = margin * (high - low) or 0.5
    return low - pad, high + pad


def map_view(x: np.ndarray, y: np.ndarray) -> MapView:
    """Robust limits on both axes, and the points they leave out."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    x0, x1 = robust_limits(x)
    y0, y1 = robust_limits(y)
    outside = (x < x0) | (x > x1) | (y < y0) | (y > y1)
    return MapView(x0, x1, y0, y1, outside)


def outside_note(n: int) -> str:
    return f"{n:,} point{'s' if n != 1 else ''} {OUTSIDE_NOTE}"
