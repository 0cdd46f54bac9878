"""Tokenizer + Hugging Face encoder -> token embeddings, on the device and precision asked for."""

from __future__ import annotations

from typing import Any

import torch

from pipeline.core.errors import EncajesError
from pipeline.encoders.cpu_kernels import fuse_gelus, pack_linears, use_cpu_attention
from pipeline.encoders.models import ResolvedModel
from pipeline.encoders.padding import pad_batch

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def attention_for(device: torch.device) -> str:
    """SDPA on GPU; on CPU, for tweet-length inputs (tens of tokens), plain matmul-softmax attention beats
    SDPA's blocked flash kernel (docs/BENCHMARKS.md), and ``Transformer`` then moves models on HF's
    attention interface to ``cpu_attention``."""
    return "sdpa" if device.type == "cuda" else "eager"


class Transformer:
    """Tokenizer + Hugging Face encoder; returns token embeddings."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, max_length: int, device: torch.device) -> None:
        self.parameters = sum(p.numel() for p in model.parameters())  # before packing hides the weights
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.device = device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.speedups: dict[str, int | bool] = {}  # which CPU speed-ups are on (each checked first)
        if device.type == "cpu":
            self.speedups["packed_linears"] = pack_linears(model)
            self.speedups["fused_gelus"] = fuse_gelus(model)
            self.speedups["cpu_attention"] = use_cpu_attention(model, self._padded_probe)

    @classmethod
    def load(
        cls,
        model: ResolvedModel,
        device: torch.device,
        dtype: str,
        max_length: int,
        trust_remote_code: bool = False,
    ) -> Transformer:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            pinned = {"revision": model.revision} if model.revision else {}
            tokenizer = AutoTokenizer.from_pretrained(
                model.source, trust_remote_code=trust_remote_code, **pinned
            )
            network = AutoModel.from_pretrained(
                model.source,
                dtype=TORCH_DTYPES[dtype],
                **pinned,
                attn_implementation=attention_for(device),
                trust_remote_code=trust_remote_code,
            )
        except (OSError, ValueError) as error:
            where = "folder" if model.is_local else "Hugging Face Hub id"
            raise EncajesError(
                f"Could not load model {model.key!r} ({where} {model.source}): {str(error).splitlines()[0]} "
                f"Check the name, or download the model where the Hub is reachable and pass its folder."
            ) from None
        if not getattr(tokenizer, "is_fast", False):
            raise EncajesError(
                f"Model {model.key!r} has no fast tokenizer (tokenizer.json); save one with it."
            )
        network.eval().to(device)
        return cls(network, tokenizer, max_length, device)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def layer_count(self) -> int:
        """Hidden layers of the model (its hidden states are these plus the embedding layer's)."""
        return int(self.model.config.num_hidden_layers)

    def _padded_probe(self) -> torch.Tensor:
        """Token embeddings of a fixed two-row batch, the second row half padding."""
        vocab = int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer))
        input_ids = torch.randint(0, vocab, (2, 8), generator=torch.Generator().manual_seed(0))
        mask = torch.ones_like(input_ids)
        mask[1, 4:] = 0
        input_ids[1, 4:] = self.pad_id
        return self.forward(input_ids.to(self.device), mask.to(self.device))

    def tokenize(self, texts: list[str]) -> tuple[list[list[int]], int]:
        """Token ids per text (truncated to ``max_length``) and how many texts were truncated."""
        encoded = self.tokenizer(
            texts,
            add_special_tokens=True,
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        at_limit = [i for i, ids in enumerate(encoded) if len(ids) >= self.max_length]
        truncated = 0
        if at_limit:  # only texts that hit the limit can have been cut: check those without truncation
            full = self.tokenizer([texts[i] for i in at_limit], add_special_tokens=True)["input_ids"]
            truncated = sum(len(ids) > self.max_length for ids in full)
        return encoded, truncated

    def collate(self, batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad a batch to its own longest row: ids and attention mask, on the model's device."""
        input_ids, mask = pad_batch(batch, self.pad_id)
        return (
            torch.from_numpy(input_ids).to(self.device, non_blocking=True),
            torch.from_numpy(mask).to(self.device, non_blocking=True),
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        """Every hidden state of one forward pass: the embedding layer's, then each layer's. The last is
        the model's own last output (the tensor ``forward`` returns), whatever norm a model adds after
        its layers, so the last layer pooled from a sweep is the plain run's, bit for bit."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        states = list(out.hidden_states)
        states[-1] = out[0]
        return states
