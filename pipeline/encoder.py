"""Text -> vectors, as three small modules in the sentence-transformers mould: Transformer, Pooling,
Normalize.

``Encoder`` chains them and adds what makes batch embedding fast and exact: inputs sorted by token length
and padded per batch (little compute spent on padding), pooling that ignores padding, and results put back
in input order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pipeline.cpu_kernels import fuse_gelus, pack_linears, use_cpu_attention
from pipeline.errors import EncajesError
from pipeline.models import ResolvedModel

POOLINGS = ("mean", "cls")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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
    if dtype not in DTYPES:
        raise EncajesError(f"Unknown --dtype {dtype!r}: use auto, fp32, bf16 or fp16.")
    if dtype == "fp16" and device.type == "cpu":
        raise EncajesError("fp16 is slow and inexact on CPU: use --dtype fp32 or bf16 there.")
    return dtype


def attention_for(device: torch.device) -> str:
    """SDPA on GPU; on CPU, for tweet-length inputs (tens of tokens), plain matmul-softmax attention is
    faster than SDPA's blocked flash kernel (measured: +19 % texts/s in bf16, +4 % in fp32, MiniLM), and
    ``Transformer`` then moves models on HF's attention interface to ``cpu_attention``."""
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
        self.revision: str | None = getattr(model.config, "_commit_hash", None)
        on_cpu = device.type == "cpu"  # each speed-up below is checked against what it replaces
        self.packed_linears = pack_linears(model) if on_cpu else 0
        self.fused_gelus = fuse_gelus(model) if on_cpu else 0
        self.cpu_attention = use_cpu_attention(model, self._padded_probe) if on_cpu else False

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
            tokenizer = AutoTokenizer.from_pretrained(model.source, trust_remote_code=trust_remote_code)
            network = AutoModel.from_pretrained(
                model.source,
                dtype=DTYPES[dtype],
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
        width = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return (
            torch.from_numpy(input_ids).to(self.device, non_blocking=True),
            torch.from_numpy(mask).to(self.device, non_blocking=True),
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]


@dataclass(frozen=True)
class Pooling:
    """Token embeddings -> one vector per text. ``mean`` averages real tokens only; ``cls`` takes token 0."""

    mode: str = "mean"

    def __post_init__(self) -> None:
        if self.mode not in POOLINGS:
            raise EncajesError(f"Unknown pooling {self.mode!r}: use one of {', '.join(POOLINGS)}.")

    def __call__(self, token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = token_embeddings.float()  # pool in fp32 whatever the compute dtype
        if self.mode == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def normalize(vectors: torch.Tensor) -> torch.Tensor:
    """L2-normalise rows, so inner product is cosine similarity."""
    return F.normalize(vectors, p=2, dim=-1)


@dataclass
class EncodeResult:
    vectors: np.ndarray  # float32, (n, dim), rows in input order
    seconds: float
    tokens: int
    truncated: int

    @property
    def texts_per_second(self) -> float:
        return len(self.vectors) / self.seconds if self.seconds > 0 else float("inf")

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class EncodedChunk:
    """Vectors for texts[start : start + len(vectors)], in input order."""

    start: int
    vectors: np.ndarray
    tokens: int
    truncated: int


def length_batches(lengths: np.ndarray, batch_size: int, token_budget: int | None) -> list[np.ndarray]:
    """Row groups, longest first, each at most ``batch_size`` rows and (if given) ``token_budget``
    padded tokens: short texts travel in bigger batches, and little compute goes to padding."""
    order = np.argsort(-lengths, kind="stable")  # longest first: an out-of-memory shows up at once
    batches, begin = [], 0
    while begin < len(order):
        width = int(lengths[order[begin]])  # the longest row sets the padded width
        rows = batch_size if token_budget is None else max(1, min(batch_size, token_budget // max(width, 1)))
        batches.append(order[begin : begin + rows])
        begin += rows
    return batches


class Encoder:
    """Transformer -> Pooling -> Normalize, over length-sorted batches, chunk by chunk."""

    def __init__(self, transformer: Transformer, pooling: Pooling, prefix: str = "") -> None:
        self.transformer = transformer
        self.pooling = pooling
        self.prefix = prefix
        self.oom_splits = 0  # batches halved after running out of GPU memory

    @property
    def dim(self) -> int:
        return self.transformer.dim

    def _tokenize_chunk(self, texts: Sequence[str]) -> tuple[list[list[int]], int]:
        return self.transformer.tokenize([self.prefix + text for text in texts])

    def encode_chunks(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        chunk_size: int = 4096,
        token_budget: int | None = None,
        skip: Callable[[int], bool] | None = None,
        progress: bool = False,
        desc: str = "embedding",
    ) -> Iterator[EncodedChunk]:
        """Encode ``texts`` ``chunk_size`` at a time; the next chunk is tokenised in a worker thread while
        the model runs, and only one chunk's tokens are held at once. ``skip(start)`` leaves a chunk out
        (already done)."""
        if batch_size < 1:
            raise EncajesError("--batch-size must be at least 1.")
        starts = [s for s in range(0, len(texts), chunk_size) if not (skip and skip(s))]
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize") as pool,
            torch.inference_mode(),
            tqdm(total=len(texts), unit="text", desc=desc, disable=not progress, leave=False) as bar,
        ):
            bar.update(len(texts) - sum(min(chunk_size, len(texts) - s) for s in starts))
            pending = (
                pool.submit(self._tokenize_chunk, texts[starts[0] : starts[0] + chunk_size])
                if starts
                else None
            )
            for i, start in enumerate(starts):
                token_ids, truncated = pending.result()
                if i + 1 < len(starts):
                    following = starts[i + 1]
                    pending = pool.submit(self._tokenize_chunk, texts[following : following + chunk_size])
                lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
                out = np.empty((len(token_ids), self.dim), dtype=np.float32)
                for rows in length_batches(lengths, batch_size, token_budget):
                    out[rows] = self._embed_rows([token_ids[r] for r in rows])
                    bar.update(len(rows))
                yield EncodedChunk(start, out, int(lengths.sum()), truncated)

    def _embed_rows(self, batch: list[list[int]]) -> np.ndarray:
        """One padded batch -> pooled, normalised vectors. Out of GPU memory: halve the batch and go on
        (rows never depend on their batch-mates, so the result is the same)."""
        try:
            input_ids, mask = self.transformer.collate(batch)
            return normalize(self.pooling(self.transformer.forward(input_ids, mask), mask)).cpu().numpy()
        except torch.OutOfMemoryError:
            if len(batch) == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.oom_splits += 1
            half = len(batch) // 2
            return np.concatenate([self._embed_rows(batch[:half]), self._embed_rows(batch[half:])])

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: bool = False,
        desc: str = "embedding",
        token_budget: int | None = None,
    ) -> EncodeResult:
        """All texts at once, in input order."""
        start = time.perf_counter()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        tokens = truncated = 0
        for chunk in self.encode_chunks(
            texts, batch_size, token_budget=token_budget, progress=progress, desc=desc
        ):
            out[chunk.start : chunk.start + len(chunk.vectors)] = chunk.vectors
            tokens += chunk.tokens
            truncated += chunk.truncated
        return EncodeResult(out, time.perf_counter() - start, tokens, truncated)
