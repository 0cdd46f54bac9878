"""What the server does, without HTTP: the served runs (encoder, index and corpus loaded once, kept warm),
the caps a request is checked against, and search, similar rows, items and embeddings.

Errors are ``RequestError``s with the HTTP status they map to and a message that says what to fix; the
app turns them into JSON. Everything that runs the model or the index goes through the run's batcher.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.encoders.loading import load_encoder, resolve_settings
from pipeline.errors import EncajesError
from pipeline.layout import Workdir
from pipeline.models import identify
from pipeline.runs import find_run_at
from pipeline.search import Searcher, query_settings
from pipeline.serve.batcher import MicroBatcher
from pipeline.settings import ServeSettings


class RequestError(Exception):
    """A request the server will not answer as asked: ``status`` (4xx) and what to fix."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


@dataclass
class EncodeWork:
    """One request's texts; with ``k``, also searched (``allowed``: a boolean per row id, or None)."""

    texts: list[str]
    k: int | None = None
    allowed: np.ndarray | None = None


@dataclass
class Encoded:
    vectors: np.ndarray
    tokens: int
    hits: list[list[dict[str, Any]]] | None


class ServedRun:
    """One run of the workdir, loaded once: its searcher, its encoder (kept warm) and its batcher."""

    def __init__(self, searcher: Searcher, settings: ServeSettings) -> None:
        self.searcher = searcher
        self.resolved = resolve_settings(query_settings(searcher.run))
        self.encoder = load_encoder(self.resolved)
        searcher._encoder = self.encoder  # the searcher's own text queries use the same warm encoder
        self.batcher: MicroBatcher[EncodeWork, Encoded] = MicroBatcher(
            self._process,
            budget=settings.batch_tokens,
            wait_s=settings.batch_wait_ms / 1000,
            max_queued=settings.max_queued_texts * self.resolved.max_length,
            name=f"encoder-{searcher.run.paths.root.name}",
        )
        umap = searcher.run.paths.umap
        self.map_path: Path | None = umap if umap.exists() else None

    @property
    def model(self) -> str:
        return self.searcher.run.model

    @property
    def pooling(self) -> str:
        return self.searcher.run.pooling

    def cost(self, texts: list[str]) -> int:
        """Tokens a request will take, estimated from its characters (tokenising happens in the worker,
        off the event loop): about 3 characters a token in tweets, capped at the max length."""
        return sum(min(len(text) // 3 + 2, self.resolved.max_length) for text in texts)

    def _process(self, works: list[EncodeWork]) -> list[Encoded]:
        """In the worker thread: every text of every request in one length-sorted pass, then one index
        search per distinct filter for the requests that search."""
        tokenized = [self.encoder.tokenize(work.texts)[0] for work in works]
        token_ids = [ids for one in tokenized for ids in one]
        vectors = self.encoder.embed_token_ids(
            token_ids, self.resolved.batch_size, self.resolved.token_budget
        )
        bounds = np.cumsum([0, *(len(work.texts) for work in works)])
        hits: dict[int, list[list[dict[str, Any]]]] = {}
        groups: dict[int, list[int]] = {}
        for i, work in enumerate(works):
            if work.k is not None:
                groups.setdefault(id(work.allowed), []).append(i)
        for members in groups.values():
            allowed = works[members[0]].allowed
            k = max(works[i].k or 0 for i in members)
            rows = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in members])
            found = iter(self.searcher.nearest(vectors[rows], k, allowed))
            for i in members:
                hits[i] = [next(found)[: works[i].k] for _ in range(bounds[i + 1] - bounds[i])]
        return [
            Encoded(vectors[bounds[i] : bounds[i + 1]], sum(map(len, tokenized[i])), hits.get(i))
            for i in range(len(works))
        ]

    async def encode(
        self, texts: list[str], k: int | None = None, allowed: np.ndarray | None = None
    ) -> Encoded:
        return await self.batcher.submit(EncodeWork(texts, k, allowed), self.cost(texts))

    def info(self) -> dict[str, Any]:
        report = self.searcher.index_report
        recall = report.recall["recall_at_k"] if report is not None and report.recall else None
        return {
            "model": self.model,
            "pooling": self.pooling,
            "dim": self.encoder.dim,
            "dtype": self.resolved.dtype,
            "max_length": self.resolved.max_length,
            "prefix": self.resolved.prefix,
            "rows": len(self.searcher.index),
            "index_kind": report.kind if report is not None else "exact",
            "index_search_params": report.search_params if report is not None else "",
            "recall_at_10": recall,
            "has_map": self.map_path is not None,
            "batching": self.batcher.stats.to_dict(),
        }


def open_runs(
    workdir: str | Path, models: Sequence[str] = (), poolings: Sequence[str] = ()
) -> list[Searcher]:
    """The runs to serve: those of ``models`` x ``poolings`` (each model's default pooling when none is
    given), or every finished run of the workdir when no model is given."""
    work = Workdir.at(workdir)
    work.require_corpus()
    folders = [paths for paths in work.run_folders() if find_run_at(paths) is not None]
    if models:
        wanted = {
            (identify(model).key, pooling)
            for model in models
            for pooling in (poolings or (identify(model).default_pooling,))
        }
        folders = [p for p in folders if tuple(p.root.name.rsplit("__", 1)) in wanted]
        if len(folders) < len(wanted):
            found = {tuple(p.root.name.rsplit("__", 1)) for p in folders}
            missing = ", ".join(f"{m} / {p}" for m, p in sorted(wanted - found))
            raise EncajesError(f"No embeddings in {work.root} for {missing}: run `encajes embed` first.")
    elif poolings:
        folders = [p for p in folders if p.root.name.rsplit("__", 1)[1] in poolings]
    if not folders:
        raise EncajesError(f"No embedded run in {work.root} to serve: run `encajes embed` first.")
    searchers = []
    for paths in folders:
        run = find_run_at(paths)
        assert run is not None
        searchers.append(Searcher.open(str(work.root), run.model, run.pooling))
    return searchers


class Service:
    """Every served run, and the checks a request passes before it costs anything."""

    def __init__(self, workdir: str | Path, runs: list[ServedRun], settings: ServeSettings) -> None:
        self.workdir, self.runs, self.settings = Path(workdir), runs, settings
        self.max_body_bytes = settings.max_texts * settings.max_text_chars * 4 + 65536  # UTF-8 + JSON

    @classmethod
    def load(
        cls,
        workdir: str | Path,
        settings: ServeSettings,
        models: Sequence[str] = (),
        poolings: Sequence[str] = (),
    ) -> Service:
        return cls(workdir, [ServedRun(s, settings) for s in open_runs(workdir, models, poolings)], settings)

    def pick(self, model: str | None, pooling: str | None) -> ServedRun:
        """The served run a request names (by model alias, key or hub id, and pooling); default the first."""
        if model is None and pooling is None:
            return self.runs[0]
        key = None if model is None else identify(model).key if _known(model) else model
        for run in self.runs:
            if (key is None or run.model in (key, model)) and (pooling is None or run.pooling == pooling):
                return run
        served = ", ".join(f"{r.model} / {r.pooling}" for r in self.runs)
        message = f"No served run for model {model!r}, pooling {pooling!r}: served are {served}."
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
            last = len(run.searcher.rows) - 1
            raise RequestError(404, f"No row {row_id} in the index (row ids run 0..{last}).", "row_id")
        return row_id

    def allowed(self, run: ServedRun, label: str | int | None, split: str | None) -> np.ndarray | None:
        if label is None and split is None:
            return None
        return run.searcher.rows.allowed(None if label is None else str(label), split)

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

    def map_points(self, run: ServedRun, limit: int = 100_000) -> dict[str, Any]:
        """The run's UMAP map (row_id, x, y, label), at most ``limit`` points, or 404 when it has none."""
        if run.map_path is None:
            raise RequestError(404, f"Run {run.model} / {run.pooling} has no map: run `encajes plot`.")
        frame = pd.read_parquet(run.map_path, columns=["row_id", "x", "y", "label"])
        if len(frame) > limit:
            frame = frame.sample(limit, random_state=0).sort_values("row_id")
        labels = frame["label"].astype(object).where(frame["label"].notna(), None)
        return {
            "row_id": frame["row_id"].astype(int).tolist(),
            "x": np.round(frame["x"].to_numpy(float), 4).tolist(),
            "y": np.round(frame["y"].to_numpy(float), 4).tolist(),
            "label": [None if v is None else str(v) for v in labels],
        }


def _known(model: str) -> bool:
    try:
        identify(model)
    except EncajesError:
        return False
    return True


def embedding_payload(vectors: np.ndarray, encoding_format: str) -> list[Any]:
    if encoding_format == "base64":
        return [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
    return vectors.tolist()
