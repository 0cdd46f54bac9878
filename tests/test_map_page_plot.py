"""The plot stage draws kept fields on its page, and reuses its UMAP projection when only the fields (or
labels) changed: UMAP depends on the embeddings and its settings alone."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline.stages.plot.stage as plot
from pipeline.artifacts.fields import fields_fingerprint
from pipeline.core.settings import UmapSettings
from pipeline.render.map_file import read_map_meta


def add_kept_fields(corpus_path) -> None:
    """What ingest with kept fields writes: the columns after the base ones, with their Arrow types."""
    table = pq.read_table(corpus_path)
    n = table.num_rows
    stamps = pa.array(pd.date_range("2021-06-01", periods=n, freq="h", tz="UTC"), pa.timestamp("us", "UTC"))
    table = table.append_column("created_at", stamps)
    table = table.append_column("lang", pa.array(["es" if i % 3 else None for i in range(n)], pa.string()))
    table = table.append_column("retweet", pa.array([i % 2 == 0 for i in range(n)], pa.bool_()))
    pq.write_table(table, corpus_path)


@pytest.fixture
def planted(tmp_path, sample_csv, tiny_model, monkeypatch):
    """A workdir with one run; the fields hash is read from the corpus file itself (whether or not this
    ingest records one), so editing the file's kept fields is a change the stage sees."""
    from pipeline import Workspace

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), progress=False)
    monkeypatch.setattr(plot, "fields_hash", lambda work: fields_fingerprint(work.corpus))
    calls = []
    real = plot.umap_2d
    monkeypatch.setattr(plot, "umap_2d", lambda *a, **k: calls.append(1) or real(*a, **k))
    return ws, str(tiny_model), calls


def page_data(path) -> dict:
    page = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'type="application/json">(.*?)</script>', page, re.S).group(1))


def test_a_fields_change_redraws_the_page_without_running_umap_again(planted):
    ws, model, calls = planted
    settings = UmapSettings(n_neighbors=4)
    first = plot.plot_run(ws.workdir.root, model, settings=settings)
    assert calls == [1] and not first.projection_reused and page_data(first.html)["fields"] == []
    meta = read_map_meta(first.umap)
    assert meta is not None and meta.key.n_neighbors == 4 and meta.map_labels == settings.map_labels
    before = pd.read_parquet(first.umap)

    add_kept_fields(ws.workdir.corpus)
    second = plot.plot_run(ws.workdir.root, model, settings=settings)
    assert not second.skipped and second.projection_reused and calls == [1]  # UMAP not called again
    assert "stored projection" in "\n".join(second.lines())
    assert pd.read_parquet(second.umap).equals(before)
    fields = {f["name"]: f for f in page_data(second.html)["fields"]}
    assert set(fields) == {"created_at", "lang", "retweet"}
    assert fields["created_at"]["scale"] == "continuous" and fields["lang"]["missing"] == 3
    assert fields["retweet"]["kind"] == "boolean"
    assert plot.plot_run(ws.workdir.root, model, settings=settings).skipped

    other = plot.plot_run(ws.workdir.root, model, settings=UmapSettings(n_neighbors=5))  # UMAP's own setting
    assert calls == [1, 1] and not other.projection_reused
    colours = plot.plot_run(ws.workdir.root, model, settings=UmapSettings(n_neighbors=5, map_labels=3))
    assert calls == [1, 1] and colours.projection_reused and read_map_meta(colours.umap).map_labels == 3
    forced = plot.plot_run(
        ws.workdir.root, model, settings=UmapSettings(n_neighbors=5, map_labels=3), force=True
    )
    assert calls == [1, 1, 1] and not forced.projection_reused


def test_a_stored_map_of_other_rows_or_without_a_key_is_not_reused(planted):
    ws, model, calls = planted
    settings = UmapSettings(n_neighbors=4)
    first = plot.plot_run(ws.workdir.root, model, settings=settings)
    frame = pd.read_parquet(first.umap)
    meta = read_map_meta(first.umap)
    frame.to_parquet(first.umap, index=False)  # the same rows, no key: as an older version wrote it
    assert plot.plot_run(ws.workdir.root, model, settings=settings).skipped
    relabelled = plot.plot_run(ws.workdir.root, model, settings=UmapSettings(n_neighbors=4, map_labels=2))
    assert calls == [1, 1] and not relabelled.projection_reused
    run = plot.find_layer_run(ws.workdir, model, None, plot.LAST_LAYER)
    stage = plot.PlotStage(ws.workdir, run, settings)
    assert stage.stored_projection(meta.key, np.asarray(frame["row_id"])) is not None
    assert stage.stored_projection(meta.key, np.asarray(frame["row_id"])[::-1].copy()) is None
