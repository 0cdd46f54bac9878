"""The encoder: pooling ignores padding, CLS is token 0, vectors are unit length and in input order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.core.errors import EncajesError
from pipeline.core.settings import EmbedSettings
from pipeline.encoders.cpu_kernels import PackedLinear, fuse_gelus, onednn_available, pack_linears
from pipeline.encoders.loading import load_encoder, resolve_settings

TEXTS = [
    "hola",
    "me gusta la playa y el sol pero hoy hace mucho frio en la casa de mi perro",
    "te quiero",
    "jaja que risa mucho mucho mucho",
    "gol",
]


def encoder_for(model_path, pooling="mean", **kw):
    return load_encoder(resolve_settings(EmbedSettings(model=str(model_path), pooling=pooling, **kw)))


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_text_embeds_the_same_alone_and_in_a_padded_batch(tiny_model, pooling):
    encoder = encoder_for(tiny_model, pooling)
    batch = encoder.encode(TEXTS, batch_size=len(TEXTS)).vectors  # one batch: short texts are padded
    for i, text in enumerate(TEXTS):
        alone = encoder.encode([text], batch_size=1).vectors[0]  # no padding at all
        np.testing.assert_allclose(batch[i], alone, atol=1e-5)


def test_mean_pooling_averages_only_real_tokens(tiny_model):
    encoder = encoder_for(tiny_model, "mean")
    transformer = encoder.transformer
    ids = transformer.tokenizer(TEXTS[2], return_tensors="pt")
    with torch.inference_mode():
        hidden = transformer.model(**ids)[0][0]
    expected = torch.nn.functional.normalize(hidden.mean(0), dim=0).numpy()
    got = encoder.encode([TEXTS[1], TEXTS[2]], batch_size=2).vectors[1]  # TEXTS[2] padded to TEXTS[1]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_cls_pooling_takes_position_zero(tiny_model):
    encoder = encoder_for(tiny_model, "cls")
    transformer = encoder.transformer
    ids = transformer.tokenizer(TEXTS[1], return_tensors="pt")
    with torch.inference_mode():
        hidden = transformer.model(**ids)[0][0]
    expected = torch.nn.functional.normalize(hidden[0], dim=0).numpy()
    np.testing.assert_allclose(encoder.encode([TEXTS[1]]).vectors[0], expected, atol=1e-5)


def test_vectors_have_unit_norm_and_input_order(tiny_model):
    encoder = encoder_for(tiny_model)
    result = encoder.encode(TEXTS, batch_size=2)  # sorted by length inside, several batches
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([encoder.encode([t]).vectors[0] for t in TEXTS])
    np.testing.assert_allclose(result.vectors, one_by_one, atol=1e-5)
    assert result.vectors.dtype == np.float32


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_pooling_by_hand_from_the_token_embeddings_of_a_padded_batch(tiny_model, pooling):
    """mean: the mask-weighted mean of the transformer's token embeddings (padding positions hold
    non-zero states, so an unmasked mean would differ); cls: the first token's state; both L2-normalised."""
    encoder = encoder_for(tiny_model, pooling)
    transformer = encoder.transformer
    input_ids, mask = transformer.collate(transformer.tokenize(TEXTS)[0])
    with torch.inference_mode():
        tokens = transformer.forward(input_ids, mask).float().numpy()  # (texts, longest, dim)
    mask = mask.numpy().astype(np.float32)[:, :, None]
    padded = mask.min(axis=(1, 2)) == 0
    assert padded.sum() >= 3  # most texts are shorter than the longest

    def unit(vectors: np.ndarray) -> np.ndarray:
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    by_hand = unit((tokens * mask).sum(1) / mask.sum(1)) if pooling == "mean" else unit(tokens[:, 0])
    got = encoder.encode(TEXTS, batch_size=len(TEXTS)).vectors
    np.testing.assert_allclose(got, by_hand, atol=1e-5)
    if pooling == "mean":
        unmasked = unit(tokens.mean(1))
        assert np.abs(unmasked[padded] - got[padded]).max() > 1e-2  # the mask is what makes it equal
    else:
        assert np.abs(unit(tokens[:, 1]) - got).max() > 1e-2  # position 0, not just any token


def test_truncation_is_counted(tiny_model):
    encoder = encoder_for(tiny_model, max_length=6)
    result = encoder.encode(["hola", TEXTS[1], TEXTS[3]])
    assert result.truncated == 2


def test_prefix_goes_before_every_text(tiny_model):
    with_prefix = encoder_for(tiny_model, prefix="hola ").encode(["me gusta la playa"]).vectors
    by_hand = encoder_for(tiny_model, prefix="").encode(["hola me gusta la playa"]).vectors
    np.testing.assert_allclose(with_prefix, by_hand, atol=1e-6)


def test_bf16_on_cpu_stays_close_to_fp32(tiny_model):
    fp32 = encoder_for(tiny_model, dtype="fp32").encode(TEXTS).vectors
    bf16 = encoder_for(tiny_model, dtype="bf16").encode(TEXTS).vectors
    assert bf16.dtype == np.float32
    assert (fp32 * bf16).sum(1).min() > 0.99


def test_unknown_pooling_is_a_clear_error():
    with pytest.raises(EncajesError, match="pooling 'max': use one of mean, cls"):
        EmbedSettings(pooling="max")


def test_cuda_without_gpu_is_a_clear_error(tiny_model):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(EncajesError, match="--device cpu"):
        resolve_settings(EmbedSettings(model=str(tiny_model), device="cuda"))


@pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_linear_equals_linear_on_batched_input(dtype):
    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 80).to(dtype).eval()
    x = torch.randn(3, 7, 48, dtype=dtype)
    with torch.inference_mode():
        expected, packed = linear(x).float(), PackedLinear(linear)(x).float()
    assert packed.shape == expected.shape
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(packed, expected, atol=tolerance, rtol=tolerance)


@pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN")
def test_cpu_encoder_with_packed_layers_matches_the_plain_hf_model(tmp_path, sample_csv, tiny_model):
    """The embed report says which CPU speed-ups ran, counts the model's own parameters, and the vectors
    are those of the untouched HF model."""
    from transformers import AutoModel

    from pipeline import Workspace

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    report = ws.embed(model=str(tiny_model), progress=False)
    assert report.settings["cpu_speedups"]["packed_linears"] > 0
    assert report.parameters == sum(p.numel() for p in AutoModel.from_pretrained(tiny_model).parameters())
    texts = ws.corpus["text"].tolist()
    stored = ws.embeddings(model=str(tiny_model)).vectors
    assert (stored * plain_hf_vectors(tiny_model, texts)).sum(1).min() > 0.99999


def plain_hf_vectors(model_path, texts) -> np.ndarray:
    """Mean-pooled, normalised vectors from the untouched HF model (SDPA attention, nn.Linear, GELU)."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_path), AutoModel.from_pretrained(model_path).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.inference_mode():
        tokens = model(**batch)[0]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((tokens * mask).sum(1) / mask.sum(1), dim=-1).numpy()


@pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN")
@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_new", "relu"])
def test_gelu_fused_into_the_gemm_matches_the_plain_hf_model(tmp_path, hidden_act):
    from tests.conftest import write_tiny_bert

    model_path = write_tiny_bert(tmp_path / hidden_act, seed=3, hidden_act=hidden_act)
    encoder = encoder_for(model_path)
    layers = 2
    assert encoder.transformer.speedups["fused_gelus"] == (0 if hidden_act == "relu" else layers)
    assert encoder.transformer.speedups["cpu_attention"] is True
    theirs = plain_hf_vectors(model_path, TEXTS)
    np.testing.assert_allclose(encoder.encode(TEXTS).vectors, theirs, atol=2e-5)


class ActivationFirst(torch.nn.Module):
    """Has ``dense`` and ``intermediate_act_fn`` but applies them the other way round."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = torch.nn.Linear(8, 8)
        self.intermediate_act_fn = torch.nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.intermediate_act_fn(x))


@pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN")
def test_a_fusion_that_changes_the_output_is_undone():
    torch.manual_seed(0)
    module = ActivationFirst().eval()
    x = torch.randn(4, 8)
    with torch.inference_mode():
        expected = module(x)
        assert pack_linears(module) == 1 and fuse_gelus(module) == 0
        torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)
    assert isinstance(module.intermediate_act_fn, torch.nn.GELU)


def test_an_attention_that_changes_the_output_is_not_used(tiny_model, monkeypatch):
    import pipeline.encoders.cpu_kernels as kernels

    right = kernels.cpu_attention

    def ignores_the_mask(module, query, key, value, attention_mask, *args, **kwargs):
        return right(module, query, key, value, None, *args, **kwargs)

    monkeypatch.setattr(kernels, "cpu_attention", ignores_the_mask)
    try:
        encoder = encoder_for(tiny_model)
    finally:
        monkeypatch.undo()
        # the attention registry is global: the next model loaded registers the right one again, and
        # uses it (before any other test's model could meet the broken one)
        again = encoder_for(tiny_model)
    assert encoder.transformer.speedups["cpu_attention"] is False
    theirs = plain_hf_vectors(tiny_model, TEXTS)
    np.testing.assert_allclose(encoder.encode(TEXTS).vectors, theirs, atol=2e-5)
    assert again.transformer.speedups["cpu_attention"] is True
    np.testing.assert_allclose(again.encode(TEXTS).vectors, theirs, atol=2e-5)


def test_bf16_on_a_cpu_without_native_bf16_warns(tmp_path, monkeypatch):
    import torch

    import pipeline.encoders.loading as loading

    plain = tmp_path / "cpuinfo"
    plain.write_text("flags\t: fpu sse2 avx2 avx512f\n", encoding="utf-8")
    assert loading.cpu_has_native_bf16(plain) is False
    native = tmp_path / "cpuinfo2"
    native.write_text("flags\t: avx512f avx512_bf16 amx_bf16\n", encoding="utf-8")
    assert loading.cpu_has_native_bf16(native) is True
    monkeypatch.setattr(loading, "cpu_has_native_bf16", lambda *args: False)
    with pytest.warns(UserWarning, match="far slower than fp32"):
        assert loading.pick_dtype("bf16", torch.device("cpu")) == "bf16"
