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
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pipeline.encoder import EncodedChunk
from pipeline.errors import EncajesError


class ChunkEncoder:
    """Ray Data actor: loads the model once, then encodes one chunk (one batch row) per call."""

    def __init__(self, resolved: Any, threads: int) -> None:
        import torch

        from pipeline.embed import load_encoder

        if resolved.device.type == "cpu":
            torch.set_num_threads(max(1, threads))
        self.resolved = resolved
        self.encoder = load_encoder(resolved)

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


def connect(engine: Any) -> dict[str, float]:
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


def worker_settings(settings: Any, resources: dict[str, float]) -> Any:
    """Where the actors run: on GPUs, one per actor, when the cluster has them and ``--device`` is auto or
    cuda (the driver itself may have none); otherwise on CPU slots. Resolved exactly as the local engine
    would on that device, so ``dtype auto`` means the same thing on both engines."""
    import torch

    from pipeline.embed import resolve_settings

    has_gpus = resources.get("GPU", 0) >= 1
    if settings.device.startswith("cuda") and not has_gpus:
        raise EncajesError("--device cuda with --engine ray needs GPUs in the Ray cluster; it has none.")
    on_gpu = has_gpus and settings.device in ("auto", "cuda")
    return resolve_settings(settings, on=torch.device("cuda" if on_gpu else "cpu"))


def describe(resolved: Any) -> dict[str, Any]:
    """What the report needs about the model, from its config alone: the driver loads no weights."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolved.model.source, trust_remote_code=resolved.trust_remote_code)
    return {
        "dim": int(config.hidden_size),
        "parameters": 0,
        "revision": getattr(config, "_commit_hash", "") or "",
    }


def encode_on_ray(
    texts: Sequence[str],
    starts: list[int],
    chunk_rows: int,
    resolved: Any,
    engine: Any,
    progress: bool = False,
    desc: str = "embedding",
) -> Iterator[EncodedChunk]:
    """Chunks ``texts[start : start + chunk_rows]`` for each start, encoded by ``engine.workers`` actors and
    yielded as they finish (in any order: each carries its start)."""
    import pandas as pd
    import ray
    import ray.data
    from tqdm.auto import tqdm

    if not starts:
        return
    # Each chunk goes to the object store as its own block as soon as it is read (the store spills to
    # disk when full): the driver holds references, never the whole corpus's text.
    blocks = [
        ray.put(pd.DataFrame({"start": [s], "texts": [list(texts[s : s + chunk_rows])]})) for s in starts
    ]
    dataset = ray.data.from_pandas_refs(blocks)
    on_gpu = resolved.device.type == "cuda"
    encoded = dataset.map_batches(
        ChunkEncoder,
        fn_constructor_kwargs={"resolved": resolved, "threads": engine.cpus_per_worker},
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(engine.workers, len(blocks))),
        num_cpus=1 if on_gpu else engine.cpus_per_worker,
        **({"num_gpus": 1} if on_gpu else {}),
    )
    total = sum(min(chunk_rows, len(texts) - s) for s in starts)
    with tqdm(total=total, unit="text", desc=f"{desc} on ray", disable=not progress, leave=False) as bar:
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
                yield EncodedChunk(int(start), vectors, int(tokens), int(truncated))
