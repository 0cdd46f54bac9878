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
