"""The Ray Data engine writes the same embeddings as the local engine (local 2-actor Ray cluster)."""

from __future__ import annotations

import pytest
import torch

from pipeline.core.errors import EncajesError
from pipeline.core.settings import EmbedSettings, EngineSettings
from pipeline.stages.embed.stage import embed_corpus
from pipeline.stages.ingest.stage import ingest
from tests.conftest import SAMPLE_ROWS, write_csv

ray = pytest.importorskip("ray")  # a dev dependency: present in CI, optional for users


@pytest.fixture(scope="module")
def ray_cluster():
    yield
    ray.shutdown()


def _embeddings(workdir):
    (path,) = (workdir / "runs").glob("*/embeddings.pt")
    return torch.load(path, weights_only=True)


def test_ray_engine_equals_local_engine_row_for_row_and_resumes(tmp_path, tiny_model, ray_cluster):
    rows = [(f"r{i}", f"{SAMPLE_ROWS[i % 8][1]} {'x ' * (i % 13)}{i}", "a", "train") for i in range(300)]
    csv_path = write_csv(tmp_path / "t.csv", rows)
    settings = EmbedSettings(model=str(tiny_model), chunk_rows=40)
    for name in ("local", "ray"):
        ingest([csv_path], tmp_path / name)
    embed_corpus(tmp_path / "local", settings, progress=False)
    report = embed_corpus(tmp_path / "ray", settings, progress=False, engine=EngineSettings("ray", workers=2))
    assert report.settings["engine"] == "ray" and report.rows == 300
    local, distributed = _embeddings(tmp_path / "local"), _embeddings(tmp_path / "ray")
    assert torch.equal(local["row_ids"], distributed["row_ids"])
    cosine = (local["embeddings"] * distributed["embeddings"]).sum(dim=1)
    assert cosine.min() >= 0.9999
    # same inputs, other engine: fresh, nothing redone
    again = embed_corpus(tmp_path / "ray", settings, progress=False)
    assert again.skipped


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(EncajesError, match="use one of local, ray"):
        EngineSettings("spark")


def test_ray_engine_sweeps_layers_like_the_local_engine(tmp_path, tiny_model, ray_cluster):
    from pipeline.artifacts.runs import find_run
    from pipeline.artifacts.store import load_embeddings
    from pipeline.core.layout import Workdir

    rows = [(f"r{i}", f"{SAMPLE_ROWS[i % 8][1]} {i}", "a", "train") for i in range(40)]
    csv_path = write_csv(tmp_path / "t.csv", rows)
    settings = EmbedSettings(model=str(tiny_model), chunk_rows=20, layers="0,first-last,last")
    for name in ("local", "ray"):
        ingest([csv_path], tmp_path / name)
    embed_corpus(tmp_path / "local", settings, progress=False)
    embed_corpus(tmp_path / "ray", settings, progress=False, engine=EngineSettings("ray", workers=2))
    for layer in ("0", "first-last", "last"):
        local, distributed = (
            load_embeddings(
                find_run(Workdir.at(tmp_path / w), str(tiny_model), "mean", layer).paths.embeddings
            )
            for w in ("local", "ray")
        )
        assert (local.vectors * distributed.vectors).sum(axis=1).min() >= 0.9999
