"""Figures: confusion matrices and similarity heatmaps (the UMAP map is ``map_figure``'s), with legends
people can read.

Labels that are emojis are shown with their Unicode name, plus the emoji itself where the plotting font
can draw it, so a legend is readable on any machine. Browsers draw every emoji, so HTML shows them.
"""

from __future__ import annotations

import functools
import textwrap
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.atomic import write_atomic
from pipeline.render.confusions import OTHER, TOP_CLASSES, predicted_classes, restricted_confusion

INVISIBLE = {0xFE0F, 0xFE0E, 0x200D}
CLDR_NAMES = {"❤": "red heart", "❤️": "red heart"}  # where Unicode's character name reads oddly


# --- labels --------------------------------------------------------------------------------------------


@functools.cache
def _font_charmap() -> frozenset[int]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_manager.findfont("DejaVu Sans")).get_charmap())


def emoji_name(label: str) -> str | None:
    """'😂' -> 'face with tears of joy'; None when the label is not made of symbols (e.g. 'positive', '3')."""
    if label in CLDR_NAMES:
        return CLDR_NAMES[label]
    chars = [ch for ch in label if ord(ch) not in INVISIBLE]
    if not chars or any(unicodedata.category(ch)[0] in "LN" for ch in chars):
        return None
    if all(0x1F1E6 <= ord(ch) <= 0x1F1FF for ch in chars):  # regional indicators: a flag
        return "flag " + "".join(chr(ord(ch) - 0x1F1E6 + ord("A")) for ch in chars)
    return " ".join(unicodedata.name(ch, "?").lower() for ch in chars)


def display_label(label: str, for_html: bool = False, names: Mapping[str, str] | None = None) -> str:
    """A legend entry people can read: the emoji where it can be drawn, and its name. ``names`` maps a
    corpus' label codes to their names (``"0" -> "❤"``): the name is shown instead of the code."""
    label = names.get(label, label) if names else label
    name = emoji_name(label)
    if name is None:
        return label if for_html else _spelled_out(label)
    drawable = for_html or all(ord(ch) in _font_charmap() or ord(ch) in INVISIBLE for ch in label)
    return f"{label} {name}" if drawable else name


def _spelled_out(label: str) -> str:
    """Text with symbols the plotting font cannot draw ('💕@s' -> '[two hearts]@s'): no empty boxes."""
    if all(ord(ch) in _font_charmap() or ord(ch) in INVISIBLE for ch in label):
        return label
    return "".join(
        ch
        if ord(ch) in _font_charmap()
        else ""
        if ord(ch) in INVISIBLE
        else f"[{unicodedata.name(ch, '?').lower()}]"
        for ch in label
    )


def _pyplot():
    """matplotlib's pyplot on the Agg backend: files only, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, target: Path) -> None:
    """Write a figure atomically and free it."""
    write_atomic(target, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))
    _pyplot().close(fig)


# --- UMAP ----------------------------------------------------------------------------------------------


def label_names(frame: pd.DataFrame) -> pd.Series:
    """The map's labels as strings, unlabelled rows named."""
    return frame["label"].fillna("(no label)").astype(str)


# --- other figures -------------------------------------------------------------------------------------


def _annotate(ax, values: np.ndarray, fmt, dark: np.ndarray, fontsize: int) -> None:
    """Write each cell's value on a heatmap, white where the cell is dark."""
    for (i, j), value in np.ndenumerate(values):
        ax.text(
            j,
            i,
            fmt(value),
            ha="center",
            va="center",
            fontsize=fontsize,
            color="white" if dark[i, j] else "black",
        )


def plot_confusions(
    results: dict[str, dict[str, Any]], title: str, target: Path, names: Mapping[str, str] | None = None
) -> None:
    """Row-normalised confusion matrices (recall per true class), one panel per probe. Above
    ``TOP_CLASSES`` classes only the largest are drawn, with an "other" column, so cells and ticks stay
    readable; the report's tables hold the rest."""
    if len(next(iter(results.values()))["labels"]) > TOP_CLASSES:
        _plot_top_confusions(results, title, target, names)
        return
    plt = _pyplot()

    panels = list(results.items())
    n_labels = len(panels[0][1]["labels"])
    side = max(4.5, 0.42 * n_labels + 2)
    fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels), side), dpi=120, squeeze=False)
    for ax, (name, result) in zip(axes[0], panels, strict=True):
        cm = np.asarray(result["confusion"], dtype=float)
        rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        ticks = [display_label(label, names=names) for label in result["labels"]]
        ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=8)
        ax.set_yticks(range(len(ticks)), ticks, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: macro-F1 {result['macro_f1']:.3f}, acc {result['accuracy']:.3f}", fontsize=9)
        if n_labels <= 12:
            _annotate(ax, cm, lambda v: f"{int(v)}", dark=rates > 0.5, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, target)


def _clip(text: str, width: int) -> str:
    """Cut by characters, not words: emoji names share their first words ("smiling face with …")."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _plot_top_confusions(
    results: dict[str, dict[str, Any]], title: str, target: Path, names: Mapping[str, str] | None
) -> None:
    """The top classes by support against themselves and "other", cells in percent of the true class."""
    plt = _pyplot()

    panels = [(name, r, restricted_confusion(r["labels"], r["confusion"])) for name, r in results.items()]
    first = panels[0][2]
    k, cell = len(first.labels), 0.33
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(len(panels) * (k + 1) * cell + 4.5, k * cell + 2.7),
        dpi=120,
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    ticks = [_clip(display_label(label, names=names), 30) for label in first.labels]
    support = first.counts.sum(axis=1)
    for ax, (name, result, top) in zip(axes[0], panels, strict=True):
        image = ax.imshow(top.rates, cmap="Blues", vmin=0, vmax=1)
        ax.axvline(k - 0.5, color="0.35", linewidth=1)
        ax.set_xticks(
            range(k + 1), [*ticks, OTHER], rotation=60, ha="right", rotation_mode="anchor", fontsize=9
        )
        ax.set_yticks(range(k), [f"{t} ({n:,})" for t, n in zip(ticks, support, strict=True)], fontsize=9)
        ax.tick_params(length=2)
        ax.set_xlabel("predicted", fontsize=9)
        percent = np.round(top.rates * 100)
        _annotate(ax, percent, lambda v: f"{v:.0f}" if v else "", dark=top.rates > 0.55, fontsize=7)
        ax.set_title(
            f"{name}: macro-F1 {result['macro_f1']:.3f}, acc {result['accuracy']:.3f}\n"
            f"predicts {predicted_classes(result['confusion'])} of {top.n_classes} classes",
            fontsize=9,
        )
    axes[0][0].set_ylabel("true (test rows)", fontsize=9)
    bar = fig.colorbar(image, ax=axes[0].tolist(), shrink=0.6, pad=0.01, format="{x:.0%}")
    bar.set_label("share of the true class's test rows", fontsize=9)
    fig.suptitle(
        f"{title} · top {k} of {first.n_classes} classes by support ({first.covered:.0%} of test rows)\n"
        "each row sums to 100%; 'other' = predicted as one of the other classes",
        fontsize=10,
    )
    save_png(fig, target)


def plot_similarity(sentences: list[str], matrix: np.ndarray, title: str, target: Path) -> None:
    """Annotated cosine-similarity heatmap of a few sentences."""
    plt = _pyplot()

    n = len(sentences)
    names = [textwrap.shorten(s, 40, placeholder="…") for s in sentences]
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * n + 3), max(4, 0.7 * n + 2)), dpi=120)
    image = ax.imshow(matrix, cmap="viridis", vmin=min(0.0, float(matrix.min())), vmax=1)
    ax.set_xticks(range(n), [str(i + 1) for i in range(n)])
    ax.set_yticks(range(n), [f"{i + 1}. {name}" for i, name in enumerate(names)], fontsize=8)
    _annotate(ax, matrix, lambda v: f"{v:.2f}", dark=matrix <= 0.6, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="cosine similarity")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, target)
