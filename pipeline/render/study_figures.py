"""The study's figures: macro-F1 by hidden layer, learning curves against the baselines, and throughput
against macro-F1. Values in (``study_values``), PNG files out; each reads at a glance with a dozen layers,
eight systems or a handful of cost points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pipeline.core.layers import COMBINATIONS, layer_order
from pipeline.render.figures import _pyplot, save_png
from pipeline.render.study_values import CostPoint, CurveSeries, LayerScore

__all__ = ["CostPoint", "CurveSeries", "LayerScore", "plot_cost", "plot_curves", "plot_layers"]

PROBE_STYLE = {"logistic": ("logistic regression", "#4e79a7", "o"), "knn": ("kNN", "#e15759", "s")}
OTHER_STYLE = ("#59a14f", "D")  # a probe this module does not know by name
GAP = 0.8  # extra room on the layer axis before the combinations (last4, first-last)
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")
BASELINE_COLORS = ("#333333", "#8c8c8c", "#9c755f")


def _layer_positions(layers: Sequence[str]) -> dict[str, float]:
    """x of each layer: depth order 0, 1, 2, …; the combinations after a gap, so they read apart."""
    out, x = {}, 0.0
    for layer in sorted(layers, key=layer_order):
        if layer in COMBINATIONS and not any(name in COMBINATIONS for name in out):
            x += GAP
        out[layer] = x
        x += 1
    return out


def _probe_style(probe: str) -> tuple[str, str, str]:
    return PROBE_STYLE.get(probe, (probe, *OTHER_STYLE))


def _layer_panel(ax, key: str, probes: Mapping[str, Sequence[LayerScore]], picks: Mapping[str, str]) -> None:
    """One model x pooling: per probe a line over the depth layers with its 95% band, the combinations
    as separate points with error bars, the inner-CV pick as a star."""
    positions = _layer_positions(sorted({s.layer for scores in probes.values() for s in scores}))
    shift = 0.09 * (len(probes) > 1)
    for i, (probe, scores) in enumerate(probes.items()):
        name, color, marker = _probe_style(probe)
        offset = shift * (2 * i - (len(probes) - 1)) / 2
        ordered = sorted(scores, key=lambda s: layer_order(s.layer))
        depth = [s for s in ordered if s.layer not in COMBINATIONS]
        combined = [s for s in ordered if s.layer in COMBINATIONS]
        x = np.array([positions[s.layer] + offset for s in depth])
        ax.fill_between(x, [s.low for s in depth], [s.high for s in depth], color=color, alpha=0.15, lw=0)
        ax.plot(x, [s.macro_f1 for s in depth], marker=marker, ms=5, color=color, lw=1.6, label=name)
        if combined:
            ax.errorbar(
                [positions[s.layer] + offset for s in combined],
                [s.macro_f1 for s in combined],
                yerr=[[s.macro_f1 - s.low for s in combined], [s.high - s.macro_f1 for s in combined]],
                fmt=marker,
                ms=5,
                color=color,
                capsize=3,
                lw=1.2,
            )
        pick = next((s for s in ordered if s.layer == picks.get(probe)), None)
        if pick is not None:
            ax.plot(
                positions[pick.layer] + offset,
                pick.macro_f1,
                "*",
                ms=17,
                color=color,
                mec="black",
                mew=0.8,
                zorder=5,
            )
    if any(layer in COMBINATIONS for layer in positions):
        first = min(x for layer, x in positions.items() if layer in COMBINATIONS)
        ax.axvline(first - (1 + GAP) / 2, color="0.6", ls=":", lw=1)
    ax.set_xticks(list(positions.values()), list(positions), fontsize=9)
    ax.set_title(key, loc="left", fontsize=11)
    ax.set_ylabel("test macro-F1", fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def plot_layers(
    panels: Mapping[str, Mapping[str, Sequence[LayerScore]]],
    best: Mapping[str, Mapping[str, str]],
    path: Path,
    title: str,
) -> None:
    """Macro-F1 by hidden layer, one panel per model x pooling (``panels[key][probe]``), each probe a
    line with its 95% interval; ``best[key][probe]`` is the layer inner CV picked, drawn as a star."""
    plt = _pyplot()
    if not panels:
        raise ValueError("no layer sweep to draw")
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(11, 2.9 * len(panels) + 1.0), dpi=130, squeeze=False, layout="constrained"
    )
    for ax, (key, probes) in zip(axes[:, 0], panels.items(), strict=True):
        _layer_panel(ax, key, probes, best.get(key, {}))
    axes[-1, 0].set_xlabel("hidden layer (then the combinations: mean of the last four, of first and last)")
    probes = list(dict.fromkeys(probe for probes in panels.values() for probe in probes))
    handles = [
        plt.Line2D([], [], color=_probe_style(p)[1], marker=_probe_style(p)[2], label=_probe_style(p)[0])
        for p in probes
    ]
    handles.append(
        plt.Line2D([], [], color="0.5", marker="*", ms=13, mec="black", ls="", label="inner CV's pick")
    )
    handles.append(plt.Rectangle((0, 0), 1, 1, color="0.5", alpha=0.2, label="95% interval (test rows)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, fontsize=9)
    fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    save_png(fig, path)


def _curve_colors(series: Sequence[CurveSeries]) -> list[str]:
    runs, baselines = iter(PALETTE * 4), iter(BASELINE_COLORS * 4)
    return [next(baselines) if one.kind == "baseline" else next(runs) for one in series]


def plot_curves(series: Sequence[CurveSeries], path: Path, title: str) -> None:
    """Test macro-F1 against labelled training tweets (log axis): a line per system through the mean
    over resamples, a band from their lowest to their highest, baselines dashed. The legend lists the
    systems in the order of their last point, so it reads like the right end of the plot."""
    plt = _pyplot()
    if not series:
        raise ValueError("no learning curve to draw")
    fig, ax = plt.subplots(figsize=(10.5, 6), dpi=130, layout="constrained")
    for one, color in zip(series, _curve_colors(series), strict=True):
        means = [float(np.mean(values)) for values in one.scores]
        style = "--" if one.kind == "baseline" else "-"
        ax.fill_between(
            one.sizes,
            [min(v) for v in one.scores],
            [max(v) for v in one.scores],
            color=color,
            alpha=0.13,
            lw=0,
        )
        ax.plot(one.sizes, means, style, marker="o", ms=4, lw=1.8, color=color, label=one.name)
    ax.set_xscale("log")
    sizes = sorted({size for one in series for size in one.sizes})
    ax.set_xticks(sizes, [f"{size:,}" for size in sizes], fontsize=9)
    ax.minorticks_off()
    ax.set_xlabel("labelled training tweets (log scale)", fontsize=10)
    ax.set_ylabel("test macro-F1", fontsize=10)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    last = {one.name: float(np.mean(one.scores[-1])) for one in series}
    order = sorted(range(len(labels)), key=lambda i: -last[labels[i]])
    ax.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        frameon=False,
        fontsize=9,
        title="mean; band: min–max\nover resamples",
        title_fontsize=9,
    )
    ax.set_title(title, fontsize=12)
    save_png(fig, path)


def _marker_area(parameters: int | None, largest: int) -> float:
    """Marker area grows with the square root of the parameters (a 4x larger model, a 2x wider dot)."""
    if not parameters or not largest:
        return 70.0
    return 40.0 + 900.0 * math.sqrt(parameters / largest)


def plot_cost(points: Sequence[CostPoint], front: set[str], path: Path, title: str) -> None:
    """Macro-F1 against throughput (texts/s, log axis), dot area by parameters, baselines as squares;
    the Pareto front joined by a line and its systems named in bold, the others in grey."""
    plt = _pyplot()
    placed = [p for p in points if p.texts_per_second]
    if not placed:
        raise ValueError("no system with a measured throughput to draw")
    largest = max((p.parameters or 0 for p in placed), default=0)
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=130, layout="constrained")
    on = sorted((p for p in placed if p.name in front), key=lambda p: p.texts_per_second or 0.0)
    ax.plot(
        [p.texts_per_second for p in on],
        [p.macro_f1 for p in on],
        color="#4e79a7",
        lw=1.5,
        zorder=1,
        label="Pareto front (nothing both faster and better)",
    )
    for point in placed:
        _cost_point(ax, point, point.name in front, largest)
    ax.set_xscale("log")
    ax.set_xlabel("throughput (texts/s, log scale)", fontsize=10)
    ax.set_ylabel("test macro-F1", fontsize=10)
    ax.xaxis.set_major_formatter(_thousands())
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.12)
    _cost_legend(plt, ax, largest)
    ax.set_title(title, fontsize=12)
    save_png(fig, path)


def _cost_point(ax, point: CostPoint, in_front: bool, largest: int) -> None:
    """One system: its dot (a square for a baseline) and its name just clear of the dot's edge, to the
    right on the front and to the left off it (dominated points lie below and left of the front)."""
    baseline, area = point.kind == "baseline", _marker_area(point.parameters, largest)
    ax.scatter(
        point.texts_per_second,
        point.macro_f1,
        s=area,
        marker="s" if baseline else "o",
        alpha=0.85,
        zorder=2,
        edgecolors="black",
        linewidths=0.6,
        color=("#e15759" if baseline else "#4e79a7") if in_front else "#bab0ac",
    )
    ax.annotate(
        point.name,
        (point.texts_per_second, point.macro_f1),
        xytext=((1 if in_front else -1) * (math.sqrt(area) / 2 + 4), 0),
        textcoords="offset points",
        va="center",
        ha="left" if in_front else "right",
        fontsize=9 if in_front else 8,
        fontweight="bold" if in_front else "normal",
        color="black" if in_front else "0.35",
    )


def _thousands():
    """Tick labels '1,000' rather than '10^3': throughput is read as a number of texts."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}")


def _cost_legend(plt, ax, largest: int) -> None:
    """The front's line, the two kinds of marker, and what marker sizes mean (when parameters are known)."""
    handles = ax.get_legend_handles_labels()[0]
    handles.append(plt.Line2D([], [], marker="o", ls="", color="#4e79a7", mec="black", label="run"))
    handles.append(plt.Line2D([], [], marker="s", ls="", color="#e15759", mec="black", label="baseline"))
    if largest:
        for share in (0.25, 1.0):
            n = int(largest * share)
            size = math.sqrt(_marker_area(n, largest))
            label = f"{n / 1e6:,.0f}M parameters"
            handles.append(
                plt.Line2D([], [], marker="o", ls="", ms=size, color="0.85", mec="0.3", label=label)
            )
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        frameon=False,
        fontsize=9,
        labelspacing=1.6,
        borderpad=1.0,
    )
