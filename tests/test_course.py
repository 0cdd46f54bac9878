"""The course exercises: sentence similarity heatmap and fill-mask with a masked language model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from pipeline.core.errors import EncajesError
from pipeline.core.settings import EmbedSettings
from pipeline.tools.similarity import sentence_similarity
from pipeline.tools.unmask import unmask


def test_similarity_is_the_cosine_of_each_pair_of_sentences(tmp_path, tiny_model):
    """Each cell is the cosine of that pair's own embeddings: not just any symmetric unit-diagonal matrix."""
    from pipeline import embed_texts

    sentences = ["me gusta la playa", "hoy hace calor", "te quiero mucho"]
    result = sentence_similarity(sentences, EmbedSettings(model=str(tiny_model)), tmp_path / "s.png")
    alone = np.stack([embed_texts([s], model=str(tiny_model))[0] for s in sentences])
    np.testing.assert_allclose(result.matrix, alone @ alone.T, atol=1e-5)
    cls = sentence_similarity(sentences, EmbedSettings(model=str(tiny_model), pooling="cls")).matrix
    assert np.abs(cls - result.matrix).max() > 1e-3  # the pooling asked for is the one used
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unmask_fills_each_mask_with_ranked_tokens(tiny_mlm):
    fillings = unmask("hoy hace mucho [MASK] en la [MASK]", model=str(tiny_mlm), top_k=3)
    assert [(f.mask, f.rank) for f in fillings] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    scores = [f.score for f in fillings[:3]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
    assert all(f.token and "[MASK]" not in f.token for f in fillings)
    # each mask is filled on its own: the other one stays visible in every candidate sentence
    assert all(f.sequence.count("[MASK]") == 1 for f in fillings)
    assert fillings[0].sequence.endswith("[MASK]") and fillings[3].sequence.split()[3] == "[MASK]"


def test_unmask_refuses_an_encoder_without_a_fill_mask_head(tiny_model, monkeypatch):
    import pipeline.tools.unmask

    with pytest.raises(EncajesError, match="has no fill-mask head"):
        unmask("hola [MASK]", model=str(tiny_model))
    loads = []
    monkeypatch.setattr(pipeline.tools.unmask, "load_masked_lm", lambda *a: loads.append(a))
    with pytest.raises(EncajesError, match=r"Put \[MASK\]"):
        unmask("sin mascara", model=str(tiny_model))
    assert loads == []  # the text is checked before any model is loaded


def test_course_commands_fail_clearly_and_nonzero(tiny_mlm, tiny_model):
    with pytest.raises(EncajesError, match=r"Put \[MASK\]"):
        unmask("sin mascara", model=str(tiny_mlm))
    runner = CliRunner()
    out = runner.invoke(main, ["unmask", "sin mascara", "--model", str(tiny_mlm), "--json"])
    assert out.exit_code == 1 and "Put [MASK]" in json.loads(out.stdout.splitlines()[0])["error"]
    out = runner.invoke(main, ["unmask", "hola [MASK]", "--model", "./no/such/model"])
    assert out.exit_code == 1 and "no such folder" in out.output and "Traceback" not in out.output
    out = runner.invoke(main, ["similarity", "solo una frase", "-m", str(tiny_model)])
    assert out.exit_code == 1 and "at least two sentences" in out.output
