"""Every command reaches a run by its hidden layer: ``--layer 1`` (or ``-2`` from the end) picks the
run ``embed --layers`` wrote, and a search on it embeds its queries at that same layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLE_ROWS

from cli import main


def write_layer_run(work_root: Path, model: Path, layer: str, vectors: np.ndarray, count: int | None) -> Path:
    """A finished embed of ``vectors`` recorded as ``encajes embed --layers`` records one."""
    from pipeline.artifacts.runs import run_paths
    from pipeline.artifacts.store import Embeddings, save_embeddings
    from pipeline.core.hashing import file_sha256
    from pipeline.core.layout import Workdir
    from pipeline.core.manifest import record_stage
    from pipeline.encoders.models import folder_fingerprint

    paths = run_paths(Workdir.at(work_root), str(model), "mean", layer)
    meta = {"model": str(model), "pooling": "mean"}
    save_embeddings(paths.embeddings, Embeddings(vectors, np.arange(len(vectors)), meta))
    inputs = {"model": str(model), "pooling": "mean", "max_length": 128, "prefix": "", "dtype": "fp32",
              "weights": folder_fingerprint(model), "layer": layer}  # fmt: skip
    settings = {} if count is None else {"layer_count": count}
    outputs = {"rows": len(vectors), "dim": int(vectors.shape[1]), "settings": settings}
    record_stage(paths.manifest, "embed", inputs, outputs, embeddings_sha256=file_sha256(paths.embeddings))
    return paths.root


@pytest.fixture(scope="module")
def encoder(tiny_model):
    """The torch encoder that pools layer 1 and the last layer of the tiny model (2 layers)."""
    from pipeline.core.settings import EmbedSettings
    from pipeline.encoders.loading import load_encoder, resolve_settings

    settings = EmbedSettings(model=str(tiny_model), pooling="mean", dtype="fp32", device="cpu")
    return load_encoder(resolve_settings(settings), layers=("1", "last"))


@pytest.fixture
def layered(tmp_path, sample_csv, tiny_model, encoder):
    """A workdir with the tiny model's last-layer run and its layer-1 run (which recorded 2 layers)."""
    from pipeline.stages.ingest.stage import ingest

    work = tmp_path / "w"
    ingest([sample_csv], work)
    layer1, last = encoder.encode([text for _, text, _, _ in SAMPLE_ROWS]).vectors
    folders = {"1": write_layer_run(work, tiny_model, "1", layer1, 2)}
    folders["last"] = write_layer_run(work, tiny_model, "last", last, None)  # an older run: no count
    return work, folders


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_probe_with_layer_probes_that_runs_folder(layered, tiny_model):
    work, folders = layered
    out = invoke(
        "probe", "-w", work, "-m", tiny_model, "--layer", "1", "--k", 1, "--C", 1, "--bootstrap", 100
    )
    assert out.exit_code == 0, out.output
    assert (folders["1"] / "probe.json").exists() and not (folders["last"] / "probe.json").exists()


def test_a_layer_from_the_end_resolves_through_the_recorded_layer_count(layered, tiny_model):
    work, folders = layered
    out = invoke("index", "-w", work, "-m", tiny_model, "--layer", "-2", "--json")
    assert out.exit_code == 0, out.output
    assert Path(json.loads(out.stdout)["index"]).parent == folders["1"]
    assert not (folders["last"] / "index.faiss").exists()
    out = invoke(
        "probe", "-w", work, "-m", tiny_model, "--layer", "-2", "--k", 1, "--C", 1, "--bootstrap", 100
    )
    assert out.exit_code == 0, out.output
    assert (folders["1"] / "probe.json").exists()
    out = invoke("index", "-w", work, "-m", tiny_model, "--layer", "-1", "--json")  # -1: the last layer
    assert Path(json.loads(out.stdout)["index"]).parent == folders["last"]


def test_an_unknown_layer_says_which_embed_to_run(layered, tiny_model):
    work, _ = layered
    out = invoke("index", "-w", work, "-m", tiny_model, "--layer", "0")
    assert out.exit_code == 1
    (message,) = [line for line in out.output.splitlines() if line.startswith("Error")]
    assert f"encajes embed --workdir {work} --model {tiny_model} --pooling mean --layers 0" in message
    out = invoke("plot", "-w", work, "-m", tiny_model, "--layer", "all")  # all is no single layer
    assert out.exit_code == 2 and "--layer" in out.output and "last4" in out.output


def test_a_layer_from_the_end_without_a_recorded_count_says_what_to_type(layered, tiny_model):
    work, folders = layered
    (folders["1"] / "manifest.json").unlink()  # only the last-layer run, which recorded no count, is left
    out = invoke("search", "-w", work, "-m", tiny_model, "--layer", "-2", "--id", 0)
    assert out.exit_code == 1
    assert "needs the model's number of layers" in out.output and "encajes embed --layers -2" in out.output


def test_status_lists_both_runs_with_their_titles(layered, tiny_model):
    work, folders = layered
    out = invoke("status", "-w", work, "--json")
    status = json.loads(out.stdout)
    assert set(status["runs"]) == {folders["1"].name, folders["last"].name}
    assert status["titles"][folders["1"].name] == f"{tiny_model} · mean · layer 1"
    assert status["titles"][folders["last"].name] == f"{tiny_model} · mean"
    text = invoke("status", "-w", work).output
    assert "--layer 1" in text and "layer 1)" in text  # its hints pick the layer run


def test_search_with_layer_answers_from_the_layer_run_with_queries_at_that_layer(
    layered, tiny_model, encoder
):
    from pipeline import Workspace

    work, folders = layered
    query = "me gusta la playa"
    out = invoke("search", query, "-w", work, "-m", tiny_model, "--layer", "1", "-k", 8, "--json")
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["run"] == folders["1"].name and result["layer"] == "1"
    assert "fast query encoder" in out.stderr and "using torch" not in out.stderr, out.stderr  # ONNX
    (hits,) = [r["hits"] for r in result["results"]]
    stored = Workspace(work).embeddings(str(tiny_model), "mean", layer="1").vectors
    at_layer = encoder.encode([query]).vectors[0, 0]
    expected = stored[[hit["row_id"] for hit in hits]] @ at_layer
    np.testing.assert_allclose([hit["score"] for hit in hits], expected, atol=1e-5)
    by_torch = Workspace(work).search(query, k=8, model=str(tiny_model), layer="1")
    assert by_torch["row_id"].tolist() == [hit["row_id"] for hit in hits]
    np.testing.assert_allclose(by_torch["score"].to_numpy(), expected, atol=1e-5)


def test_serve_picks_runs_by_layer_and_names_a_layer_run_apart(layered, tiny_model):
    from pipeline.serve.service import open_runs, served_name

    work, folders = layered
    (only,) = open_runs(work, layers=["-2"])
    assert only.run.paths.root == folders["1"] and served_name(only.run) == f"{tiny_model}@layer1"
    both = open_runs(work, [str(tiny_model)], layers=["last", "1"])
    assert [s.run.layer for s in both] == ["last", "1"] and served_name(both[0].run) == str(tiny_model)
    (last,) = open_runs(work, [str(tiny_model)])  # a --model without --layer: its last layer
    assert last.run.layer == "last"


def test_the_server_answers_a_layer_run_by_its_at_name_with_queries_at_that_layer(
    layered, tiny_model, encoder
):
    from fastapi.testclient import TestClient

    from pipeline.core.serve_settings import ServeSettings
    from pipeline.serve.app import create_app
    from pipeline.serve.service import Service

    work, _ = layered
    service = Service.load(work, ServeSettings(batch_wait_ms=1))
    with TestClient(create_app(service)) as client:
        names = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert names == [str(tiny_model), f"{tiny_model}@layer1"]  # the last layer's run is the default
        info = client.get("/info").json()["runs"][1]
        assert (info["layer"], info["title"]) == ("1", f"{tiny_model} · mean · layer 1")
        body = {"input": ["hola que tal"], "model": f"{tiny_model}@layer1", "encoding_format": "float"}
        vector = client.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]
        np.testing.assert_allclose(vector, encoder.encode(["hola que tal"]).vectors[0, 0], atol=1e-5)
        found = client.post("/search", json={"query": "hola", "k": 3, "model": f"{tiny_model}@layer1"})
        assert found.status_code == 200 and found.json()["model"] == f"{tiny_model}@layer1"
