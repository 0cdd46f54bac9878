"""Embed stage: the corpus -> ``runs/<model>__<pooling>/embeddings.pt`` (L2-normalised float32).

Rows are encoded chunk by chunk by an engine (this process, or Ray actors); each chunk is written as a
shard as soon as it is done, so a killed run resumes from its last shard. The finished shards become the
run's vectors: inside ``embeddings.pt``, or streamed into a ``vectors.npy`` it points to when they outgrow
memory.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pipeline.artifacts.corpus import CorpusTexts, corpus_row_ids, texts_hash
from pipeline.artifacts.runs import run_title
from pipeline.core.errors import EncajesError
from pipeline.core.hashing import file_sha256, params_hash
from pipeline.core.layers import expand_layers
from pipeline.core.layout import LAST_LAYER, RunPaths, Workdir
from pipeline.core.manifest import is_fresh
from pipeline.core.runner import Pending, Stage, Timings, run_stage, run_together
from pipeline.core.settings import EmbedSettings, EngineSettings
from pipeline.core.stage_report import StageReport
from pipeline.encoders.loading import ResolvedSettings, model_config
from pipeline.encoders.models import weights_fingerprint
from pipeline.engines import EncodeJob, Engine, EngineRun, make_engine
from pipeline.stages.embed.shards import ShardSet
from pipeline.stages.embed.vectors import save_vectors, store_for, write_shards

CHUNK_ROWS = 4096  # rows per shard: memory holds one chunk's tokens, a killed run loses at most one chunk
ANNOUNCE_BYTES = 1 << 30  # a sweep that will write more layer vectors than this says so first


@dataclass(kw_only=True)
class EmbedReport(StageReport):
    stage = "embed"
    run_dir: Path
    embeddings: Path
    model: str
    pooling: str
    rows: int
    dim: int
    layer: str = LAST_LAYER
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
        title = run_title(self.model, self.pooling, self.layer).replace(" · ", ", ")
        out = [
            f"wrote {self.embeddings}{vectors} ({self.rows} x {self.dim}, {title})",
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


@dataclass
class EmbedPlan:
    """What every layer of one (model, pooling) shares: the engine and the settings it resolved."""

    settings: EmbedSettings
    engine_settings: EngineSettings
    progress: bool

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.engine_settings)

    @cached_property
    def resolved(self) -> ResolvedSettings:
        return self.engine.resolve(self.settings)

    @cached_property
    def layer_count(self) -> int | None:
        """The model's hidden layers, from its config (None where the config does not say)."""
        count = getattr(model_config(self.resolved), "num_hidden_layers", None)
        return int(count) if count is not None else None


class EmbedStage(Stage[EmbedReport]):
    """One run's vectors: one (model, pooling, layer). Several layers of one model are computed together
    (``encode_together``), one forward pass for all."""

    name = "embed"

    def __init__(self, work: Workdir, plan: EmbedPlan, layer: str = LAST_LAYER) -> None:
        self.work, self.plan, self.layer = work, plan, layer

    @property
    def resolved(self) -> ResolvedSettings:
        return self.plan.resolved

    @property
    def run(self) -> RunPaths:
        return self.work.run(self.resolved.model.key, self.resolved.pooling, self.layer)

    @property
    def manifest(self) -> Path:
        return self.run.manifest

    def inputs(self) -> dict[str, Any]:
        layer = {} if self.layer == LAST_LAYER else {"layer": self.layer}  # the last: the run as it was
        return {
            "texts_sha256": texts_hash(self.work),  # first: no corpus is an error before any model loads
            "weights": weights_fingerprint(self.resolved.model),
            **self.resolved.vector_inputs(),
            **layer,
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
        return encode_together([(self, inputs)], timings)[0]

    def vectors_meta(self) -> dict[str, Any]:
        """What ``embeddings.pt`` says about how its vectors were made."""
        resolved = self.resolved
        layer = {} if self.layer == LAST_LAYER else {"layer": self.layer}
        return {
            **resolved.vector_inputs(),
            **layer,
            "model_source": resolved.model.source,
            "model_revision": resolved.model.revision or "",
            "compute_dtype": resolved.dtype,
            "device": str(resolved.device),
            "normalized": True,
            "trust_remote_code": resolved.trust_remote_code,
        }

    def speed_settings(self, started: EngineRun) -> dict[str, Any]:
        """Settings that decide the speed only (and the model's layer count, for layer lookups)."""
        engine = self.plan.engine_settings
        return {
            "batch_size": self.resolved.batch_size,
            "token_budget": self.resolved.token_budget,
            "engine": engine.name,
            "layer_count": self.plan.layer_count,
            **({"workers": engine.workers} if engine.name == "ray" else {}),
            **({"cpu_speedups": started.speedups} if started.speedups else {}),
        }


def encode_together(pending: Pending, timings: Timings) -> list[EmbedReport]:
    """The runs of one (model, pooling) at several layers from one forward pass per batch: shards hold
    every layer's vectors, and each run's vectors are written from them. One stage alone at the last
    layer is the plain embed, pooled as it always was."""
    stages: list[EmbedStage] = [stage for stage, _ in pending]  # type: ignore[misc]
    first, work = stages[0], stages[0].work
    resolved, plan = first.resolved, first.plan
    layers = None if [s.layer for s in stages] == [LAST_LAYER] else tuple(s.layer for s in stages)
    with timings.part("read_corpus_s"):
        texts = CorpusTexts(work.corpus)  # read chunk by chunk: never all the text in memory
        row_ids = corpus_row_ids(work)
    key = params_hash(pending[0][1] if layers is None else {"layers": [inputs for _, inputs in pending]})
    shards = ShardSet(first.run, key, len(texts), plan.settings.chunk_rows or CHUNK_ROWS)
    resumed = shards.prepare()
    with timings.part("load_model_s"):
        job = EncodeJob(resolved, texts, shards.pending(), shards.chunk_size, plan.progress, layers)
        try:
            started = plan.engine.start(job)
        except BaseException:
            shards.remove_if_empty()
            raise
    with timings.part("encode_s"):
        encoded_rows, encoded_tokens = write_shards(started.chunks, shards)
    reports = []
    with timings.part("write_s"):
        store = store_for(plan.settings.store, len(texts), started.dim)
        for j, stage in enumerate(stages):
            meta = stage.vectors_meta()
            index = None if layers is None else j
            truncated = save_vectors(store, stage.run, shards, started.dim, row_ids, meta, index)
            reports.append((stage, meta, truncated))
        shards.remove()
    seconds = max(timings["encode_s"], 1e-9)
    return [
        EmbedReport(
            run_dir=stage.run.root,
            embeddings=stage.run.embeddings,
            model=resolved.model.key,
            pooling=resolved.pooling,
            layer=stage.layer,
            rows=len(texts),
            dim=started.dim,
            parameters=started.parameters,
            timings=timings.rounded(),
            texts_per_second=round(encoded_rows / seconds, 1),
            tokens_per_second=round(encoded_tokens / seconds, 1),
            truncated=truncated,
            resumed_shards=resumed,
            oom_splits=started.oom_splits(),
            settings={**meta, **stage.speed_settings(started), "store": store},
        )
        for stage, meta, truncated in reports
    ]


@dataclass(kw_only=True)
class LayersReport(StageReport):
    """``embed --layers``: one run per layer, from one pass."""

    stage = "embed"
    model: str
    pooling: str
    layer_count: int
    runs: list[EmbedReport]

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"runs": [run.to_dict() for run in self.runs]}

    def lines(self) -> list[str]:
        fresh = [run.layer for run in self.runs if run.skipped]
        made = [run for run in self.runs if not run.skipped]
        out = [f"{self.model} · {self.pooling}: {len(self.runs)} layer run(s) of {self.layer_count} layers"]
        if made:
            out += [f"wrote {len(made)} run(s) in one pass: " + ", ".join(r.layer for r in made)]
            out += made[0].lines()[1:2]
        if fresh:
            out.append(f"fresh, kept: {', '.join(fresh)}; --force to redo")
        return out


def embed_corpus(
    workdir: str | Path,
    settings: EmbedSettings | None = None,
    force: bool = False,
    progress: bool = True,
    engine: EngineSettings | None = None,
    on_note: Callable[[str], None] | None = None,
) -> EmbedReport | LayersReport:
    """Embed every corpus row with one (model, pooling); skipped when the same inputs already produced it.
    With ``settings.layers`` other than "last": one run per hidden layer asked for, all from one forward
    pass (a ``LayersReport``). Both engines write the same shards and the same ``embeddings.pt``; the
    engine is not an input."""
    settings = settings or EmbedSettings()
    work = Workdir.at(workdir)
    plan = EmbedPlan(settings, engine or EngineSettings(), progress)
    if settings.layers.strip() == LAST_LAYER:
        return run_stage(EmbedStage(work, plan), force)
    work.require_corpus()
    if plan.layer_count is None:
        raise EncajesError(
            f"The config of {plan.resolved.model.key!r} does not say how many layers it has "
            "(num_hidden_layers): embed it without --layers."
        )
    names = expand_layers(settings.layers, plan.layer_count)
    stages = [EmbedStage(work, plan, layer) for layer in names]

    def compute(pending: Pending, timings: Timings) -> list[EmbedReport]:
        rows, dim = len(CorpusTexts(work.corpus)), int(model_config(plan.resolved).hidden_size)
        if (size := len(pending) * rows * dim * 4) > ANNOUNCE_BYTES:
            (on_note or _to_stderr)(
                f"embed: {len(pending)} layers x {rows:,} rows will write {_bytes(size)} of vectors "
                f"into {work.runs}"
            )
        return encode_together(pending, timings)

    runs = run_together(stages, compute, force)
    return LayersReport(
        model=plan.resolved.model.key, pooling=plan.resolved.pooling, layer_count=plan.layer_count, runs=runs
    )


def _bytes(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
