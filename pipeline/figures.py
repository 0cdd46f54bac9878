"""Figures: UMAP scatter (PNG), confusion matrices and similarity heatmaps, with legends people can read.

Labels that are emojis are shown with their Unicode name, plus the emoji itself where the plotting font
can draw it, so a legend is readable on any machine. Browsers draw every emoji, so HTML shows them.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.atomic import write_atomic

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


def display_label(label: str, for_html: bool = False) -> str:
    """A legend entry people can read: the emoji where it can be drawn, and its name."""
    name = emoji_name(label)
    if name is None:
        return label
    drawable = for_html or all(ord(ch) in _font_charmap() or ord(ch) in INVISIBLE for ch in label)
    return f"{label} {name}" if drawable else name


def label_colors(labels: list[str]) -> dict[str, str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    if len(labels) <= 20:
        return {label: to_hex(cmap(i)) for i, label in enumerate(labels)}
    hues = colormaps["hsv"](np.linspace(0, 1, len(labels), endpoint=False))
    return {label: to_hex(c) for label, c in zip(labels, hues, strict=True)}


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


def ordered_labels(labels: pd.Series) -> list[str]:
    """Most frequent first, so the legend reads like the data."""
    return labels.value_counts().index.astype(str).tolist()


def plot_umap_png(frame: pd.DataFrame, title: str, target: Path) -> None:
    """A scatter that stays legible from 200 to 100k+ points: small rasterised dots, shuffled draw order."""
    plt = _pyplot()

    n = len(frame)
    labels = label_names(frame)
    order = ordered_labels(labels)
    colors = label_colors(order)
    shuffled = np.random.default_rng(0).permutation(n)
    size = float(np.clip(30000 / max(n, 1), 0.3, 30))
    alpha = 0.9 if n < 5000 else 0.5
    fig, ax = plt.subplots(figsize=(10, 7.5), dpi=150)
    ax.scatter(
        frame["x"].to_numpy()[shuffled],
        frame["y"].to_numpy()[shuffled],
        c=[colors[label] for label in labels.to_numpy()[shuffled]],
        s=size,
        alpha=alpha,
        linewidths=0,
        rasterized=True,
    )
    counts = labels.value_counts()
    handles = [
        plt.Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=7,
            color=colors[label],
            label=f"{display_label(label)} ({counts[label]:,})",
        )
        for label in order
    ]
    ax.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
        fontsize=8,
        title="label",
        title_fontsize=9,
    )
    ax.set_title(f"{title}  ·  {n:,} tweets  ·  UMAP (cosine)", fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.tight_layout()
    save_png(fig, target)


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


def plot_confusions(results: dict[str, dict[str, Any]], title: str, target: Path) -> None:
    """Row-normalised confusion matrices (recall per true class), one panel per probe."""
    plt = _pyplot()

    panels = list(results.items())
    n_labels = len(panels[0][1]["labels"])
    side = max(4.5, 0.42 * n_labels + 2)
    fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels), side), dpi=120, squeeze=False)
    for ax, (name, result) in zip(axes[0], panels, strict=True):
        cm = np.asarray(result["confusion"], dtype=float)
        rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        names = [display_label(label) for label in result["labels"]]
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: macro-F1 {result['macro_f1']:.3f}, acc {result['accuracy']:.3f}", fontsize=9)
        if n_labels <= 12:
            _annotate(ax, cm, lambda v: f"{int(v)}", dark=rates > 0.5, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, target)


def plot_similarity(sentences: list[str], matrix: np.ndarray, title: str, target: Path) -> None:
    """Annotated cosine-similarity heatmap of a few sentences."""
    import textwrap

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
