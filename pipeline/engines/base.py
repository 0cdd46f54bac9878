"""The engine interface: what the embed stage asks of whoever runs the encoder."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.core.settings import EmbedSettings
from pipeline.encoders.encoder import EncodedChunk
from pipeline.encoders.loading import ResolvedSettings


@dataclass(frozen=True)
class EncodeJob:
    """What to encode: ``texts[s : s + chunk_rows]`` for each ``s`` in ``starts``, with these settings."""

    resolved: ResolvedSettings
    texts: Sequence[str]
    starts: list[int]
    chunk_rows: int
    progress: bool = False
    layers: tuple[str, ...] | None = None  # hidden layers to pool in one pass (None: the last one)

    @property
    def desc(self) -> str:
        return f"embed {self.resolved.model.key} ({self.resolved.pooling})"


@dataclass
class EngineRun:
    """Chunks as they are encoded (in any order: each carries its first row), and what the report needs."""

    dim: int
    parameters: int  # 0 when the driver did not load the weights itself
    chunks: Iterator[EncodedChunk]
    oom_splits: Callable[[], int] = lambda: 0  # batches halved after running out of GPU memory
    speedups: dict[str, int | bool] = field(default_factory=dict)  # CPU speed-ups in use, if known


class Engine(Protocol):
    def resolve(self, settings: EmbedSettings) -> ResolvedSettings:
        """Settings with ``auto`` decided for the device the encoder will really run on."""
        ...

    def start(self, job: EncodeJob) -> EngineRun:
        """Start encoding the job's chunks (lazily: they come as the returned iterator is read)."""
        ...
