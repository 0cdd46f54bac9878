"""Faster CPU inference for Hugging Face encoders, each change checked against the layer it replaces.

- ``PackedLinear``: PyTorch's eager ``nn.Linear`` on CPU calls MKL's sgemm on the weight as stored and first
  copies the bias into the output (one extra pass over every activation). oneDNN with a weight reordered
  ahead of time into its blocked layout does neither; it is what ``torch.compile``'s CPU freezing emits,
  without the compile.
- GELU fused into the GEMM that feeds it (a oneDNN post-op): the feed-forward activation is the largest
  tensor of a layer, and ATen's bf16 GELU is slow; one pass over it saved.
- ``cpu_attention``: tweets are tens of tokens, so attention is many tiny matrices and its cost is
  softmax, which ATen runs slowly in bf16 on short rows. Scores go to fp32 once, are scaled, masked and
  softmaxed in place, and come back for the value product.
What each one gains is measured in docs/BENCHMARKS.md (``encajes bench embed``), not stated here.

Architecture-agnostic: any model's ``nn.Linear`` is packed, any module computing ``act(dense(x))`` with a
GELU is fused, any model on HF's attention interface gets the attention. Inference only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

CPU_ATTENTION = "encajes_cpu"


def onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class PackedLinear(torch.nn.Module):
    """A frozen ``nn.Linear`` whose weight lives in oneDNN's blocked layout (CPU inference only), with an
    optional GELU applied inside the GEMM (``gelu``: ``"none"`` for the exact erf form, ``"tanh"``)."""

    def __init__(self, linear: torch.nn.Linear, rows_hint: int = 1024) -> None:
        super().__init__()
        weight = linear.weight.detach()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, rows_hint)
        self.bias = None if linear.bias is None else linear.bias.detach()
        self.gelu: str | None = None  # set by ``fuse_gelus``

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if self.gelu is None:
            out = torch.ops.mkldnn._linear_pointwise(flat, self.packed, self.bias, "none", [], "")
        else:
            out = torch.ops.mkldnn._linear_pointwise(flat, self.packed, self.bias, "gelu", [], self.gelu)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        fused = f", gelu={self.gelu}" if self.gelu else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, onednn_packed=True{fused}"


def _close(got: torch.Tensor, expected: torch.Tensor) -> bool:
    """Equal up to the rounding of the dtype: a relative (Frobenius) error within 1e-4 in fp32, 3e-2 in
    bf16/fp16, where rounding adds up over a whole model's layers (e5-small and MiniLM in bf16: 1.2e-2
    between HF's attention and ``cpu_attention``; an attention that ignored the mask: 0.20 and 0.42)."""
    relative = 1e-4 if expected.dtype == torch.float32 else 3e-2
    got, expected = got.float(), expected.float()
    return bool(
        torch.linalg.vector_norm(got - expected) <= relative * torch.linalg.vector_norm(expected) + 1e-6
    )


def pack_linears(model: torch.nn.Module) -> int:
    """Swap every ``nn.Linear`` of a CPU model for a ``PackedLinear`` that gives the same outputs (checked
    on one random input per layer; a layer that differs is left as it was). Returns how many were swapped."""
    if not onednn_available():
        return 0
    swapped = 0
    with torch.inference_mode():
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is not torch.nn.Linear or child.weight.device.type != "cpu":
                    continue
                packed = PackedLinear(child)
                probe = torch.randn(3, child.in_features, dtype=child.weight.dtype)
                if _close(packed(probe), child(probe)):
                    setattr(parent, name, packed)
                    swapped += 1
    return swapped


def gelu_form(activation: torch.nn.Module) -> str | None:
    """oneDNN's name for the GELU an activation module computes (``"none"``: erf, ``"tanh"``), or None."""
    from transformers import activations

    if isinstance(activation, torch.nn.GELU):
        return activation.approximate
    if type(activation) is activations.GELUActivation:  # erf form, in C or in Python
        return "none"
    if type(activation) in (activations.GELUTanh, activations.NewGELUActivation):
        return "tanh"
    return None


def fuse_gelus(model: torch.nn.Module) -> int:
    """In every module that computes ``intermediate_act_fn(dense(x))`` (the BERT family's feed-forward),
    move a GELU into the packed ``dense`` GEMM, if the module's output stays the same on a random input."""
    fused = 0
    with torch.inference_mode():
        for module in list(model.modules()):
            dense, activation = getattr(module, "dense", None), getattr(module, "intermediate_act_fn", None)
            if (
                not isinstance(dense, PackedLinear)
                or dense.gelu
                or not isinstance(activation, torch.nn.Module)
            ):
                continue
            approximate = gelu_form(activation)
            if approximate is None:
                continue
            probe = torch.randn(2, 3, dense.in_features, dtype=dense.packed.dtype)
            expected = module(probe)
            dense.gelu, module.intermediate_act_fn = approximate, _Identity()
            if _close(module(probe), expected):
                fused += 1
            else:
                dense.gelu, module.intermediate_act_fn = None, activation
    return fused


class _Identity(torch.nn.Identity):
    """Where the fused GELU used to be (its own name, so a printed model shows why)."""


def cpu_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention for short sequences on CPU, in HF's attention-interface signature: (batch, heads, tokens,
    head_dim) in, (batch, tokens, heads, head_dim) out. Softmax runs in fp32 whatever the model dtype."""
    if key.shape[1] != query.shape[1] or kwargs.get("softcap") is not None or module.training:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling, dropout, **kwargs)
    scores = torch.matmul(query, key.transpose(2, 3))
    if scores.dtype != torch.float32:
        scores = scores.float()
    scores.mul_(query.size(-1) ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:
        scores.add_(attention_mask)  # HF's additive eager mask: 0 or the dtype's minimum
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def _register_cpu_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(CPU_ATTENTION, cpu_attention)
    AttentionMaskInterface.register(CPU_ATTENTION, eager_mask)


def use_cpu_attention(model: torch.nn.Module, probe: Callable[[], torch.Tensor] | None = None) -> bool:
    """Switch a HF model on the attention interface to ``cpu_attention``, keeping it only if ``probe()``
    (the model's output on a small padded batch) stays the same. True when switched."""
    can_switch = getattr(model, "_can_set_attn_implementation", None)  # private: checked, else no switch
    previous = getattr(model.config, "_attn_implementation", None)
    if can_switch is None or previous is None or not can_switch() or previous == CPU_ATTENTION:
        return False
    _register_cpu_attention()
    with torch.inference_mode():
        try:
            expected = probe() if probe else None
            model.set_attn_implementation(CPU_ATTENTION)
            if expected is None or _close(probe(), expected):
                return True
        except (RuntimeError, ValueError, TypeError):
            pass
    model.set_attn_implementation(previous)
    return False
