"""The notebook API runs the same stages as the CLI."""

from __future__ import annotations

import numpy as np

from pipeline import Workspace, embed_texts


def test_workspace_flow(tmp_path, sample_csv, tiny_model):
    ws = Workspace(tmp_path / "w")
    assert ws.ingest([sample_csv]).rows_kept == 8
    report = ws.embed(model=str(tiny_model), pooling="mean", progress=False)
    assert report.rows == 8
    hits = ws.search(["te quiero mucho amor", "gol"], k=2, model=str(tiny_model))
    assert list(hits.columns) == [
        "query",
        "rank",
        "score",
        "row_id",
        "id",
        "label",
        "text",
        "fields",
        "similar",
    ]
    assert hits.iloc[0]["text"] == "te quiero mucho amor" and hits.iloc[0]["label"] == "❤"
    assert len(ws.similar_to(0, k=3, model=str(tiny_model))) == 3
    stored = ws.embeddings(model=str(tiny_model))
    fresh = embed_texts(ws.corpus["text"].tolist(), model=str(tiny_model))
    np.testing.assert_allclose(stored.vectors, fresh, atol=1e-5)
    assert ws.embed(model=str(tiny_model), progress=False).skipped


def test_workspace_run_is_the_whole_chain_and_reruns_skip(tmp_path, sample_csv, tiny_model):
    from pipeline.core.settings import ProbeSettings
    from pipeline.report.compare import CompareSpec

    ws = Workspace(tmp_path / "w")
    spec = CompareSpec(models=(str(tiny_model),), probe=ProbeSettings(bootstrap=100), plots=False)
    first = ws.run([sample_csv], spec=spec, progress=False)
    assert first.ingest.rows_kept == 8 and [index.vectors for index in first.indexes] == [8]
    assert (tmp_path / "w" / "report" / "report.html").exists()
    again = ws.run([sample_csv], spec=spec, progress=False)
    assert again.ingest.skipped and all(
        run.skipped["embed"] and run.skipped["probe"] for run in again.comparison.runs
    )
    assert again.comparison.table().equals(first.comparison.table())


def test_workspace_and_embed_texts_keep_the_encoder_loaded_between_calls(
    tmp_path, sample_csv, tiny_model, monkeypatch
):
    import pipeline.encoders.loading as loading
    from pipeline.api import warm_encoder

    loads = []
    real = loading.encoder_for
    monkeypatch.setattr(loading, "encoder_for", lambda settings: loads.append(settings) or real(settings))
    warm_encoder.cache_clear()
    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), progress=False)
    for query in ("gol", "playa", "amor"):
        ws.search(query, k=2, model=str(tiny_model))
        embed_texts([query], model=str(tiny_model))
    assert len(loads) == 2  # one for the workspace's searcher, one for embed_texts
    embed_texts(["gol"], model=str(tiny_model), pooling="cls")
    assert len(loads) == 3  # other settings, another encoder
