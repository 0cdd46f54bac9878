"""Embed stage: the corpus -> ``runs/<model>__<pooling>/embeddings.pt`` (L2-normalised float32).

Rows are encoded chunk by chunk by an engine (this process, or Ray actors); each chunk is written as a
shard as soon as it is done, so a killed run resumes from its last shard. The finished shards become the
run's vectors: inside ``embeddings.pt``, or streamed into a ``vectors.npy`` it points to when they outgrow
memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.artifacts.corpus import CorpusTexts, corpus_row_ids, texts_hash
from pipeline.artifacts.store import (
    IN_MEMORY_LIMIT_BYTES,
    Embeddings,
    save_embeddings,
    save_embeddings_streamed,
)
from pipeline.core.hashing import file_sha256, params_hash
from pipeline.core.layout import RunPaths, Workdir
from pipeline.core.manifest import is_fresh
from pipeline.core.runner import Stage, Timings, run_stage
from pipeline.core.settings import EmbedSettings, EngineSettings
from pipeline.core.stage_report import StageReport
from pipeline.encoders.loading import ResolvedSettings
from pipeline.encoders.models import weights_fingerprint
from pipeline.engines import EncodeJob, EngineRun, make_engine
from pipeline.stages.embed.shards import ShardSet

CHUNK_ROWS = 4096  # rows per shard: memory holds one chunk's tokens, a killed run loses at most one chunk


@dataclass(kw_only=True)
class EmbedReport(StageReport):
    stage = "embed"
    run_dir: Path
    embeddings: Path
    model: str
    pooling: str
    rows: int
    dim: int
    parameters: int = 0
    resumed_shards: int = 0
    oom_splits: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    texts_per_second: float | None = None
    tokens_per_second: float | None = None
    truncated: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        if self.skipped:
            return [f"fresh, kept {self.embeddings} ({self.rows} x {self.dim}); --force to redo"]
        vectors = " + vectors.npy" if self.settings.get("store") == "npy" else ""
        out = [
            f"wrote {self.embeddings}{vectors} ({self.rows} x {self.dim}, {self.model}, {self.pooling})",
            f"{self.texts_per_second:,.0f} texts/s, {self.tokens_per_second:,.0f} tokens/s on "
            f"{self.settings['device']} {self.settings['compute_dtype']} (model load "
            f"{self.timings['load_model_s']:.1f}s, encode {self.timings['encode_s']:.1f}s)",
        ]
        if self.resumed_shards:
            out.append(f"resumed: {self.resumed_shards} shard(s) from an interrupted run were reused")
        if self.oom_splits:
            out.append(f"note: out of GPU memory {self.oom_splits} time(s); those batches were halved")
        if self.truncated:
            limit = self.settings.get("max_length")
            out.append(f"note: {self.truncated} texts were longer than --max-length {limit} and were cut")
        return out


class EmbedStage(Stage[EmbedReport]):
    name = "embed"

    def __init__(
        self, work: Workdir, settings: EmbedSettings, engine: EngineSettings, progress: bool
    ) -> None:
        self.work, self.settings, self.engine_settings, self.progress = work, settings, engine, progress
        self.engine = make_engine(engine)

    @cached_property
    def resolved(self) -> ResolvedSettings:
        return self.engine.resolve(self.settings)

    @property
    def run(self) -> RunPaths:
        return self.work.run(self.resolved.model.key, self.resolved.pooling)

    @property
    def manifest(self) -> Path:
        return self.run.manifest

    def inputs(self) -> dict[str, Any]:
        return {
            "texts_sha256": texts_hash(self.work),  # first: no corpus is an error before any model loads
            "weights": weights_fingerprint(self.resolved.model),
            **self.resolved.vector_inputs(),
        }

    def outputs(self) -> list[Path]:
        return self.run.outputs(self.name)

    def fresh(self, entry: dict[str, Any], inputs: dict[str, Any]) -> bool:
        """Also needs the vectors.npy, if the recorded embed stored its vectors there."""
        in_npy = entry.get("outputs", {}).get("settings", {}).get("store") == "npy"
        return is_fresh(entry, inputs, [*self.outputs(), *([self.run.vectors] if in_npy else [])])

    def rebuild(self, entry: dict[str, Any]) -> EmbedReport:
        return EmbedReport.rebuild(entry["outputs"], run_dir=self.run.root, embeddings=self.run.embeddings)

    def recorded_extras(self, report: EmbedReport) -> dict[str, Any]:
        return {"embeddings_sha256": file_sha256(self.run.embeddings)}  # what downstream stages depend on

    def compute(self, inputs: dict[str, Any], timings: Timings) -> EmbedReport:
        resolved, run = self.resolved, self.run
        with timings.part("read_corpus_s"):
            texts = CorpusTexts(self.work.corpus)  # read chunk by chunk: never all the text in memory
            row_ids = corpus_row_ids(self.work)
        shards = ShardSet(run, params_hash(inputs), len(texts), self.settings.chunk_rows or CHUNK_ROWS)
        resumed = shards.prepare()
        with timings.part("load_model_s"):
            job = EncodeJob(resolved, texts, shards.pending(), shards.chunk_size, self.progress)
            try:
                started = self.engine.start(job)
            except BaseException:
                shards.remove_if_empty()
                raise
        with timings.part("encode_s"):
            encoded_rows, encoded_tokens = write_shards(started.chunks, shards)
        with timings.part("write_s"):
            meta = self.vectors_meta()
            store = store_for(self.settings.store, len(texts), started.dim)
            truncated = save_vectors(store, run, shards, started.dim, row_ids, meta)
            shards.remove()
        seconds = max(timings["encode_s"], 1e-9)
        return EmbedReport(
            run_dir=run.root,
            embeddings=run.embeddings,
            model=resolved.model.key,
            pooling=resolved.pooling,
            rows=len(texts),
            dim=started.dim,
            parameters=started.parameters,
            timings=timings.rounded(),
            texts_per_second=round(encoded_rows / seconds, 1),
            tokens_per_second=round(encoded_tokens / seconds, 1),
            truncated=truncated,
            resumed_shards=resumed,
            oom_splits=started.oom_splits(),
            settings={**meta, **self.speed_settings(started), "store": store},
        )

    def vectors_meta(self) -> dict[str, Any]:
        """What ``embeddings.pt`` says about how its vectors were made."""
        resolved = self.resolved
        return {
            **resolved.vector_inputs(),
            "model_source": resolved.model.source,
            "model_revision": resolved.model.revision or "",
            "compute_dtype": resolved.dtype,
            "device": str(resolved.device),
            "normalized": True,
            "trust_remote_code": resolved.trust_remote_code,
        }

    def speed_settings(self, started: EngineRun) -> dict[str, Any]:
        """Settings that decide the speed only."""
        engine = self.engine_settings
        return {
            "batch_size": self.resolved.batch_size,
            "token_budget": self.resolved.token_budget,
            "engine": engine.name,
            **({"workers": engine.workers} if engine.name == "ray" else {}),
            **({"cpu_speedups": started.speedups} if started.speedups else {}),
        }


def write_shards(chunks: Iterator[Any], shards: ShardSet) -> tuple[int, int]:
    """Each encoded chunk to its shard as it comes; returns the rows and tokens encoded."""
    rows = tokens = 0
    for chunk in chunks:
        shards.write(chunk.start, chunk.vectors, chunk.tokens, chunk.truncated)
        rows += len(chunk.vectors)
        tokens += chunk.tokens
    return rows, tokens


def store_for(store: str, rows: int, dim: int) -> str:
    if store == "auto":
        return "npy" if rows * dim * 4 > IN_MEMORY_LIMIT_BYTES else "pt"
    return store


def save_vectors(store: str, run: RunPaths, shards: ShardSet, dim: int, row_ids, meta) -> int:
    """Finished shards -> the run's vectors in the chosen store; returns how many texts were truncated."""
    if store == "pt":
        vectors, _, truncated = shards.assemble(dim)
        save_embeddings(run.embeddings, Embeddings(vectors, row_ids, meta))
        run.vectors.unlink(missing_ok=True)  # a vectors.npy of an earlier run is no longer pointed to
        return truncated
    truncated = 0

    def blocks() -> Iterator[np.ndarray]:
        nonlocal truncated
        for vectors, _, shard_truncated in shards.read(dim):
            truncated += shard_truncated
            yield vectors

    save_embeddings_streamed(run.embeddings, run.vectors, blocks(), shards.rows, dim, row_ids, meta)
    return truncated


def embed_corpus(
    workdir: str | Path,
    settings: EmbedSettings | None = None,
    force: bool = False,
    progress: bool = True,
    engine: EngineSettings | None = None,
) -> EmbedReport:
    """Embed every corpus row with one (model, pooling); skipped when the same inputs already produced it.
    Both engines write the same shards and the same ``embeddings.pt``; the engine is not an input."""
    stage = EmbedStage(Workdir.at(workdir), settings or EmbedSettings(), engine or EngineSettings(), progress)
    return run_stage(stage, force)
