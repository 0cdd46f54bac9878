"""Fill-mask: the top words a masked language model puts in place of [MASK] (the course's BETO exercise)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import torch

from pipeline.core.errors import EncajesError
from pipeline.encoders.models import resolve_model

MASK_PLACEHOLDER = "[MASK]"
DEFAULT_MLM = "dccuchile/bert-base-spanish-wwm-cased"
MLM_HEAD = re.compile(r"ForMaskedLM|ForPreTraining|WithLMHead")  # architectures that carry a fill-mask head


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
    """Top-k tokens for each [MASK] in ``text`` (written [MASK] whatever the model's own mask token). With
    several masks, each is filled on its own, the others left masked."""
    if MASK_PLACEHOLDER not in text:  # before loading anything: a model takes seconds to load
        raise EncajesError(
            f"Put {MASK_PLACEHOLDER} where a word is missing, e.g. 'Hoy vamos a comer unos [MASK].'"
        )
    tokenizer, network = load_masked_lm(model, trust_remote_code)
    encoded = tokenizer(text.replace(MASK_PLACEHOLDER, tokenizer.mask_token), return_tensors="pt")
    ids = encoded["input_ids"][0]
    positions = (ids == tokenizer.mask_token_id).nonzero().flatten().tolist()
    with torch.inference_mode():
        probabilities = network(**encoded).logits[0].softmax(dim=-1)
    fillings = []
    for m, position in enumerate(positions):
        scores, token_ids = probabilities[position].topk(top_k)
        for rank, (score, token_id) in enumerate(zip(scores.tolist(), token_ids.tolist(), strict=True), 1):
            filled = ids.clone()
            filled[position] = token_id
            token = tokenizer.decode([token_id]).strip()
            fillings.append(Filling(m, rank, token, float(score), _readable(tokenizer, filled)))
    return fillings


def _readable(tokenizer: Any, ids: torch.Tensor) -> str:
    """The sentence with one mask filled: special tokens dropped, the other masks shown as [MASK]."""
    words = tokenizer.convert_ids_to_tokens(ids.tolist())
    dropped = set(tokenizer.all_special_tokens) - {tokenizer.mask_token}
    kept = [MASK_PLACEHOLDER if w == tokenizer.mask_token else w for w in words if w not in dropped]
    return tokenizer.convert_tokens_to_string(kept).strip()


def load_masked_lm(model: str, trust_remote_code: bool) -> tuple[Any, Any]:
    """Tokenizer and masked-LM network, refusing an encoder whose fill-mask head is missing: transformers
    would make one up at random and the words it prints would mean nothing."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    try:
        resolved = resolve_model(model)
    except EncajesError as error:
        if model == DEFAULT_MLM:  # the default itself is what is missing: suggesting it would not help
            raise EncajesError(
                f"The default fill-mask model {DEFAULT_MLM} is not in the local Hugging Face cache and the "
                "hub cannot be reached. Where it can, save it with save_pretrained and pass that folder with "
                "--model, or pass any other masked language model folder."
            ) from None
        raise EncajesError(f"{error} `unmask` needs {_WHAT_WORKS}") from None
    from transformers import AutoConfig
    from transformers.utils import logging as transformers_logging

    architectures = AutoConfig.from_pretrained(resolved.source).architectures or []
    if architectures and not any(MLM_HEAD.search(name) for name in architectures):
        raise EncajesError(  # known from config.json alone: no need to load the weights to refuse
            f"{model!r} has no fill-mask head (it is a {', '.join(architectures)}): its guesses would be "
            f"random. `unmask` needs {_WHAT_WORKS}"
        )
    level = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # its report of missing weights: we say it in one line
    transformers_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.source, trust_remote_code=trust_remote_code)
        network, info = AutoModelForMaskedLM.from_pretrained(
            resolved.source, trust_remote_code=trust_remote_code, output_loading_info=True
        )
    except (OSError, ValueError) as error:
        raise EncajesError(
            f"Could not load a masked language model from {resolved.key!r}: {str(error).splitlines()[0]} "
            f"`unmask` needs {_WHAT_WORKS}"
        ) from None
    finally:
        transformers_logging.set_verbosity(level)
        transformers_logging.enable_progress_bar()
    missing = [key for key in info.get("missing_keys", []) if not key.endswith("position_ids")]
    if missing or tokenizer.mask_token is None:
        raise EncajesError(
            f"{model!r} has no fill-mask head (its weights lack {', '.join(missing[:2]) or 'a mask token'}): "
            f"it is a sentence encoder, so its guesses would be random. `unmask` needs {_WHAT_WORKS}"
        )
    return tokenizer, network.eval()


_WHAT_WORKS = (
    "a model trained for fill-mask: a BERT/RoBERTa masked language model folder (saved with "
    f"save_pretrained) or hub id, e.g. {DEFAULT_MLM}."
)
