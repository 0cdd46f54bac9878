"""Fill-mask: the top words a masked language model puts in place of [MASK] (the course's BETO exercise)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from pipeline.errors import EncajesError
from pipeline.models import resolve_model

MASK_PLACEHOLDER = "[MASK]"
DEFAULT_MLM = "dccuchile/bert-base-spanish-wwm-cased"


@dataclass(frozen=True)
class Filling:
    mask: int  # which [MASK] in the text, from 0
    rank: int
    token: str
    score: float
    sequence: str


@dataclass
class Fillings:
    text: str
    model: str
    fillings: list[Filling]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "model": self.model, "fillings": [asdict(f) for f in self.fillings]}

    def lines(self) -> list[str]:
        return [
            f"[MASK {f.mask + 1}] {f.rank}. {f.token:<15} {f.score:6.3f}   {f.sequence}"
            for f in self.fillings
        ]


def unmask_text(
    text: str, model: str = DEFAULT_MLM, top_k: int = 5, trust_remote_code: bool = False
) -> Fillings:
    """``unmask`` as ``encajes unmask`` prints it."""
    return Fillings(text, model, unmask(text, model, top_k, trust_remote_code))


def unmask(
    text: str, model: str = DEFAULT_MLM, top_k: int = 5, trust_remote_code: bool = False
) -> list[Filling]:
    """Top-k tokens for each [MASK] in ``text`` (written [MASK] whatever the model's own mask token)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    resolved = resolve_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.source, trust_remote_code=trust_remote_code)
        network = AutoModelForMaskedLM.from_pretrained(resolved.source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise EncajesError(
            f"Could not load a masked language model from {resolved.key!r}: {str(error).splitlines()[0]} "
            f"Give a folder or hub id of a model with a fill-mask head (e.g. {DEFAULT_MLM})."
        ) from None
    if tokenizer.mask_token is None:
        raise EncajesError(f"{resolved.key!r} has no mask token: it is not a masked language model.")
    if MASK_PLACEHOLDER not in text:
        raise EncajesError(
            f"Put {MASK_PLACEHOLDER} where a word is missing, e.g. 'Hoy vamos a comer unos [MASK].'"
        )
    encoded = tokenizer(text.replace(MASK_PLACEHOLDER, tokenizer.mask_token), return_tensors="pt")
    positions = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    with torch.inference_mode():
        probabilities = network.eval()(**encoded).logits[0].softmax(dim=-1)
    fillings = []
    for m, position in enumerate(positions):
        scores, ids = probabilities[position].topk(top_k)
        for rank, (score, token_id) in enumerate(zip(scores.tolist(), ids.tolist(), strict=True), start=1):
            token = tokenizer.decode([token_id]).strip()
            filled = encoded["input_ids"][0].clone()
            filled[position] = token_id
            sequence = tokenizer.decode(filled, skip_special_tokens=True)
            fillings.append(Filling(m, rank, token, float(score), sequence))
    return fillings
