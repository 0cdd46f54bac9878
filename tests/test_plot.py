"""UMAP maps: parquet aligned with row ids, a PNG, and an HTML page carrying every tweet; legends readable."""

from __future__ import annotations

import json
import re

import pandas as pd

from pipeline.plot import UmapSettings, display_label, emoji_name, plot_run


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
