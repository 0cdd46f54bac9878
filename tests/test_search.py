"""Search embeds a query exactly as its run embedded the corpus."""

from __future__ import annotations

import numpy as np

from pipeline import Workspace, embed_texts


def test_text_search_embeds_the_query_at_the_corpus_dtype(tmp_path, sample_csv, tiny_model):
    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), dtype="bf16", progress=False)
    query = "me gusta la playa y el sol"
    hits = ws.search(query, k=8, model=str(tiny_model))
    stored = ws.embeddings(model=str(tiny_model))
    by_row = dict(zip(stored.row_ids.tolist(), stored.vectors, strict=True))
    bf16, fp32 = (embed_texts([query], model=str(tiny_model), dtype=d)[0] for d in ("bf16", "fp32"))
    expected = np.array([by_row[row] @ bf16 for row in hits["row_id"]])
    other = np.array([by_row[row] @ fp32 for row in hits["row_id"]])
    assert np.abs(expected - other).max() > 1e-4  # the two precisions give scores the test tells apart
    np.testing.assert_allclose(hits["score"].to_numpy(), expected, atol=1e-6)


def test_queries_use_the_runs_prefix_and_max_length_with_one_encoder(tmp_path, sample_csv, tiny_model):
    from pipeline.search.searcher import Searcher

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), prefix="hola ", max_length=8, progress=False)
    searcher = Searcher.open(str(tmp_path / "w"), str(tiny_model))
    first = searcher.search_texts(["gol"], k=1)
    assert searcher.encoder.prefix == "hola " and searcher.encoder.transformer.max_length == 8
    assert first["text"].tolist() == searcher.search_texts(["gol"], k=1)["text"].tolist()


def test_a_one_off_search_uses_onnx_runtime_without_torch_and_finds_what_torch_finds(
    tmp_path, sample_csv, tiny_model
):
    import json
    import subprocess
    import sys

    from pipeline.search.command import search
    from pipeline.search.searcher import Searcher

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), prefix="hola ", max_length=8, progress=False)
    queries = ["me gusta la playa", "gol gol gol y una fiesta en la noche con musica"]  # the 2nd is truncated
    by_torch = Searcher.open(str(tmp_path / "w"), str(tiny_model)).search_texts(queries, k=8)
    first = search(tmp_path / "w", str(tiny_model), k=8, query=queries[1])  # exports, then answers
    assert first.hits["row_id"].tolist() == by_torch.loc[by_torch["query"] == queries[1], "row_id"].tolist()
    code = (
        "import json, sys; from pipeline.search.command import search; "
        f"r = search({str(tmp_path / 'w')!r}, {str(tiny_model)!r}, k=8, query={queries[0]!r}); "
        "print(json.dumps([r.hits['row_id'].tolist(), r.hits['score'].tolist(), 'torch' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    row_ids, scores, imported_torch = json.loads(done.stdout)
    expected = by_torch[by_torch["query"] == queries[0]]
    assert row_ids == expected["row_id"].tolist() and not imported_torch
    np.testing.assert_allclose(scores, expected["score"].to_numpy(), atol=1e-5)


def test_printed_hits_show_label_names_where_the_corpus_has_them():
    import pandas as pd

    from pipeline.search.command import SearchResult

    hits = pd.DataFrame(
        {
            "query": ["q"],
            "rank": [1],
            "score": [0.9],
            "row_id": [4],
            "id": ["a"],
            "label": ["0"],
            "text": ["hola"],
        }
    )
    printed = "\n".join(SearchResult(hits, "run", 1, False, {"0": "❤"}).lines())
    assert "❤" in printed and "  0  " not in printed
    assert (
        SearchResult(hits, "run", 1, False).to_dict()["results"][0]["hits"][0]["label"] == "0"
    )  # JSON: codes
