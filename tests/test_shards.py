"""Chunked embedding: same vectors as one pass, token-budget batches, and a killed run resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pipeline.embed as embed_module
from pipeline.embed import EmbedSettings, embed_corpus, load_encoder, resolve_settings
from pipeline.encoder import Encoder, length_batches
from pipeline.ingest import ingest

TEXTS = [
    "hola",
    "me gusta la playa y el sol",
    "te quiero",
    "jaja que risa mucho",
    "gol",
    "hoy hace calor",
    "mi perro y mi gato en la casa",
    "triste",
]


def test_length_batches_cover_every_row_once_within_budget():
    lengths = np.array([5, 40, 12, 40, 3, 7, 25])
    batches = length_batches(lengths, batch_size=3, token_budget=80)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert lengths[rows].tolist() == sorted(lengths.tolist(), reverse=True)  # longest first
    for batch in batches:
        assert len(batch) <= 3 and (len(batch) == 1 or len(batch) * lengths[batch].max() <= 80)


def test_chunks_and_budgets_do_not_change_the_vectors(tiny_model):
    encoder = load_encoder(resolve_settings(EmbedSettings(model=str(tiny_model))))
    whole = encoder.encode(TEXTS, batch_size=8).vectors
    chunks = list(encoder.encode_chunks(TEXTS, batch_size=2, chunk_size=3, token_budget=12))
    assert [c.start for c in chunks] == [0, 3, 6]
    np.testing.assert_allclose(np.concatenate([c.vectors for c in chunks]), whole, atol=1e-5)


def test_killed_embed_resumes_from_its_shards_and_ends_bitwise_equal(
    tmp_path, sample_csv, tiny_model, monkeypatch
):
    monkeypatch.setattr(embed_module, "CHUNK_ROWS", 3)  # 8 rows -> shards at 0, 3, 6
    settings = EmbedSettings(model=str(tiny_model))
    for name in ("clean", "killed"):
        ingest([sample_csv], tmp_path / name)
    embed_corpus(tmp_path / "clean", settings, progress=False)

    original = Encoder.encode_chunks

    def dies_after_two_chunks(self, *args, **kwargs):
        for i, chunk in enumerate(original(self, *args, **kwargs)):
            if i == 2:
                raise KeyboardInterrupt  # as if killed while the third chunk was being written
            yield chunk

    monkeypatch.setattr(Encoder, "encode_chunks", dies_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        embed_corpus(tmp_path / "killed", settings, progress=False)
    run_dir = next((tmp_path / "killed" / "runs").iterdir())
    assert not (run_dir / "embeddings.pt").exists()
    assert len(list((run_dir / "shards").glob("*.npz"))) == 2
    monkeypatch.setattr(Encoder, "encode_chunks", original)

    report = embed_corpus(tmp_path / "killed", settings, progress=False)
    assert report.resumed_shards == 2 and not (run_dir / "shards").exists()
    clean = torch.load(next((tmp_path / "clean" / "runs").iterdir()) / "embeddings.pt", weights_only=True)
    resumed = torch.load(run_dir / "embeddings.pt", weights_only=True)
    assert torch.equal(clean["embeddings"], resumed["embeddings"])
    assert torch.equal(clean["row_ids"], resumed["row_ids"])


def test_shards_of_other_settings_are_not_reused(tmp_path, sample_csv, tiny_model, monkeypatch):
    monkeypatch.setattr(embed_module, "CHUNK_ROWS", 3)
    ingest([sample_csv], tmp_path / "w")
    first = embed_corpus(tmp_path / "w", EmbedSettings(model=str(tiny_model), max_length=8), progress=False)
    shards = first.run_dir / "shards"
    shards.mkdir()
    (shards / "0123456789abcdef-3-000000000000.npz").write_bytes(b"stale")
    second = embed_corpus(tmp_path / "w", EmbedSettings(model=str(tiny_model), max_length=16), progress=False)
    assert second.resumed_shards == 0 and not second.skipped


def test_out_of_memory_halves_the_batch_and_gives_the_same_vectors(tiny_model, monkeypatch):
    encoder = load_encoder(resolve_settings(EmbedSettings(model=str(tiny_model))))
    expected = encoder.encode(TEXTS, batch_size=8).vectors
    real_forward = encoder.transformer.forward

    def small_gpu(input_ids, mask):
        if len(input_ids) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(input_ids, mask)

    monkeypatch.setattr(encoder.transformer, "forward", small_gpu)
    got = encoder.encode(TEXTS, batch_size=8, token_budget=10_000).vectors
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert encoder.oom_splits >= 2
