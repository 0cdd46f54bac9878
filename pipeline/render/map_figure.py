"""``umap.png``: a run's UMAP map as a picture that reads at a handful of labels and at dozens (the
choices it shares with the HTML page are ``map_style``'s)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.render.figures import _pyplot, display_label, label_names, save_png
from pipeline.render.map_style import OTHER_COLOR, MapGroups, MapView, map_groups, map_view, outside_note

LEGEND_CHARS = 42  # a longer label name is cut, so the legend does not push the map aside


def _cut(text: str, width: int = LEGEND_CHARS) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_umap_png(
    frame: pd.DataFrame, title: str, target: Path, names: Mapping[str, str] | None = None, top: int = 10
) -> None:
    """A scatter that stays legible from 200 to 100k+ points and from 2 to hundreds of labels: small
    rasterised dots in shuffled order, the ``top`` labels coloured over one grey group of the rest, equal
    axes bounded by robust quantiles (far-off points drawn at the edge)."""
    plt = _pyplot()

    labels = label_names(frame)
    groups = map_groups(labels.value_counts(), top)
    x, y = frame["x"].to_numpy(dtype=float), frame["y"].to_numpy(dtype=float)
    view = map_view(x, y)
    fig, ax = plt.subplots(figsize=(11, 8), dpi=150)
    _scatter_groups(ax, x, y, labels.to_numpy(), groups, view)
    _map_legend(plt, ax, groups, view.n_outside, names)
    ax.set_xlim(view.x0, view.x1)
    ax.set_ylim(view.y0, view.y1)
    ax.set_aspect("equal", adjustable="box")  # one unit is as long across as up: distances read true
    ax.set_title(f"{title}  ·  {len(frame):,} tweets  ·  UMAP (cosine)", fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#cccccc")
    fig.tight_layout()
    save_png(fig, target)


def _scatter_groups(
    ax, x: np.ndarray, y: np.ndarray, labels: np.ndarray, groups: MapGroups, view: MapView
) -> None:
    """The grey group first, then the coloured labels in shuffled order (no label buries another), then
    the points beyond the view as outlined diamonds on its edge."""
    from matplotlib.colors import to_rgba_array

    n = len(x)
    size = float(np.clip(30000 / max(n, 1), 0.3, 30))
    alpha = 0.9 if n < 5000 else 0.5
    codes = pd.Categorical(labels, categories=groups.order).codes  # colours by table: fast at 1M points
    colors = to_rgba_array([groups.colors[label] for label in groups.order])[codes]
    grey = codes >= len(groups.coloured)
    shuffled = np.random.default_rng(0).permutation(n)
    inside = shuffled[~view.outside[shuffled]]
    for part, opacity in ((inside[grey[inside]], 0.8), (inside[~grey[inside]], alpha)):
        if len(part):
            ax.scatter(x[part], y[part], c=colors[part], s=size, alpha=opacity, linewidths=0, rasterized=True)
    beyond = shuffled[view.outside[shuffled]]
    if len(beyond):
        bx, by = view.clamp(x[beyond], y[beyond])
        ax.scatter(
            bx,
            by,
            c=colors[beyond],
            s=max(size * 2, 14),
            marker="D",
            edgecolors="#333333",
            linewidths=0.5,
            clip_on=False,
            zorder=3,
        )


def _map_legend(plt, ax, groups: MapGroups, n_outside: int, names: Mapping[str, str] | None) -> None:
    """One entry per coloured label, one for the grey group and one for the edge markers: a legend of
    at most ``len(PALETTE) + 2`` lines, so it never outgrows the figure."""

    def entry(color: str, text: str, marker: str = "o", edge: str = "none"):
        return plt.Line2D(
            [], [], marker=marker, linestyle="", markersize=8, color=color, markeredgecolor=edge, label=text
        )

    handles = [
        entry(groups.colors[label], f"{_cut(display_label(label, names=names))} ({groups.counts[label]:,})")
        for label in groups.coloured
    ]
    if groups.other:
        handles.append(entry(OTHER_COLOR, groups.other_legend()))
    if n_outside:
        handles.append(entry("white", outside_note(n_outside), marker="D", edge="#333333"))
    heading = (
        f"{len(groups.coloured)} most frequent of {len(groups.order):,} labels" if groups.other else "label"
    )
    ax.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(1.02, 0.5),
        frameon=False,
        fontsize=10,
        title=heading,
        title_fontsize=11,
        alignment="left",
    )
