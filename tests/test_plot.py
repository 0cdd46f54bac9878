"""UMAP maps: parquet aligned with row ids, a PNG, and an HTML page carrying every tweet; legends readable."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from pipeline.core.settings import UmapSettings
from pipeline.render.figures import display_label, emoji_name
from pipeline.stages.plot.stage import plot_run


def test_labels_read_as_names_where_the_font_cannot_draw_them():
    assert emoji_name("😂") == "face with tears of joy"
    assert emoji_name("🇪🇸") == "flag ES"
    assert emoji_name("❤") == "red heart"
    assert emoji_name("positive") is None and emoji_name("3") is None
    assert display_label("✨") == "sparkles"  # DejaVu Sans has no sparkles glyph
    assert display_label("✨", for_html=True) == "✨ sparkles"
    assert display_label("neutral") == "neutral"


def test_plot_stage_writes_aligned_map_and_pages(tmp_path, sample_csv, tiny_model):
    from pipeline import Workspace

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), progress=False)
    report = plot_run(tmp_path / "w", str(tiny_model), settings=UmapSettings(n_neighbors=4))
    frame = pd.read_parquet(report.umap)
    assert list(frame.columns) == ["row_id", "x", "y", "label"]
    assert frame["row_id"].tolist() == ws.corpus["row_id"].tolist()
    assert frame["label"].tolist() == ws.corpus["label"].tolist()
    assert report.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = report.html.read_text(encoding="utf-8")
    data = json.loads(re.search(r'type="application/json">(.*?)</script>', page, re.S).group(1))
    assert data["text"] == ws.corpus["text"].tolist() and len(data["x"]) == 8
    assert "http" not in page.split("<script")[0]  # self-contained: nothing fetched
    again = plot_run(tmp_path / "w", str(tiny_model), settings=UmapSettings(n_neighbors=4))
    assert again.skipped
    assert pd.read_parquet(again.umap).equals(frame)


def test_umap_graph_is_faiss_knn_with_self_first():
    from pipeline.stages.plot.projection import knn_graph

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 8)).astype(np.float32)
    vectors[7] = vectors[3]  # a duplicate: a tie that must not push a row off its own first slot
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    neighbours, distances = knn_graph(vectors, 5)
    assert (neighbours[:, 0] == np.arange(300)).all() and np.allclose(distances[:, 0], 0, atol=1e-6)
    brute = np.argsort(-(vectors @ vectors.T), axis=1, kind="stable")[:, :5]
    assert all(set(n) == set(b) for n, b in zip(neighbours[[0, 1, 2, 50]], brute[[0, 1, 2, 50]], strict=True))
    assert 3 in neighbours[7] and 7 in neighbours[3]


def test_umap_beyond_fit_rows_fits_a_sample_and_places_the_rest_near_their_neighbours():
    from pipeline.stages.plot.projection import umap_2d

    rng = np.random.default_rng(1)
    centres = rng.standard_normal((3, 16)) * 4
    labels = rng.integers(0, 3, 600)
    vectors = (centres[labels] + rng.standard_normal((600, 16))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    projection = umap_2d(vectors, UmapSettings(n_neighbors=10, fit_rows=200))
    assert projection.fitted_rows == 200 and "place_rest_s" in projection.seconds
    assert projection.xy.shape == (600, 2) and np.isfinite(projection.xy).all()
    # placed rows land with their own cluster: nearest cluster centre in 2-D is their label's
    centres_2d = np.stack([projection.xy[labels == c].mean(axis=0) for c in range(3)])
    nearest = np.argmin(((projection.xy[:, None] - centres_2d[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > 0.95


def test_html_map_of_a_large_run_shows_a_sample_with_the_right_texts(
    tmp_path, sample_csv, tiny_model, monkeypatch
):
    import pipeline.render.umap_page as umap_page
    import pipeline.stages.plot.stage as plot
    from pipeline import Workspace

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), progress=False)
    monkeypatch.setattr(umap_page, "HTML_MAX_POINTS", 5)
    report = plot.plot_run(tmp_path / "w", str(tiny_model), settings=UmapSettings(n_neighbors=4))
    assert len(pd.read_parquet(report.umap)) == 8  # the parquet map keeps every row
    page = report.html.read_text(encoding="utf-8")
    data = json.loads(re.search(r'type="application/json">(.*?)</script>', page, re.S).group(1))
    assert len(data["x"]) == len(data["text"]) == 5 and data["total"] == 8
    text_of = dict(zip(ws.corpus["row_id"], ws.corpus["text"], strict=True))
    assert data["text"] == [text_of[row] for row in data["row_id"]]  # each point carries its own tweet
    assert sum(data["counts"]) == 8  # the legend counts the whole corpus
    assert "Showing a random 5 of 8 tweets" in page
