"""What the server does, without HTTP: the served runs (encoder, index and corpus loaded once, kept warm),
the caps a request is checked against, and search, similar rows, items and embeddings.

Errors are ``RequestError``s with the HTTP status they map to and a message that says what to fix; the
app turns them into JSON. Everything that runs the model or the index goes through the run's batcher.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.artifacts.run_layer import resolve_layer
from pipeline.artifacts.runs import Run, find_run_at
from pipeline.core.errors import EncajesError
from pipeline.core.layers import layer_order
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.serve_settings import ServeSettings
from pipeline.core.settings import DEFAULT_MODEL
from pipeline.encoders.loading import load_encoder, resolve_settings
from pipeline.encoders.models import choose_pooling, identify
from pipeline.search.asking import Ask
from pipeline.search.searcher import DEDUP, Searcher, one_layer, query_settings, run_layers
from pipeline.serve.batcher import EncoderBatcher, Job
from pipeline.serve.map_data import map_points_json

MAX_BODY_BYTES = 32 << 20  # what one request may send at most, whatever the caps multiply to
MAX_DEPTH = 1000  # offset + k: how deep one request may page (each page re-ranks from the top)


class RequestError(Exception):
    """A request the server will not answer as asked: ``status`` (4xx) and what to fix."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


class ServedRun:
    """One run of the workdir, loaded once: its searcher, its encoder (kept warm) and its batcher."""

    def __init__(self, searcher: Searcher, settings: ServeSettings) -> None:
        self.searcher = searcher
        self.resolved = resolve_settings(query_settings(searcher.run))
        self.encoder = load_encoder(self.resolved, run_layers(searcher.run))  # pools the run's layer
        self.threads = torch.get_num_threads()
        searcher.use_encoder(self.encoder)  # its own text queries use the same warm encoder
        self.batcher = EncoderBatcher(
            lambda texts: self.encoder.tokenize(texts)[0],
            self._forward,
            self._search,
            rows=self.resolved.batch_size,  # per pass, as `encajes embed` batches
            tokens=self.resolved.token_budget,
            wait_s=settings.batch_wait_ms / 1000,
            max_queued=settings.max_queued_texts,
            name=f"encoder-{searcher.run.paths.root.name}",
        )
        umap = searcher.run.paths.umap
        self.map_path: Path | None = umap if umap.exists() else None

    @property
    def model(self) -> str:
        """The name requests use: the run's model, plus ``@layer6`` / ``@last4`` for another layer."""
        return served_name(self.searcher.run)

    @property
    def pooling(self) -> str:
        return self.searcher.run.pooling

    @property
    def layer(self) -> str:
        return self.searcher.run.layer

    def _forward(self, token_ids: list[list[int]]) -> np.ndarray:
        # a text or two: one thread (waking a second costs more than it saves, and leaves the event loop
        # a core); more: every thread
        threads = 1 if len(token_ids) <= 2 else self.threads
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        return one_layer(self.encoder.embed_token_ids(token_ids, len(token_ids), None))

    def _search(self, jobs: list[Job]) -> None:
        """The searches a pass completed: one index search per distinct way of asking."""
        groups: dict[tuple[Any, ...], list[Job]] = {}
        for job in jobs:
            ask = job.ask
            key = (id(ask.allowed), ask.k, ask.offset, ask.min_score, ask.dedup, ask.leave_out)
            groups.setdefault(key, []).append(job)
        for members in groups.values():
            vectors = np.concatenate([job.vectors for job in members if job.vectors is not None])
            found = iter(self.searcher.find(vectors, members[0].ask))
            for job in members:
                job.hits = [next(found) for _ in job.texts]

    async def encode(self, texts: list[str], ask: Ask | None = None) -> Job:
        """Vectors of ``texts`` (and with ``ask``, their hits), encoded with whatever else waits."""
        return await self.batcher.encode(Job(texts, ask))

    def info(self) -> dict[str, Any]:
        report = self.searcher.index_report
        recall = report.recall["recall_at_k"] if report is not None and report.recall else None
        return {
            "model": self.model,
            "pooling": self.pooling,
            "layer": self.layer,
            "title": self.searcher.run.title,
            "dim": self.encoder.dim,
            "dtype": self.resolved.dtype,
            "max_length": self.resolved.max_length,
            "prefix": self.resolved.prefix,
            "rows": len(self.searcher.index),
            "index_kind": report.kind if report is not None else "exact",
            "index_search_params": report.search_params if report is not None else "",
            "recall_at_10": recall,
            "filtered_recall_at_10": report.recall.get("filtered", []) if report and report.recall else [],
            "has_map": self.map_path is not None,
            "texts_per_pass": self.resolved.batch_size,
            "tokens_per_pass": self.resolved.token_budget,
            "batching": self.batcher.stats.to_dict(),
        }


def body_cap(settings: ServeSettings) -> int:
    """The largest request body read: every text at its longest JSON (a character is at most 12 bytes,
    an emoji escaped as two \\uXXXX), within ``MAX_BODY_BYTES`` so a full request of tweets fits but a
    full one of the longest texts must be split; one longest text always fits."""
    one_text = settings.max_text_chars * 12 + 16
    return max(min(settings.max_texts * one_text, MAX_BODY_BYTES), one_text) + 65536


def served_name(run: Run) -> str:
    """A served run's model name: the model for the last layer (as always), ``model@layer6``,
    ``model@last4`` or ``model@first-last`` for a run of another hidden layer."""
    if run.layer == LAST_LAYER:
        return run.model
    return f"{run.model}@{'layer' + run.layer if run.layer.isdigit() else run.layer}"


def open_runs(
    workdir: str | Path,
    models: Sequence[str] = (),
    poolings: Sequence[str] = (),
    on_build: Callable[[str], None] | None = None,
    layers: Sequence[str] = (),
) -> list[Searcher]:
    """The runs to serve: those of ``models`` x ``poolings`` x ``layers`` (each model's default pooling
    when none is given, its last layer when no layer is), or every finished run of the workdir (at
    ``layers`` when given) when no model is given. The first is the default of requests that name none:
    the default model's, mean pooling, last layer first. A run without a fresh index gets one, and
    ``on_build`` says so first."""
    work = Workdir.at(workdir)
    work.require_corpus()
    runs = [run for paths in work.run_folders() if (run := find_run_at(paths)) is not None]
    if models:
        runs = runs_of_models(work, runs, models, poolings, layers or (LAST_LAYER,))
    else:
        if poolings:
            runs = [run for run in runs if run.pooling in poolings]
        if layers:
            runs = [run for run in runs if run.layer in typed_layers(work, run, layers)]
    if not runs:
        at = f" at layer {', '.join(layers)}" if layers else ""
        raise EncajesError(f"No embedded run{at} in {work.root} to serve: run `encajes embed` first.")
    default = identify(DEFAULT_MODEL).key
    runs.sort(
        key=lambda r: (r.model != default, r.pooling != "mean", r.layer != LAST_LAYER, layer_order(r.layer))
    )
    return [Searcher.open(str(work.root), run.model, run.pooling, on_build, run.layer) for run in runs]


def typed_layers(work: Workdir, run: Run, layers: Sequence[str]) -> set[str]:
    """The canonical layers that typed ``layers`` mean for this run's model (-2 depends on it)."""
    return {resolve_layer(work, run.model, run.pooling, layer) for layer in layers}


def runs_of_models(
    work: Workdir, runs: list[Run], models: Sequence[str], poolings: Sequence[str], layers: Sequence[str]
) -> list[Run]:
    """The runs of every model x pooling x layer asked, or an error naming the missing ones."""
    wanted = set()
    for model in models:
        for pooling in poolings or (None,):
            key, chosen = identify(model).key, choose_pooling(identify(model), pooling)
            wanted |= {(key, chosen, resolve_layer(work, model, pooling, layer)) for layer in layers}
    runs = [run for run in runs if (run.model, run.pooling, run.layer) in wanted]
    if missing := wanted - {(run.model, run.pooling, run.layer) for run in runs}:
        names = ", ".join(
            f"{m} / {p}" + ("" if a == LAST_LAYER else f" / {a}") for m, p, a in sorted(missing)
        )
        raise EncajesError(f"No embeddings in {work.root} for {names}: run `encajes embed` first.")
    return runs


class Service:
    """Every served run, and the checks a request passes before it costs anything."""

    def __init__(self, workdir: str | Path, runs: list[ServedRun], settings: ServeSettings) -> None:
        self.workdir, self.runs, self.settings = Path(workdir), runs, settings
        self.max_body_bytes = body_cap(settings)

    @classmethod
    def load(
        cls,
        workdir: str | Path,
        settings: ServeSettings,
        models: Sequence[str] = (),
        poolings: Sequence[str] = (),
        on_build: Callable[[str], None] | None = None,
        layers: Sequence[str] = (),
    ) -> Service:
        searchers = open_runs(workdir, models, poolings, on_build, layers)
        return cls(workdir, [ServedRun(s, settings) for s in searchers], settings)

    def pick(self, model: str | None, pooling: str | None) -> ServedRun:
        """The served run a request names, by its model's key (an alias, hub id or folder path as the run
        recorded it, ``@layer6`` added for a run of another layer than the last) and pooling; the first
        when it names none. A name is only compared, never looked up on disk or on the hub."""
        for run in self.runs:
            if model in (None, run.model) and pooling in (None, run.pooling):
                return run
        served = ", ".join(f"{r.model} / {r.pooling}" for r in self.runs)
        asked = " / ".join(part for part in (model, pooling) if part is not None)
        message = f"No served run {asked}: served are {served}."
        raise RequestError(404, message, "model")

    def check_texts(self, texts: str | list[str], param: str) -> list[str]:
        texts = [texts] if isinstance(texts, str) else list(texts)
        cap = self.settings
        if not texts:
            raise RequestError(422, f"'{param}' is an empty list: give at least one text.", param)
        if len(texts) > cap.max_texts:
            raise RequestError(413, f"{len(texts)} texts in one request; at most {cap.max_texts}: split it.",
                               param)  # fmt: skip
        for i, text in enumerate(texts):
            if not text.strip():
                raise RequestError(422, f"'{param}' text {i} is empty or whitespace: give some text.", param)
            if len(text) > cap.max_text_chars:
                raise RequestError(413, f"'{param}' text {i} has {len(text)} characters; at most "
                                   f"{cap.max_text_chars}.", param)  # fmt: skip
        return texts

    def check_k(self, k: int) -> int:
        if not 1 <= k <= self.settings.max_k:
            raise RequestError(422, f"k must be between 1 and {self.settings.max_k} (got {k}).", "k")
        return k

    def check_row(self, run: ServedRun, row_id: int) -> int:
        if not run.searcher.indexed(row_id):
            raise RequestError(404, f"No row {row_id} in the index: GET /items shows rows by id.", "row_id")
        return row_id

    async def ask(
        self,
        run: ServedRun,
        k: int,
        where: dict[str, Any] | None = None,
        dedup: float = DEDUP,
        min_score: float | None = None,
        offset: int = 0,
    ) -> Ask:
        """How a request asks, checked: k within the cap, the filter against the corpus' fields (422 that
        names the field or value to fix). A filter's rows are found in the run's worker thread: the first
        use of a field prepares its column, which on a large corpus takes longer than a request should
        block the event loop."""
        k = self.check_k(k)
        if offset + k > MAX_DEPTH:
            raise RequestError(422, f"offset + k reaches {offset + k}; at most {MAX_DEPTH}.", "offset")
        try:
            return await run.batcher.call(run.searcher.ask, k, where, dedup, min_score, offset)
        except (EncajesError, OverflowError, ValueError) as error:
            raise RequestError(422, f"{error}", "filter") from None

    def check_rows(self, run: ServedRun, row_ids: Sequence[int], param: str) -> list[int]:
        if len(row_ids) > self.settings.max_row_ids:
            raise RequestError(413, f"{len(row_ids)} row ids; at most {self.settings.max_row_ids}.", param)
        missing = [row_id for row_id in row_ids if not run.searcher.indexed(row_id)]
        if missing:
            raise RequestError(404, f"No rows {missing[:10]} in the index ({param}).", param)
        return list(row_ids)

    def items(self, run: ServedRun, row_ids: list[int]) -> list[dict[str, Any]]:
        if len(row_ids) > self.settings.max_row_ids:
            raise RequestError(
                413, f"{len(row_ids)} row ids; at most {self.settings.max_row_ids}.", "row_ids"
            )
        positions = run.searcher.rows.positions(np.asarray(row_ids, dtype=np.int64))
        unknown = [row_id for row_id, p in zip(row_ids, positions, strict=True) if p < 0]
        if unknown:
            raise RequestError(404, f"No rows {unknown[:10]} in the corpus.", "row_ids")
        return run.searcher.rows.records(row_ids)

    def map_points(self, run: ServedRun, limit: int = 100_000) -> bytes:
        """The run's map as JSON (positions, label codes, kept fields; at most ``limit`` points), or 404
        when it has none."""
        if run.map_path is None:
            layer = "" if run.layer == LAST_LAYER else f" --layer {run.layer}"
            raise RequestError(404, f"Run {run.model} / {run.pooling} has no map: run `encajes plot{layer}`.")
        return map_points_json(run.map_path, Workdir.at(self.workdir).corpus, limit)


def embedding_payload(vectors: np.ndarray, encoding_format: str) -> list[Any]:
    """One entry per vector: the float32 row itself (serialised as JSON numbers), or base64 of its bytes."""
    if encoding_format == "base64":
        return [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
    return list(vectors.astype(np.float32, copy=False))
