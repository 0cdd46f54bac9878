"""Settings -> a loaded encoder: every ``auto``/``None`` in ``EmbedSettings`` decided once, here, for the
embed stage, search queries, similarity, the API and the benchmark alike."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.core.errors import EncajesError
from pipeline.core.layers import expand_layers
from pipeline.core.layout import LAST_LAYER
from pipeline.core.settings import EmbedSettings
from pipeline.encoders.encoder import Encoder
from pipeline.encoders.models import ResolvedModel, choose_pooling, resolve_model
from pipeline.encoders.pooling import Pooling
from pipeline.encoders.transformer import Transformer


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EncajesError(
            "--device cuda was asked for, but torch sees no CUDA GPU: use --device cpu or auto."
        )
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> str:
    """``auto`` is fp32 on CPU (reproducible) and bf16 (or fp16 on older GPUs) on CUDA."""
    if dtype == "auto":
        if device.type != "cuda":
            return "fp32"
        # a Ray driver may decide for GPU workers without a GPU of its own: assume a recent one
        return "bf16" if not torch.cuda.is_available() or torch.cuda.is_bf16_supported() else "fp16"
    if dtype == "fp16" and device.type == "cpu":
        raise EncajesError("fp16 is slow and inexact on CPU: use --dtype fp32 or bf16 there.")
    if dtype == "bf16" and device.type == "cpu" and cpu_has_native_bf16() is False:
        warnings.warn(
            "--dtype bf16 on a CPU without native bf16 (no AVX512-BF16 or AMX): it is emulated and will be "
            "far slower than fp32 here. Use --dtype fp32 (the CPU default).",
            UserWarning,
            stacklevel=2,
        )
    return dtype


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16); None where it cannot be told."""
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass(frozen=True)
class ResolvedSettings:
    """Settings with every ``auto``/``None`` decided: what the manifest records."""

    model: ResolvedModel
    pooling: str
    max_length: int
    prefix: str
    dtype: str
    device: torch.device
    batch_size: int
    trust_remote_code: bool
    token_budget: int

    def vector_inputs(self) -> dict[str, Any]:
        """The inputs the vectors depend on (the device and batch size only move them by float noise)."""
        return {
            "model": self.model.key,
            "pooling": self.pooling,
            "max_length": self.max_length,
            "prefix": self.prefix,
            "dtype": self.dtype,
        }


def resolve_settings(settings: EmbedSettings, on: torch.device | None = None) -> ResolvedSettings:
    """``on``: the device the encoder will run on when that is not this process's (Ray workers)."""
    model = resolve_model(settings.model, settings.revision)
    device = on or pick_device(settings.device)
    batch_size = settings.batch_size or (256 if device.type == "cuda" else 64)
    return ResolvedSettings(
        model=model,
        pooling=choose_pooling(model.identity, settings.pooling),
        max_length=settings.max_length,
        prefix=model.default_prefix if settings.prefix is None else settings.prefix,
        dtype=pick_dtype(settings.dtype, device),
        device=device,
        batch_size=batch_size,
        trust_remote_code=settings.trust_remote_code,
        token_budget=settings.token_budget or (batch_size * 64 if device.type == "cuda" else 1024),
    )


def model_config(resolved: ResolvedSettings) -> Any:
    """The model's Hugging Face config alone (its dimension, its number of layers): no weights loaded."""
    from transformers import AutoConfig

    pinned = {"revision": resolved.model.revision} if resolved.model.revision else {}
    try:
        return AutoConfig.from_pretrained(
            resolved.model.source, trust_remote_code=resolved.trust_remote_code, **pinned
        )
    except (OSError, ValueError) as error:
        raise EncajesError(
            f"Could not read the config of model {resolved.model.key!r} ({resolved.model.source}): "
            f"{str(error).splitlines()[0]}"
        ) from None


def load_encoder(resolved: ResolvedSettings, layers: tuple[str, ...] | None = None) -> Encoder:
    """``layers``: hidden layers to pool (``Encoder``); None: the last one."""
    transformer = Transformer.load(
        resolved.model, resolved.device, resolved.dtype, resolved.max_length, resolved.trust_remote_code
    )
    return Encoder(transformer, Pooling(resolved.pooling), prefix=resolved.prefix, layers=layers)


def encoder_for(settings: EmbedSettings) -> Encoder:
    """Resolve and load in one step; ``settings.layers`` may name one layer (its vectors then have a
    leading axis of one), several are a sweep for ``encajes embed``."""
    resolved = resolve_settings(settings)
    if settings.layers.strip() == LAST_LAYER:
        return load_encoder(resolved)
    layers = expand_layers(settings.layers, int(model_config(resolved).num_hidden_layers))
    if len(layers) != 1:
        raise EncajesError(
            f"--layers {settings.layers} names {len(layers)} layers: embed texts at one layer at a time "
            "(a sweep of several is `encajes embed --layers`)."
        )
    return load_encoder(resolved, tuple(layers))
