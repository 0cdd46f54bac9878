"""The course exercises: sentence similarity heatmap and fill-mask with a masked language model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from pipeline.embed import EmbedSettings
from pipeline.errors import EncajesError
from pipeline.similarity import sentence_similarity
from pipeline.unmask import unmask


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory, tiny_model):
    import shutil

    import torch
    from transformers import AutoConfig, BertForMaskedLM

    folder = tmp_path_factory.mktemp("tiny-mlm")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        if (tiny_model / name).exists():
            shutil.copy(tiny_model / name, folder / name)
    torch.manual_seed(1)
    BertForMaskedLM(AutoConfig.from_pretrained(tiny_model)).save_pretrained(folder)
    return folder


def test_similarity_matrix_is_symmetric_with_unit_diagonal(tmp_path, tiny_model):
    sentences = ["me gusta la playa", "hoy hace calor", "te quiero mucho"]
    matrix, _ = sentence_similarity(sentences, EmbedSettings(model=str(tiny_model)), tmp_path / "s.png")
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-5)
    assert (tmp_path / "s.png").exists()


def test_unmask_fills_each_mask_with_ranked_tokens(tiny_mlm):
    fillings = unmask("hoy hace mucho [MASK] en la [MASK]", model=str(tiny_mlm), top_k=3)
    assert [(f.mask, f.rank) for f in fillings] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    scores = [f.score for f in fillings[:3]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
    assert all(f.token and "[MASK]" not in f.token for f in fillings)


def test_unmask_errors_are_clear(tiny_mlm, tiny_model):
    with pytest.raises(EncajesError, match=r"Put \[MASK\]"):
        unmask("sin mascara", model=str(tiny_mlm))
    out = CliRunner().invoke(main, ["unmask", "hola [MASK]", "--model", str(tiny_mlm), "--json"])
    assert out.exit_code == 0 and len(json.loads(out.stdout)["fillings"]) == 5
