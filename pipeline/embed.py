"""Embed stage: the corpus -> ``runs/<model>__<pooling>/embeddings.pt`` (L2-normalised float32)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.encoder import EncodedChunk, Encoder, Pooling, Transformer, pick_device, pick_dtype
from pipeline.errors import EncajesError
from pipeline.ingest import CorpusTexts, corpus_row_ids, texts_hash
from pipeline.layout import RunPaths, Workdir, file_sha256, is_fresh, params_hash, record_stage, stage_entry
from pipeline.lock import writes_workdir
from pipeline.models import DEFAULT_MODEL, ResolvedModel, resolve_model, weights_fingerprint
from pipeline.shards import ShardSet
from pipeline.store import IN_MEMORY_LIMIT_BYTES, Embeddings, save_embeddings, save_embeddings_streamed

CHUNK_ROWS = 4096  # rows per shard: memory holds one chunk's tokens, a killed run loses at most one chunk


@dataclass(frozen=True)
class EmbedSettings:
    """Everything that decides the vectors (plus batch size and device, which only decide the speed)."""

    model: str = DEFAULT_MODEL
    pooling: str | None = None  # None: the model's recommended pooling (mean for unknown models)
    max_length: int = 128
    prefix: str | None = None  # None: the model's recommended prefix ("" for unknown models)
    dtype: str = "auto"
    device: str = "auto"
    batch_size: int | None = None  # None: 256 on GPU, 64 on CPU
    trust_remote_code: bool = False
    # padded tokens per batch; None: 1024 on CPU (keeps activations cache-sized), 64 x rows on GPU
    token_budget: int | None = None
    chunk_rows: int | None = None  # rows per shard; None: CHUNK_ROWS
    # where the vectors go: "pt" inside embeddings.pt, "npy" in a vectors.npy it points to (read block by
    # block by every stage), "auto" npy past IN_MEMORY_LIMIT_BYTES. Not an input: the vectors are the same.
    store: str = "auto"

    def __post_init__(self) -> None:
        if self.store not in STORES:
            raise EncajesError(f"Unknown --store {self.store!r}: use auto, pt or npy.")


STORES = ("auto", "pt", "npy")
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class EngineSettings:
    """Who runs the encoder: this process (``local``) or a Ray Data actor pool (``ray``). Speed only."""

    name: str = "local"
    workers: int = 2  # ray: actors, one model replica each
    cpus_per_worker: int = 1  # ray, CPU actors: threads (and Ray CPU slots) per actor

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise EncajesError(f"Unknown --engine {self.name!r}: use local or ray.")
        if self.workers < 1 or self.cpus_per_worker < 1:
            raise EncajesError("--workers and --cpus-per-worker must be at least 1.")


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
    model = resolve_model(settings.model)
    device = on or pick_device(settings.device)
    if settings.max_length < 2:
        raise EncajesError("--max-length must be at least 2 (room for the special tokens).")
    batch_size = settings.batch_size or (256 if device.type == "cuda" else 64)
    return ResolvedSettings(
        model=model,
        pooling=Pooling(settings.pooling or model.default_pooling).mode,
        max_length=settings.max_length,
        prefix=model.default_prefix if settings.prefix is None else settings.prefix,
        dtype=pick_dtype(settings.dtype, device),
        device=device,
        batch_size=batch_size,
        trust_remote_code=settings.trust_remote_code,
        token_budget=settings.token_budget or (batch_size * 64 if device.type == "cuda" else 1024),
    )


def load_encoder(resolved: ResolvedSettings) -> Encoder:
    transformer = Transformer.load(
        resolved.model, resolved.device, resolved.dtype, resolved.max_length, resolved.trust_remote_code
    )
    return Encoder(transformer, Pooling(resolved.pooling), prefix=resolved.prefix)


@dataclass
class EmbedReport:
    run_dir: Path
    embeddings: Path
    model: str
    pooling: str
    rows: int
    dim: int
    skipped: bool
    parameters: int = 0
    resumed_shards: int = 0
    oom_splits: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    texts_per_second: float | None = None
    tokens_per_second: float | None = None
    truncated: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(stage="embed", run_dir=str(self.run_dir), embeddings=str(self.embeddings))
        return out


@writes_workdir()
def embed_corpus(
    workdir: str | Path,
    settings: EmbedSettings | None = None,
    force: bool = False,
    progress: bool = True,
    engine: EngineSettings | None = None,
) -> EmbedReport:
    """Embed every corpus row with one (model, pooling); skipped when the same inputs already produced it.
    Both engines write the same shards and the same ``embeddings.pt``; the engine is not an input."""
    settings = settings or EmbedSettings()
    engine = engine or EngineSettings()
    work = Workdir.at(workdir)
    work.require_corpus()
    if engine.name == "ray":
        from pipeline import ray_engine

        resources = ray_engine.connect(engine)
        resolved = ray_engine.worker_settings(settings, resources)
    else:
        resolved = resolve_settings(settings)
    run = work.run(resolved.model.key, resolved.pooling)
    inputs = {
        "texts_sha256": texts_hash(work),
        "weights": weights_fingerprint(resolved.model),
        **resolved.vector_inputs(),
    }
    if not force and is_fresh(run.manifest, "embed", inputs, _embed_outputs(run)):
        entry = stage_entry(run.manifest, "embed") or {}
        return EmbedReport(
            **{**entry["outputs"], "run_dir": run.root, "embeddings": run.embeddings, "skipped": True}
        )

    timings: dict[str, float] = {}
    start = time.perf_counter()
    texts = CorpusTexts(work.corpus)  # read chunk by chunk: the corpus text is never all in memory
    row_ids = corpus_row_ids(work)
    timings["read_corpus_s"] = time.perf_counter() - start
    chunk_rows = settings.chunk_rows or CHUNK_ROWS
    shards = ShardSet(run.root / "shards", params_hash(inputs), len(texts), chunk_rows)
    resumed = shards.prepare()
    start = time.perf_counter()
    model, chunks, oom_splits = _start_engine(engine, resolved, texts, shards, progress)
    timings["load_model_s"] = time.perf_counter() - start
    start = time.perf_counter()
    encoded_rows = encoded_tokens = 0
    for chunk in chunks:
        shards.write(chunk.start, chunk.vectors, chunk.tokens, chunk.truncated)
        encoded_rows += len(chunk.vectors)
        encoded_tokens += chunk.tokens
    timings["encode_s"] = time.perf_counter() - start
    start = time.perf_counter()
    meta = {
        **resolved.vector_inputs(),
        "model_source": resolved.model.source,
        "model_revision": model["revision"],
        "compute_dtype": resolved.dtype,
        "device": str(resolved.device),
        "normalized": True,
        "trust_remote_code": resolved.trust_remote_code,
    }
    store = _store_for(settings.store, len(texts), model["dim"])
    truncated = _save_vectors(store, run, shards, model["dim"], row_ids, meta)
    shards.remove()
    timings["write_s"] = time.perf_counter() - start
    seconds = max(timings["encode_s"], 1e-9)
    report = EmbedReport(
        run_dir=run.root,
        embeddings=run.embeddings,
        model=resolved.model.key,
        pooling=resolved.pooling,
        rows=len(texts),
        dim=model["dim"],
        skipped=False,
        parameters=model["parameters"],
        timings={key: round(value, 3) for key, value in timings.items()},
        texts_per_second=round(encoded_rows / seconds, 1),
        tokens_per_second=round(encoded_tokens / seconds, 1),
        truncated=truncated,
        resumed_shards=resumed,
        oom_splits=oom_splits(),
        settings={
            **meta,
            "batch_size": resolved.batch_size,
            "token_budget": resolved.token_budget,
            "engine": engine.name,
            "store": store,
            **({"workers": engine.workers} if engine.name == "ray" else {}),
        },
    )
    outputs = {
        k: v for k, v in report.to_dict().items() if k not in {"run_dir", "embeddings", "skipped", "stage"}
    }
    record_stage(run.manifest, "embed", inputs, outputs, embeddings_sha256=file_sha256(run.embeddings))
    return report


def _embed_outputs(run: RunPaths) -> list[Path]:
    """The files a finished embed left: embeddings.pt, and vectors.npy if it stored its vectors there."""
    entry = stage_entry(run.manifest, "embed") or {}
    stored_in_npy = entry.get("outputs", {}).get("settings", {}).get("store") == "npy"
    return [run.embeddings, run.vectors] if stored_in_npy else [run.embeddings]


def _store_for(store: str, rows: int, dim: int) -> str:
    if store == "auto":
        return "npy" if rows * dim * 4 > IN_MEMORY_LIMIT_BYTES else "pt"
    return store


def _save_vectors(store: str, run: RunPaths, shards: ShardSet, dim: int, row_ids, meta) -> int:
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


def _start_engine(
    engine: EngineSettings, resolved: ResolvedSettings, texts: Sequence[str], shards: ShardSet, progress: bool
) -> tuple[dict[str, Any], Iterator[EncodedChunk], Callable[[], int]]:
    """The chunks still to encode, from this process or from Ray actors; plus what the report needs about
    the model, and a count of batches halved after running out of GPU memory (local engine only)."""
    desc = f"embed {resolved.model.key} ({resolved.pooling})"
    if engine.name == "ray":
        from pipeline import ray_engine

        pending = [s for s in shards.starts if not shards.done(s)]
        chunks = ray_engine.encode_on_ray(texts, pending, shards.chunk_size, resolved, engine, progress, desc)
        return ray_engine.describe(resolved), chunks, lambda: 0
    encoder = load_encoder(resolved)
    model = {
        "dim": encoder.dim,
        "parameters": encoder.transformer.parameters,
        "revision": encoder.transformer.revision or "",
    }
    chunks = encoder.encode_chunks(
        texts,
        batch_size=resolved.batch_size,
        chunk_size=shards.chunk_size,
        token_budget=resolved.token_budget,
        skip=shards.done,
        progress=progress,
        desc=desc,
    )
    return model, chunks, lambda: encoder.oom_splits


def find_run(work: Workdir, model: str = DEFAULT_MODEL, pooling: str | None = None) -> tuple[RunPaths, dict]:
    """The run folder that ``encajes embed --model M --pooling P`` wrote, and its embed manifest entry."""
    resolved = resolve_model(model)
    pooling = Pooling(pooling or resolved.default_pooling).mode
    run = work.run(resolved.key, pooling)
    entry = stage_entry(run.manifest, "embed")
    if entry is None or not run.embeddings.exists():
        raise EncajesError(
            f"No embeddings for model {model!r} with {pooling} pooling in {work.root}: run "
            f"`encajes embed --workdir {work.root} --model {model} --pooling {pooling}` first."
        )
    return run, entry
