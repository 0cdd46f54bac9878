"""Layer sweeps: every requested hidden layer pooled from one forward pass, each its own run; the last
layer's run is the plain embed, bit for bit; each layer equals an independent extraction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.artifacts.runs import find_run
from pipeline.artifacts.store import load_embeddings
from pipeline.core.errors import EncajesError
from pipeline.core.layers import canonical_layer, expand_layers, hidden_states, layer_order
from pipeline.core.layout import Workdir
from pipeline.core.settings import EmbedSettings
from pipeline.stages.embed.stage import LayersReport, embed_corpus
from pipeline.stages.ingest.stage import ingest
from tests.conftest import SAMPLE_ROWS


def test_layer_names_are_canonical() -> None:
    assert expand_layers("all", 4) == ["1", "2", "3", "last"]
    assert expand_layers("-2, 6,last4,first-last,-1,12", 12) == ["11", "6", "last4", "first-last", "last"]
    assert expand_layers("0,all", 2) == ["0", "1", "last"]
    assert hidden_states("last4", 12) == (9, 10, 11, 12)
    assert hidden_states("first-last", 12) == (1, 12)
    assert hidden_states("3", 12) == (3,)
    assert sorted(["last", "first-last", "10", "2", "last4"], key=layer_order) == [
        "2",
        "10",
        "last",
        "last4",
        "first-last",
    ]
    with pytest.raises(EncajesError, match="does not exist"):
        canonical_layer("13", 12)
    with pytest.raises(EncajesError, match="from the end"):
        canonical_layer("-2", None)
    with pytest.raises(EncajesError, match="--layers"):
        EmbedSettings(layers="last,penultimate")


def _independent(model_dir: Path, texts: list[str], layer_sets: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Mean pooling of hidden states from transformers directly (``output_hidden_states=True``)."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    out = []
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        states = model(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = [(state * mask).sum(1) / mask.sum(1) for state in states]
        for indices in layer_sets:
            vectors = torch.stack([pooled[i] for i in indices]).mean(0)
            out.append(torch.nn.functional.normalize(vectors, dim=-1).numpy())
    return out


def test_sweep_writes_one_run_per_layer_and_the_last_is_the_plain_run(
    tmp_path: Path, sample_csv: Path, tiny_model: Path
) -> None:
    work = tmp_path / "w"
    ingest([sample_csv], work)
    plain = embed_corpus(work, EmbedSettings(model=str(tiny_model)), progress=False)
    plain_vectors = load_embeddings(plain.embeddings).vectors.copy()
    sweep = embed_corpus(
        work, EmbedSettings(model=str(tiny_model), layers="all,0,first-last"), force=True, progress=False
    )
    assert isinstance(sweep, LayersReport)
    assert [run.layer for run in sweep.runs] == ["1", "last", "0", "first-last"]
    # the last layer from the sweep is the plain run, bit for bit, in the same folder
    last = find_run(Workdir.at(work), str(tiny_model), "mean")
    assert np.array_equal(load_embeddings(last.paths.embeddings).vectors, plain_vectors)
    texts = [row[1] for row in SAMPLE_ROWS]
    expected = _independent(tiny_model, texts, [(1,), (2,), (0,), (1, 2)])
    for layer, want in zip(["1", "last", "0", "first-last"], expected, strict=True):
        run = find_run(Workdir.at(work), str(tiny_model), "mean", layer)
        assert run.layer == layer and run.embed.layer_count == 2
        got = load_embeddings(run.paths.embeddings).vectors
        np.testing.assert_allclose(got, want, atol=2e-5)
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert Path(find_run(Workdir.at(work), str(tiny_model), "mean", "1").paths.root).name.endswith("__layer1")
    # a rerun is fresh for every layer, and asking for a new layer computes only that one
    again = embed_corpus(
        work, EmbedSettings(model=str(tiny_model), layers="all,0,first-last"), progress=False
    )
    assert all(run.skipped for run in again.runs)
    same = embed_corpus(work, EmbedSettings(model=str(tiny_model), layers="1,-3"), progress=False)
    assert [(run.layer, run.skipped) for run in same.runs] == [("1", True), ("0", True)]


def test_last4_needs_four_layers(tmp_path: Path, sample_csv: Path, tiny_model: Path) -> None:
    ingest([sample_csv], tmp_path / "w")
    with pytest.raises(EncajesError, match="four layers"):
        embed_corpus(tmp_path / "w", EmbedSettings(model=str(tiny_model), layers="last4"), progress=False)


def test_sweep_shards_resume_per_layer(tmp_path: Path, sample_csv: Path, tiny_model: Path) -> None:
    """Several layers in chunks of 3 rows: the same vectors as in one chunk."""
    work = tmp_path / "w"
    ingest([sample_csv], work)
    settings = EmbedSettings(model=str(tiny_model), layers="1,last", chunk_rows=3)
    embed_corpus(work, settings, progress=False)
    chunked = load_embeddings(find_run(Workdir.at(work), str(tiny_model), "mean", "1").paths.embeddings)
    embed_corpus(work, EmbedSettings(model=str(tiny_model), layers="1,last"), force=True, progress=False)
    whole = load_embeddings(find_run(Workdir.at(work), str(tiny_model), "mean", "1").paths.embeddings)
    np.testing.assert_allclose(chunked.vectors, whole.vectors, atol=1e-6)


def test_compare_sweeps_layers_and_reports_inner_cv_pick(
    tmp_path: Path, sample_csv: Path, tiny_model: Path
) -> None:
    from pipeline.core.layout import ReportPaths
    from pipeline.core.settings import ProbeSettings, UmapSettings
    from pipeline.report.compare import CompareSpec, compare
    from pipeline.report.document import write_report

    work = tmp_path / "w"
    ingest([Path(__file__).parents[1] / "data" / "sample_tweets.csv"], work)  # enough rows to tune C, k
    spec = CompareSpec(
        models=(str(tiny_model),),
        embed={"layers": "all,0"},
        probe=ProbeSettings(bootstrap=200),
        umap=UmapSettings(n_neighbors=4),
        plots=False,
        curves=False,
        combined=False,
    )
    result = compare(work, spec, progress=False)
    assert [run.layer for run in result.runs] == ["1", "last", "0"]
    for probe in ("logistic", "knn"):
        cv = {run.layer: run.scores(probe).choice.best_cv for run in result.runs}
        picked = [run.layer for run in result.runs if probe in run.picked_for]
        assert len(picked) == 1 and cv[picked[0]] == max(cv.values())  # the pick is inner CV's best
        tested = {name for row in result.pairs[probe] for name in (row["a"], row["b"])}
        in_pairs = [r for r in result.runs if r.in_pairs(probe)]
        assert len(tested - {"TF-IDF baseline"}) == len(in_pairs)  # the last layer and the pick only
    assert result.findings and "inner CV picks" in result.findings[0]
    report = write_report(result, ReportPaths(tmp_path / "report"))
    assert (tmp_path / "report" / "layers.png").stat().st_size > 10_000
    assert "## Hidden layers" in Path(report["markdown"]).read_text(encoding="utf-8")


def test_embed_texts_at_one_layer_equals_that_layers_run(
    tmp_path: Path, sample_csv: Path, tiny_model: Path
) -> None:
    from pipeline.api import embed_texts

    work = tmp_path / "w"
    ingest([sample_csv], work)
    embed_corpus(work, EmbedSettings(model=str(tiny_model), layers="1"), progress=False)
    stored = load_embeddings(find_run(Workdir.at(work), str(tiny_model), "mean", "1").paths.embeddings)
    texts = [row[1] for row in SAMPLE_ROWS]
    np.testing.assert_allclose(embed_texts(texts, str(tiny_model), layers="1"), stored.vectors, atol=1e-5)
    with pytest.raises(EncajesError, match="one layer at a time"):
        embed_texts(texts, str(tiny_model), layers="all")
