"""Chunked embedding: same vectors as one pass, token-budget batches, and a killed run resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.core.settings import EmbedSettings
from pipeline.encoders.encoder import Encoder, length_batches
from pipeline.encoders.loading import load_encoder, resolve_settings
from pipeline.stages.embed.stage import embed_corpus
from pipeline.stages.ingest.stage import ingest

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


def dies_after(chunks: int):
    """``Encoder.encode_chunks`` that stops as if killed while chunk ``chunks + 1`` was being written."""
    original = Encoder.encode_chunks

    def encode_chunks(self, *args, **kwargs):
        for i, chunk in enumerate(original(self, *args, **kwargs)):
            if i == chunks:
                raise KeyboardInterrupt
            yield chunk

    return encode_chunks


def vectors_of(workdir):
    (path,) = (workdir / "runs").glob("*/embeddings.pt")
    return torch.load(path, weights_only=True)


def test_killed_embed_resumes_from_its_shards_and_ends_bitwise_equal(
    tmp_path, sample_csv, tiny_model, monkeypatch
):
    settings = EmbedSettings(model=str(tiny_model), chunk_rows=3)  # 8 rows -> shards at 0, 3, 6
    for name in ("clean", "killed"):
        ingest([sample_csv], tmp_path / name)
    embed_corpus(tmp_path / "clean", settings, progress=False)

    with monkeypatch.context() as patch:
        patch.setattr(Encoder, "encode_chunks", dies_after(2))
        with pytest.raises(KeyboardInterrupt):
            embed_corpus(tmp_path / "killed", settings, progress=False)
    run_dir = next((tmp_path / "killed" / "runs").iterdir())
    assert not (run_dir / "embeddings.pt").exists()
    assert len(list((run_dir / "shards").glob("*.npz"))) == 2

    report = embed_corpus(tmp_path / "killed", settings, progress=False)
    assert report.resumed_shards == 2 and not (run_dir / "shards").exists()
    clean, resumed = vectors_of(tmp_path / "clean"), vectors_of(tmp_path / "killed")
    assert torch.equal(clean["embeddings"], resumed["embeddings"])
    assert torch.equal(clean["row_ids"], resumed["row_ids"])


def test_a_run_interrupted_at_one_max_length_is_not_resumed_at_another(
    tmp_path, sample_csv, tiny_model, monkeypatch
):
    """Both settings write into the same run folder; only the inputs hash in the shard names keeps the
    shards of max_length 4 out of a run at max_length 16."""
    short, full = (EmbedSettings(model=str(tiny_model), chunk_rows=3, max_length=n) for n in (4, 16))
    for name in ("clean", "w"):
        ingest([sample_csv], tmp_path / name)
    embed_corpus(tmp_path / "clean", full, progress=False)
    with monkeypatch.context() as patch:
        patch.setattr(Encoder, "encode_chunks", dies_after(2))
        with pytest.raises(KeyboardInterrupt):
            embed_corpus(tmp_path / "w", short, progress=False)
    assert len(list((tmp_path / "w").glob("runs/*/shards/*.npz"))) == 2

    resumed = embed_corpus(tmp_path / "w", full, progress=False)
    assert resumed.resumed_shards == 0 and not resumed.skipped
    assert torch.equal(vectors_of(tmp_path / "w")["embeddings"], vectors_of(tmp_path / "clean")["embeddings"])


def test_out_of_memory_halves_the_batch_and_gives_the_same_vectors(
    tmp_path, sample_csv, tiny_model, monkeypatch
):
    from pipeline.encoders.transformer import Transformer

    settings = EmbedSettings(model=str(tiny_model), batch_size=8)
    for name in ("clean", "small-gpu"):
        ingest([sample_csv], tmp_path / name)
    embed_corpus(tmp_path / "clean", settings, progress=False)
    real_forward = Transformer.forward

    def small_gpu(self, input_ids, mask):
        if len(input_ids) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(self, input_ids, mask)

    monkeypatch.setattr(Transformer, "forward", small_gpu)
    report = embed_corpus(tmp_path / "small-gpu", settings, progress=False)
    assert report.oom_splits >= 2 and any("out of GPU memory" in line for line in report.lines())
    got, expected = vectors_of(tmp_path / "small-gpu"), vectors_of(tmp_path / "clean")
    np.testing.assert_allclose(got["embeddings"].numpy(), expected["embeddings"].numpy(), atol=1e-5)


def test_killed_layer_sweep_resumes_every_layer_from_its_shards(
    tmp_path, sample_csv, tiny_model, monkeypatch
):
    """The shards of a sweep hold every layer's vectors: a killed sweep resumes them all."""
    from pipeline.artifacts.runs import find_run
    from pipeline.artifacts.store import load_embeddings
    from pipeline.core.layout import Workdir

    settings = EmbedSettings(model=str(tiny_model), chunk_rows=3, layers="0,1,last")
    for name in ("clean", "killed"):
        ingest([sample_csv], tmp_path / name)
    embed_corpus(tmp_path / "clean", settings, progress=False)
    with monkeypatch.context() as patch:
        patch.setattr(Encoder, "encode_chunks", dies_after(2))
        with pytest.raises(KeyboardInterrupt):
            embed_corpus(tmp_path / "killed", settings, progress=False)
    report = embed_corpus(tmp_path / "killed", settings, progress=False)
    assert [run.resumed_shards for run in report.runs] == [2, 2, 2]
    for layer in ("0", "1", "last"):
        clean, resumed = (
            load_embeddings(
                find_run(Workdir.at(tmp_path / w), str(tiny_model), "mean", layer).paths.embeddings
            )
            for w in ("clean", "killed")
        )
        assert np.array_equal(clean.vectors, resumed.vectors)
    assert not any((tmp_path / "killed" / "runs").glob("*/shards"))


def test_a_sweep_says_how_much_it_will_write_past_the_limit(tmp_path, sample_csv, tiny_model, monkeypatch):
    import pipeline.stages.embed.stage as stage

    ingest([sample_csv], tmp_path / "w")
    notes: list[str] = []
    monkeypatch.setattr(stage, "ANNOUNCE_BYTES", 100)  # 8 rows x 32 dims x 4 bytes = 1 KiB a layer
    settings = EmbedSettings(model=str(tiny_model), layers="0,1")
    embed_corpus(tmp_path / "w", settings, progress=False, on_note=notes.append)
    assert len(notes) == 1 and "2 layers x 8 rows will write" in notes[0]
    embed_corpus(tmp_path / "w", settings, progress=False, on_note=notes.append)
    assert len(notes) == 1  # fresh: nothing to write, nothing said
