"""Token embeddings -> one unit vector per text."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.core.settings import POOLINGS


@dataclass(frozen=True)
class Pooling:
    """``mean`` averages real tokens only (padding ignored); ``cls`` takes token 0. The mode comes from
    validated settings (``pipeline.core.settings.POOLINGS``)."""

    mode: str = "mean"

    def __post_init__(self) -> None:  # a guard for direct use; settings give the user's message
        if self.mode not in POOLINGS:
            raise ValueError(f"Pooling mode {self.mode!r} is not one of {POOLINGS}")

    def __call__(self, token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = token_embeddings.float()  # pool in fp32 whatever the compute dtype
        if self.mode == "cls":
            return hidden[:, 0]
        if self.mode == "mean":
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        # a mode declared in settings but not written here (and in onnx_query.pool, the query path)
        raise NotImplementedError(f"Pooling mode {self.mode!r} has no torch implementation")


def normalize(vectors: torch.Tensor) -> torch.Tensor:
    """L2-normalise rows, so inner product is cosine similarity."""
    return F.normalize(vectors, p=2, dim=-1)
