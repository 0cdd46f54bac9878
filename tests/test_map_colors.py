"""UMAP maps stay readable at dozens of labels: the most frequent coloured over one grey group, a view that a
far-off point cannot squeeze, and the same choices in the PNG and the HTML page."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.colors import to_hex, to_rgb

import pipeline.render.map_figure as map_figure
from cli import main
from pipeline.core.errors import EncajesError
from pipeline.core.settings import UmapSettings
from pipeline.render.map_style import OTHER_COLOR, PALETTE, map_groups, map_view, robust_limits
from pipeline.render.umap_page import write_umap_html


def zipf_frame(k: int, n: int = 6000, seed: int = 0) -> pd.DataFrame:
    """Labels "0".."k-1" with Zipf-like frequencies, each its own blob, and one far-off point."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, k + 1)
    codes = rng.choice(k, n, p=weights / weights.sum())
    codes[:k] = np.arange(k)  # every label present
    xy = rng.uniform(-10, 10, (k, 2))[codes] + rng.standard_normal((n, 2))
    xy[-1] = [500.0, 3.0]
    return pd.DataFrame({"row_id": np.arange(n), "x": xy[:, 0], "y": xy[:, 1], "label": codes.astype(str)})


def luminance(color: str) -> float:
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_with_64_labels_only_the_top_are_coloured_and_the_rest_share_one_grey():
    counts = zipf_frame(64)["label"].value_counts()
    groups = map_groups(counts, top=10)
    assert groups.coloured == counts.index[:10].tolist()
    assert [groups.colors[label] for label in groups.coloured] == list(PALETTE[:10])
    assert len(groups.other) == 54 and {groups.colors[label] for label in groups.other} == {OTHER_COLOR}
    assert groups.other_legend() == f"other: 54 labels ({counts.iloc[10:].sum():,})"
    few = map_groups(counts.iloc[:4], top=10)
    assert few.other == [] and OTHER_COLOR not in few.colors.values()  # at most N labels: nothing grey
    assert len(map_groups(counts, top=50).coloured) == len(PALETTE)  # never two labels in one colour


def test_the_palette_is_distinct_and_the_grey_clearly_paler_than_every_colour():
    assert len(set(PALETTE)) == len(PALETTE) >= 20
    assert UmapSettings.__dataclass_fields__["map_labels"].metadata["flag"].max == len(PALETTE)
    assert luminance(OTHER_COLOR) > max(luminance(c) for c in PALETTE) + 0.1


def test_robust_limits_leave_out_a_far_outlier_and_count_it():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(5000), rng.standard_normal(5000)
    assert map_view(x, y).n_outside == 0  # an ordinary cloud keeps its edge in view
    x[7] = 1000.0
    view = map_view(x, y)
    assert view.x1 < 10 and view.n_outside == 1 and view.outside[7]
    cx, cy = view.clamp(x, y)
    assert cx[7] == view.x1 and cy[7] == y[7]  # drawn on the edge, not dropped
    assert robust_limits(np.full(10, 3.0)) == (2.5, 3.5)  # one value: still a view around it


def test_png_draws_the_grey_group_first_with_a_readable_legend_that_names_labels(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(map_figure, "save_png", lambda fig, target: figures.append(fig))
    frame = zipf_frame(64)
    names = {str(i): f"name{i}" for i in range(64)}
    map_figure.plot_umap_png(frame, "t", tmp_path / "m.png", names=names, top=10)
    ax = figures[0].axes[0]
    grey, coloured, edge = ax.collections
    assert {to_hex(c) for c in grey.get_facecolors()} == {OTHER_COLOR}
    assert OTHER_COLOR not in {to_hex(c) for c in coloured.get_facecolors()}
    assert len({to_hex(c) for c in coloured.get_facecolors()}) == 10
    assert len(edge.get_offsets()) == 1 and edge.get_offsets()[0][0] == pytest.approx(ax.get_xlim()[1])
    assert ax.get_xlim()[1] < 100 and ax.get_aspect() == 1.0
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    top = frame["label"].value_counts().index[0]
    assert texts[0].startswith(f"name{top} (") and texts[-2].startswith("other: 54 labels (")
    assert texts[-1] == "1 point outside the view, drawn at the edge" and len(texts) == 12
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 10


def test_html_data_carries_the_other_group_the_view_and_names(tmp_path):
    frame = zipf_frame(64)
    names = {str(i): f"name{i}" for i in range(64)}
    target = tmp_path / "umap.html"
    write_umap_html(frame, ["t"] * len(frame), "t", target, names=names, top=10)
    page = target.read_text(encoding="utf-8")
    data = json.loads(re.search(r'type="application/json">(.*?)</script>', page, re.S).group(1))
    assert len(data["groups"]) == 11
    other = data["groups"][-1]
    assert other["other"] and other["color"] == OTHER_COLOR and other["name"].startswith("other: 54 labels (")
    assert all(data["group"][code] == 10 for code in range(10, 64)) and data["group"][:10] == list(range(10))
    assert data["groups"][0]["name"].startswith("name") and all(n.startswith("name") for n in data["labels"])
    assert data["outside"] == 1 and data["view"]["x1"] < 100
    assert sum(data["counts"]) == len(frame)


def test_map_labels_is_an_option_with_a_floor():
    assert UmapSettings().map_labels == 10
    with pytest.raises(EncajesError, match="--map-labels must be at least 1"):
        UmapSettings(map_labels=0)
    assert "--map-labels" in CliRunner().invoke(main, ["plot", "--help"]).output
