"""Model names: aliases resolve to installed folders, hub ids pass through, bad names are clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import EncajesError
from pipeline.core.layout import run_name
from pipeline.core.settings import EmbedSettings
from pipeline.encoders.loading import load_encoder, resolve_settings
from pipeline.encoders.models import resolve_model

SENTENCES = [
    "Hoy hace un día precioso en la playa",
    "Me he caído en el autobús jajaja 😂",
    "Te echo de menos, abuela ❤",
    "The quick brown fox jumps over the lazy dog",
]


def test_hub_id_passes_through_and_paths_resolve(tiny_model, monkeypatch):
    import pipeline.encoders.models

    commit = "0" * 39 + "1"  # as the hub (or the local cache) would answer where it is reachable
    monkeypatch.setattr(pipeline.encoders.models, "hub_revision", lambda *args, **kwargs: commit)
    hub = resolve_model("dccuchile/bert-base-spanish-wwm-cased")
    assert hub.source == "dccuchile/bert-base-spanish-wwm-cased" and hub.revision == commit
    local = resolve_model(str(tiny_model))
    assert Path(local.source) == tiny_model.resolve() and local.is_local


def test_bad_names_are_clear_errors(tmp_path):
    with pytest.raises(EncajesError, match="no such folder"):
        resolve_model("./no/such/model")
    with pytest.raises(EncajesError, match=r"no config\.json"):
        resolve_model(str(tmp_path))


def test_unreachable_hub_model_is_a_clear_error():
    # HF_HUB_OFFLINE=1 (conftest): the hub path is taken and fails fast, as with no network.
    with pytest.raises(EncajesError, match="cannot be loaded from the Hugging Face hub"):
        resolve_settings(EmbedSettings(model="someone/not-cached-model-xyz"))


def test_run_names_are_safe_and_distinct():
    assert run_name("minilm", "mean") == "minilm__mean"
    a, b = run_name("/data/models/a/bert", "cls"), run_name("/data/models/b/bert", "cls")
    assert a != b and "/" not in a and a.endswith("__cls")


def test_minilm_alias_matches_sentence_transformers():
    """The embedded default, through our code path, equals sentence-transformers' own encode."""
    from sentence_transformers import SentenceTransformer

    model = resolve_model("minilm")
    ours = load_encoder(resolve_settings(EmbedSettings(model="minilm", max_length=256))).encode(SENTENCES)
    theirs = SentenceTransformer(model.source, device="cpu").encode(SENTENCES, normalize_embeddings=True)
    cosine = (ours.vectors * theirs).sum(1)
    assert cosine.min() > 0.9999, cosine
    assert np.allclose(np.linalg.norm(ours.vectors, axis=1), 1, atol=1e-5)


def test_models_command_lists_aliases_and_is_honest_about_e5(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from cli import main

    monkeypatch.setenv("ENCAJES_CACHE", str(tmp_path))
    out = CliRunner().invoke(main, ["models", "--json"])
    assert out.exit_code == 0, out.output
    rows = {row["alias"]: row for row in json.loads(out.stdout)["models"]}
    assert (
        rows["minilm"]["installed"] and rows["minilm"]["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    )
    e5 = rows["e5-small"]
    assert e5["prefix"] == "query: " and e5["pooling"] == "mean" and e5["layers"] == 12
    assert "dequantised" in e5["weights_from"] and "4-bit" in e5["weights_from"]
    assert e5["location"] == "converted into the cache on first use"  # listing never converts


def _hub_snapshot(cache, repo: str, commit: str, model_folder) -> None:
    """What the Hugging Face cache holds after downloading ``repo`` at ``commit`` (now its main)."""
    import shutil

    base = cache / f"models--{repo.replace('/', '--')}"
    shutil.copytree(model_folder, base / "snapshots" / commit, dirs_exist_ok=True)
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text(commit)


def test_a_hub_model_updated_on_the_hub_makes_its_run_stale(tmp_path, sample_csv, tiny_model, monkeypatch):
    """Offline, the hub id resolves through the local cache; when its main moves to a new commit, the run
    is stale (status says so), embed redoes it, and the manifest records the commit."""
    import json

    import huggingface_hub.constants

    from pipeline import Workspace
    from pipeline.artifacts.status import workdir_status
    from pipeline.stages.embed.stage import embed_corpus
    from pipeline.stages.ingest.stage import ingest
    from tests.conftest import write_tiny_bert

    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    repo, first, second = "someone/tiny-bert", "a" * 40, "b" * 40
    _hub_snapshot(cache, repo, first, tiny_model)
    ingest([sample_csv], tmp_path / "w")
    before = embed_corpus(tmp_path / "w", EmbedSettings(model=repo), progress=False)
    assert before.settings["model_revision"] == first
    assert embed_corpus(tmp_path / "w", EmbedSettings(model=repo), progress=False).skipped

    _hub_snapshot(cache, repo, second, write_tiny_bert(tmp_path / "newer", seed=7))
    # a query still lands in the run's space: it is embedded by the commit the run was made with
    hit = Workspace(tmp_path / "w").search("me gusta la playa y el sol", k=1, model=repo).iloc[0]
    assert hit["text"] == "me gusta la playa y el sol" and hit["score"] == pytest.approx(1.0, abs=1e-5)
    (run,) = workdir_status(tmp_path / "w").runs.values()
    assert run["embed"] == {
        "state": "stale",
        "why": "the model's main is at a newer commit (local Hugging Face cache)",
    }
    after = embed_corpus(tmp_path / "w", EmbedSettings(model=repo), progress=False)
    assert not after.skipped and after.settings["model_revision"] == second
    manifest = json.loads((after.run_dir / "manifest.json").read_text())
    assert manifest["embed"]["inputs"]["weights"] == f"hub:{repo}@{second}"


def test_an_unknown_name_fails_at_once_with_the_nearest_alias(monkeypatch):
    import huggingface_hub

    from pipeline.core.errors import EncajesError
    from pipeline.encoders.models import resolve_model

    monkeypatch.setattr(huggingface_hub, "is_offline_mode", lambda: True)  # never ask the network here
    with pytest.raises(EncajesError, match="Did you mean 'e5-small'") as error:
        resolve_model("e5small")
    assert "not in the local cache" in str(error.value)
    with pytest.raises(EncajesError) as error:
        resolve_model("someone/no-such-model-here")
    assert "Did you mean" not in str(error.value) and "Aliases: e5-small, minilm" in str(error.value)
