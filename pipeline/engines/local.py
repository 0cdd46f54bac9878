"""The local engine: this process loads the model and encodes chunk after chunk."""

from __future__ import annotations

from pipeline.core.settings import EmbedSettings
from pipeline.encoders.loading import ResolvedSettings, load_encoder, resolve_settings
from pipeline.engines.base import EncodeJob, EngineRun


class LocalEngine:
    def resolve(self, settings: EmbedSettings) -> ResolvedSettings:
        return resolve_settings(settings)

    def start(self, job: EncodeJob) -> EngineRun:
        encoder = load_encoder(job.resolved, job.layers)
        wanted = set(job.starts)
        chunks = encoder.encode_chunks(
            job.texts,
            batch_size=job.resolved.batch_size,
            chunk_size=job.chunk_rows,
            token_budget=job.resolved.token_budget,
            skip=lambda start: start not in wanted,
            progress=job.progress,
            desc=job.desc,
        )
        return EngineRun(
            dim=encoder.dim,
            parameters=encoder.transformer.parameters,
            chunks=chunks,
            oom_splits=lambda: encoder.oom_splits,
            speedups=encoder.transformer.speedups,
        )
