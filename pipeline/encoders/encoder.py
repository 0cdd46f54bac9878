"""Transformer -> Pooling -> normalize over length-sorted batches, chunk by chunk.

Inputs are sorted by token length and padded per batch (little compute spent on padding); results come
back in input order. The next chunk is tokenised in a worker thread while the model runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline.core.errors import EncajesError
from pipeline.core.layers import hidden_states
from pipeline.core.timing import Timings
from pipeline.encoders.pooling import Pooling, normalize
from pipeline.encoders.transformer import Transformer


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
    """Vectors for the chunk's texts, in input order: (rows, dim), or (layers, rows, dim) from an
    encoder that pools several layers."""

    start: int
    vectors: np.ndarray
    tokens: int
    truncated: int

    @property
    def rows(self) -> int:
        return self.vectors.shape[-2]


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
    """Transformer -> Pooling -> Normalize, over length-sorted batches, chunk by chunk.

    ``layers`` (names of ``pipeline.core.layers``) pools those hidden layers from the same forward pass,
    each normalised after combining; the vectors then have a leading layer axis. None: the last layer,
    as the encoder always did."""

    def __init__(
        self,
        transformer: Transformer,
        pooling: Pooling,
        prefix: str = "",
        layers: tuple[str, ...] | None = None,
    ) -> None:
        self.transformer = transformer
        self.pooling = pooling
        self.prefix = prefix
        self.layers = layers
        self.oom_splits = 0  # batches halved after running out of GPU memory
        count = transformer.layer_count if layers is not None else 0
        self.states = [hidden_states(layer, count) for layer in layers or ()]

    @property
    def dim(self) -> int:
        return self.transformer.dim

    def shape(self, rows: int) -> tuple[int, ...]:
        """The shape of ``rows`` texts' vectors."""
        return (rows, self.dim) if self.layers is None else (len(self.layers), rows, self.dim)

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
                pool.submit(self.tokenize, texts[starts[0] : starts[0] + chunk_size]) if starts else None
            )
            for i, start in enumerate(starts):
                token_ids, truncated = pending.result()
                if i + 1 < len(starts):
                    following = starts[i + 1]
                    pending = pool.submit(self.tokenize, texts[following : following + chunk_size])
                out = self.embed_token_ids(token_ids, batch_size, token_budget, on_batch=bar.update)
                yield EncodedChunk(start, out, sum(len(ids) for ids in token_ids), truncated)

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], int]:
        """Token ids per text (prefix added, truncated to max length) and how many were truncated."""
        return self.transformer.tokenize([self.prefix + text for text in texts])

    def embed_token_ids(
        self,
        token_ids: list[list[int]],
        batch_size: int = 64,
        token_budget: int | None = None,
        on_batch: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        """Tokenised texts -> unit vectors in input order, over length-sorted batches."""
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        out = np.empty(self.shape(len(token_ids)), dtype=np.float32)
        with torch.inference_mode():
            for rows in length_batches(lengths, batch_size, token_budget):
                out[..., rows, :] = self._embed_rows([token_ids[r] for r in rows])
                if on_batch is not None:
                    on_batch(len(rows))
        return out

    def _embed_rows(self, batch: list[list[int]]) -> np.ndarray:
        """One padded batch -> pooled, normalised vectors. Out of GPU memory: halve the batch and go on
        (rows never depend on their batch-mates, so the result is the same)."""
        try:
            input_ids, mask = self.transformer.collate(batch)
            if self.layers is None:
                return normalize(self.pooling(self.transformer.forward(input_ids, mask), mask)).cpu().numpy()
            return self._pool_layers(self.transformer.hidden_states(input_ids, mask), mask)
        except torch.OutOfMemoryError:
            if len(batch) == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.oom_splits += 1
            half = len(batch) // 2
            halves = [self._embed_rows(batch[:half]), self._embed_rows(batch[half:])]
            return np.concatenate(halves, axis=-2)

    def _pool_layers(self, states: list[torch.Tensor], mask: torch.Tensor) -> np.ndarray:
        """(layers, rows, dim): each layer name's hidden states pooled (each state once), averaged when a
        name combines several, then normalised."""
        pooled: dict[int, torch.Tensor] = {}
        out = []
        for indices in self.states:
            for i in indices:
                if i not in pooled:
                    pooled[i] = self.pooling(states[i], mask)
            vectors = (
                pooled[indices[0]] if len(indices) == 1 else torch.stack([pooled[i] for i in indices]).mean(0)
            )
            out.append(normalize(vectors))
        return torch.stack(out).cpu().numpy()

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: bool = False,
        desc: str = "embedding",
        token_budget: int | None = None,
    ) -> EncodeResult:
        """All texts at once, in input order."""
        timings = Timings()
        out = np.empty(self.shape(len(texts)), dtype=np.float32)
        tokens = truncated = 0
        with timings.part("encode"):
            chunks = self.encode_chunks(
                texts, batch_size, token_budget=token_budget, progress=progress, desc=desc
            )
            for chunk in chunks:
                out[..., chunk.start : chunk.start + chunk.rows, :] = chunk.vectors
                tokens += chunk.tokens
                truncated += chunk.truncated
        return EncodeResult(out, timings["encode"], tokens, truncated)
