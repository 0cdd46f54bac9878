"""Shared fixtures: a tiny random BERT saved as a normal HF folder, and small CSV corpora.

Nothing here touches the network or ../shared: the tiny model goes through the same
``from_pretrained`` path that a hub id or a user's folder takes.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if "ENCAJES_CACHE" not in os.environ:  # not the user's cache; removed when the test run ends
    os.environ["ENCAJES_CACHE"] = tempfile.mkdtemp(prefix="encajes-test-cache-")
    atexit.register(shutil.rmtree, os.environ["ENCAJES_CACHE"], ignore_errors=True)

WORDS = [
    "hola",
    "que",
    "tal",
    "me",
    "gusta",
    "la",
    "playa",
    "el",
    "sol",
    "hoy",
    "hace",
    "calor",
    "frio",
    "mucho",
    "poco",
    "te",
    "quiero",
    "amor",
    "casa",
    "perro",
    "gato",
    "triste",
    "feliz",
    "risa",
    "jaja",
    "fuego",
    "partido",
    "gol",
    "musica",
    "fiesta",
    "noche",
    "dia",
    "de",
    "en",
    "y",
    "a",
    "un",
    "una",
    "es",
    "no",
    "si",
    "con",
    "por",
    "para",
    "los",
    "las",
    "mi",
    "tu",
    "su",
    "lunes",
    "verano",
    "invierno",
]


def write_tiny_bert(folder: Path, seed: int = 0, hidden_act: str = "gelu") -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list("abcdefghijklmnopqrstuvwxyz.,!?")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # transformers 5 takes ``vocab`` (a dict); an unknown ``vocab_file`` kwarg is silently ignored and
    # every word becomes [UNK], so the fixture checks its own tokenizer below.
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    assert tokenizer.unk_token_id not in tokenizer("hola que tal")["input_ids"]
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_act=hidden_act,
    )
    BertModel(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_mlm(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """The tiny BERT's tokenizer with a fill-mask head: what `encajes unmask` needs."""
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


SAMPLE_ROWS = [
    ("a1", "hola que tal", "😂", "train"),
    ("a2", "me gusta la playa y el sol", "🔥", "train"),
    ("a3", "te quiero mucho amor", "❤", "train"),
    ("a4", "hoy hace mucho calor en la playa", "🔥", "train"),
    ("a5", "mi perro y mi gato", "❤", "test"),
    ("a6", "triste lunes de invierno", "😢", "test"),
    ("a7", "jaja que risa", "😂", "test"),
    ("a8", "gol gol gol fiesta en la noche", "🔥", "train"),
]


def write_csv(path: Path, rows: list[tuple[str, ...]], header: str = "id,text,label,split") -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header.split(","))
        writer.writerows(rows)
    return path


@pytest.fixture
def sample_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "tweets.csv", SAMPLE_ROWS)


def write_vectors_run(
    workdir: Path, vectors, model: str = "synthetic/vectors", pooling: str = "mean", **inputs
):
    """A finished embed of ``vectors`` (unit rows, in corpus row order) recorded as ``encajes embed``
    records one, without a model: what index, probe, search and serve read. ``inputs`` override what the
    run says it was embedded with (``dtype="fp16"``: a run made on a GPU)."""
    import numpy as np

    from pipeline.artifacts.runs import run_paths
    from pipeline.artifacts.store import Embeddings, save_embeddings
    from pipeline.core.hashing import file_sha256
    from pipeline.core.layout import Workdir
    from pipeline.core.manifest import record_stage

    paths = run_paths(Workdir.at(workdir), model, pooling)
    meta = {"model": model, "pooling": pooling}
    save_embeddings(paths.embeddings, Embeddings(vectors, np.arange(len(vectors)), meta))
    recorded = {"model": model, "pooling": pooling, "max_length": 128, "prefix": "", "dtype": "fp32",
                "weights": f"synthetic:{model}", **inputs}  # fmt: skip
    outputs = {"rows": len(vectors), "dim": int(vectors.shape[1]), "settings": {}}
    record_stage(paths.manifest, "embed", recorded, outputs, embeddings_sha256=file_sha256(paths.embeddings))
    return paths
