"""The embed stage on Ray Data: the same chunks and shards as the local engine, encoded by a pool of actors
(one model replica per GPU, or per ``cpus_per_worker`` CPU slots).

The driver reads the corpus chunk by chunk into Ray's object store and writes shards; actors receive a
chunk's texts and send back its vectors, so workers need the model (a hub id, or a folder on storage
every node sees) but no access to the workdir.
``RAY_ADDRESS`` set: connect to that cluster. Unset: start a local Ray with workers x cpus-per-worker
CPU slots (and the GPUs it finds).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np

from pipeline.core.errors import EncajesError
from pipeline.core.settings import EmbedSettings, EngineSettings
from pipeline.encoders.encoder import EncodedChunk
from pipeline.encoders.loading import ResolvedSettings, load_encoder, model_config, resolve_settings
from pipeline.engines.base import EncodeJob, EngineRun


class ChunkEncoder:
    """Ray Data actor: loads the model once, then encodes one chunk (one batch row) per call."""

    def __init__(self, resolved: ResolvedSettings, threads: int, layers: tuple[str, ...] | None) -> None:
        import torch

        if resolved.device.type == "cpu":
            torch.set_num_threads(max(1, threads))
        self.resolved = resolved
        self.encoder = load_encoder(resolved, layers)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        starts, vectors, tokens, truncated = [], [], [], []
        for start, texts in zip(batch["start"], batch["texts"], strict=True):
            chunk = next(
                self.encoder.encode_chunks(
                    list(texts),
                    batch_size=self.resolved.batch_size,
                    chunk_size=max(1, len(texts)),
                    token_budget=self.resolved.token_budget,
                )
            )
            starts.append(int(start))
            vectors.append(chunk.vectors.astype(np.float32).tobytes())
            tokens.append(chunk.tokens)
            truncated.append(chunk.truncated)
        return {
            "start": np.array(starts, dtype=np.int64),
            "vectors": np.array(vectors, dtype=object),
            "rows": np.array([len(t) for t in batch["texts"]], dtype=np.int64),
            "tokens": np.array(tokens, dtype=np.int64),
            "truncated": np.array(truncated, dtype=np.int64),
        }


def connect(engine: EngineSettings) -> dict[str, float]:
    """Join the cluster at ``RAY_ADDRESS``, or start a local one; returns the cluster's resources."""
    try:
        import ray
    except ImportError:
        raise EncajesError(
            "--engine ray needs Ray Data: pip install 'encajes[ray]' (or pip install 'ray[data]')."
        ) from None
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        ray.init(
            address=address or None,
            num_cpus=None if address else engine.workers * engine.cpus_per_worker,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            configure_logging=True,
        )
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        for name in ("ray.data", "ray.data._internal.progress", "ray.data._internal.execution"):
            logging.getLogger(name).setLevel(logging.ERROR)  # our own bar and report say what it did
    return dict(ray.cluster_resources())


def worker_settings(settings: EmbedSettings, resources: dict[str, float]) -> ResolvedSettings:
    """Where the actors run: on GPUs, one per actor, when the cluster has them and ``--device`` is auto or
    cuda (the driver itself may have none); otherwise on CPU slots. Resolved exactly as the local engine
    would on that device, so ``dtype auto`` means the same thing on both engines."""
    import torch

    has_gpus = resources.get("GPU", 0) >= 1
    if settings.device.startswith("cuda") and not has_gpus:
        raise EncajesError("--device cuda with --engine ray needs GPUs in the Ray cluster; it has none.")
    on_gpu = has_gpus and settings.device in ("auto", "cuda")
    return resolve_settings(settings, on=torch.device("cuda" if on_gpu else "cpu"))


def model_dim(resolved: ResolvedSettings) -> int:
    """The vectors' dimension, from the model's config alone: the driver loads no weights."""
    return int(model_config(resolved).hidden_size)


def encode_on_ray(job: EncodeJob, engine: EngineSettings) -> Iterator[EncodedChunk]:
    """The job's chunks, encoded by ``engine.workers`` actors and yielded as they finish (in any order:
    each carries its start)."""
    import ray
    import ray.data
    from tqdm.auto import tqdm

    if not job.starts:
        return
    encoded = _dataset(job, engine).map_batches(
        ChunkEncoder,
        fn_constructor_kwargs={
            "resolved": job.resolved,
            "threads": engine.cpus_per_worker,
            "layers": job.layers,
        },
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(engine.workers, len(job.starts))),
        **_resources(job.resolved, engine),
    )
    total = sum(min(job.chunk_rows, len(job.texts) - s) for s in job.starts)
    with tqdm(
        total=total, unit="text", desc=f"{job.desc} on ray", disable=not job.progress, leave=False
    ) as bar:
        for batch in encoded.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=0):
            for start, blob, rows, tokens, truncated in zip(
                batch["start"],
                batch["vectors"],
                batch["rows"],
                batch["tokens"],
                batch["truncated"],
                strict=True,
            ):
                bar.update(int(rows))
                vectors = np.frombuffer(blob, dtype=np.float32).reshape(int(rows), -1)
                if job.layers is not None:  # (layers, rows, dim), as the actor's encoder made it
                    vectors = vectors.reshape(len(job.layers), int(rows), -1)
                yield EncodedChunk(int(start), vectors, int(tokens), int(truncated))


def _dataset(job: EncodeJob, engine: EngineSettings):
    """Each chunk goes to the object store as its own block as soon as it is read (the store spills to
    disk when full): the driver holds references, never the whole corpus's text."""
    import pandas as pd
    import ray
    import ray.data

    blocks = [
        ray.put(pd.DataFrame({"start": [s], "texts": [list(job.texts[s : s + job.chunk_rows])]}))
        for s in job.starts
    ]
    return ray.data.from_pandas_refs(blocks)


def _resources(resolved: ResolvedSettings, engine: EngineSettings) -> dict[str, int]:
    """One GPU an actor on GPUs; else ``cpus_per_worker`` CPU slots."""
    if resolved.device.type == "cuda":
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": engine.cpus_per_worker}


class RayEngine:
    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    def resolve(self, settings: EmbedSettings) -> ResolvedSettings:
        return worker_settings(settings, connect(self.settings))

    def start(self, job: EncodeJob) -> EngineRun:
        chunks = encode_on_ray(job, self.settings)
        return EngineRun(dim=model_dim(job.resolved), parameters=0, chunks=chunks)
