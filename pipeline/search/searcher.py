"""The searcher: a run's index, corpus rows and query encoder, loaded once; text queries, vectors or a
corpus row in, nearest tweets out (rank, score, row_id, id, label, text). Used by ``encajes search``, the
Python API and the server; it prints nothing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from indexes.approximate import apply_search_params
from indexes.exact import SearchIndex, load_index, on_gpu
from pipeline.artifacts.corpus import load_corpus
from pipeline.artifacts.run_layer import find_layer_run
from pipeline.artifacts.runs import Run
from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.settings import DEFAULT_MODEL, EmbedSettings
from pipeline.core.usercache import cache_paths
from pipeline.stages.index.stage import IndexReport, ensure_index, fresh_index

if TYPE_CHECKING:  # the query encoder (torch) is imported only when a text query needs it
    from pipeline.artifacts.store import Embeddings
    from pipeline.encoders.encoder import Encoder
    from pipeline.encoders.onnx_query import OnnxQueryEncoder

ROW_ID = re.compile(r"-?[0-9]{1,18}")  # a row id as text: fits int64
SUBSET_EXACT = 20_000  # a filter keeping at most this many rows is scored exactly on them

RESULT_COLUMNS = ["query", "rank", "score", "row_id", "id", "label", "text"]


def hits_frame(queries: list[str], hits: list[list[dict[str, Any]]]) -> pd.DataFrame:
    """Hits per query -> one row per hit, with its query."""
    rows = [
        {"query": query, **hit} for query, query_hits in zip(queries, hits, strict=True) for hit in query_hits
    ]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def query_settings(run: Run, device: str = "auto") -> EmbedSettings:
    """The settings the corpus was embedded with, so a query lands in the same space: model (at the hub
    commit the run recorded), pooling, max length, prefix and dtype (fp16 only where it can run: on a
    CPU it is refused, and fp32 is used)."""
    record = run.embed
    dtype = record.dtype
    if dtype == "fp16":
        import torch

        if device == "cpu" or not torch.cuda.is_available():
            dtype = "fp32"
    return EmbedSettings(
        model=record.model,
        pooling=record.pooling,
        max_length=record.max_length,
        prefix=record.prefix,
        dtype=dtype,
        device=device,
        trust_remote_code=record.trust_remote_code,
        revision=record.model_revision if record.from_hub else None,
    )


def run_layers(run: Run) -> tuple[str, ...] | None:
    """What the torch encoder pools for this run's queries: None for the last layer, else its layer."""
    return None if run.layer == LAST_LAYER else (run.layer,)


def one_layer(vectors: np.ndarray) -> np.ndarray:
    """(n, dim) vectors of an encoder that pools one layer: (1, n, dim) -> (n, dim)."""
    return vectors[0] if vectors.ndim == 3 else vectors


def fast_query_encoder(run: Run) -> OnnxQueryEncoder | None:
    """The run's query encoder for ONNX Runtime (exported on first use, once per model weights: a
    last-layer graph, and one of every hidden state for layer runs); None where it cannot be used (a run
    not in fp32, remote code, no onnxruntime) and torch answers."""
    from pipeline.encoders.onnx_query import runtime_available
    from pipeline.encoders.query_cache import prepared_query_encoder

    settings = query_settings(run, device="cpu")
    if run.embed.dtype != "fp32" or settings.trust_remote_code or not runtime_available():
        return None
    key = hashlib.sha256(f"{run.model}\n{run.embed.weights}".encode()).hexdigest()[:20]
    key += "" if run.layer == LAST_LAYER else "-states"
    return prepared_query_encoder(settings, cache_paths().query_encoder(key), run.layer)


class CorpusRows:
    """The corpus by ``row_id``: the columns a hit shows, looked up without a pandas join per query."""

    SHOWN = ("id", "label", "split", "text")

    def __init__(self, corpus: pd.DataFrame) -> None:
        self.row_ids = corpus["row_id"].to_numpy(dtype=np.int64)
        self._where = pd.Index(self.row_ids)
        self._columns = {
            name: corpus[name].astype(object).where(corpus[name].notna(), None).to_numpy()
            for name in self.SHOWN
            if name in corpus
        }
        self._filters: dict[tuple[str | None, str | None], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.row_ids)

    def positions(self, row_ids: np.ndarray) -> np.ndarray:
        """Corpus positions of ``row_ids``; -1 where a row id is not in the corpus."""
        return self._where.get_indexer(np.asarray(row_ids, dtype=np.int64))

    def records(self, row_ids: Sequence[int]) -> list[dict[str, Any]]:
        """``row_id`` plus the shown columns of each row (None for a missing value)."""
        positions = self.positions(np.asarray(row_ids, dtype=np.int64))
        return [
            {"row_id": int(row_id), **{name: column[p] for name, column in self._columns.items()}}
            for row_id, p in zip(row_ids, positions, strict=True)
        ]

    def allowed(self, label: str | None = None, split: str | None = None) -> np.ndarray:
        """A boolean per row id (indexable by row id): does the row have this label and split?"""
        key = (label, split)
        if key not in self._filters:
            match = np.ones(len(self.row_ids), dtype=bool)
            for name, wanted in (("label", label), ("split", split)):
                if wanted is not None:
                    column = self._columns.get(name)
                    match &= (column == wanted) if column is not None else False
            allowed = np.zeros(int(self.row_ids.max(initial=-1)) + 1, dtype=bool)
            allowed[self.row_ids[match]] = True
            if len(self._filters) > 64:  # a bounded memo: every distinct filter costs one corpus pass
                self._filters.clear()
            self._filters[key] = allowed
        return self._filters[key]


@dataclass
class Searcher:
    """A loaded run: its index, its corpus and (once a text query comes) its query encoder."""

    run: Run
    index: SearchIndex
    corpus: pd.DataFrame
    index_built: bool
    index_report: IndexReport | None = None  # kind, search setting and measured recall of the index
    fast_queries: bool = False  # encode queries with ONNX Runtime where the run allows it
    _encoder: Encoder | None = None
    _fast: OnnxQueryEncoder | bool | None = None
    _stored: Embeddings | None = None

    def __post_init__(self) -> None:
        self.rows = CorpusRows(self.corpus)
        self._positions = np.full(int(self.index.ids.max(initial=-1)) + 1, -1, dtype=np.int64)
        self._positions[self.index.ids] = np.arange(len(self.index.ids))  # row id -> index position

    @classmethod
    def open(
        cls,
        workdir: str,
        model: str = DEFAULT_MODEL,
        pooling: str | None = None,
        on_build: Callable[[str], None] | None = None,
        layer: str = LAST_LAYER,
    ) -> Searcher:
        """The run's searcher (``layer``: its hidden layer, as ``--layer`` takes it). A run without a
        fresh index gets one built now (exact below 100,000 rows, as ``encajes index`` chooses), and
        ``on_build`` is told first, so that nothing is written to the workdir unannounced."""
        work = Workdir.at(workdir)
        run = find_layer_run(work, model, pooling, layer)
        report = fresh_index(work, run)
        if report is None:
            if on_build is not None:
                on_build(
                    f"{run.paths.root.name} has no fresh index: building one in {run.paths.root} "
                    "(`encajes index` builds it ahead of time)"
                )
            report = ensure_index(work, run)
        index = load_index(run.paths.index, run.paths.index_ids)
        apply_search_params(index.index, report.search_params)
        index = on_gpu(index)
        wanted = (run.model, run.pooling, run.embed.dim)
        if (report.model, report.pooling, index.dim) != wanted:
            raise EncajesError(
                f"The index in {run.paths.root} was built for {report.model} / {report.pooling} "
                f"({index.dim}-d), not {wanted[0]} / {wanted[1]} ({wanted[2]}-d): "
                "run `encajes index --force`."
            )
        corpus = load_corpus(work, ["row_id", *CorpusRows.SHOWN])
        missing = np.setdiff1d(index.ids, corpus["row_id"].to_numpy())
        if len(missing):
            raise EncajesError(
                f"The index of {run.paths.root.name} has {len(missing)} row ids that are not in the corpus: "
                f"the corpus changed since embedding. Run `encajes embed` again."
            )
        return cls(run, index, corpus, not report.skipped, report)

    @property
    def encoder(self) -> Encoder:
        """The query encoder, with the very settings (and hidden layer) the corpus was embedded with
        (device aside)."""
        if self._encoder is None:
            from pipeline.encoders.loading import encoder_for, load_encoder, resolve_settings

            settings, layers = query_settings(self.run), run_layers(self.run)
            loaded = (
                encoder_for(settings) if layers is None else load_encoder(resolve_settings(settings), layers)
            )
            self._encoder = loaded
        return self._encoder

    def use_encoder(self, encoder: Encoder) -> None:
        """Answer text queries with this (already loaded) encoder."""
        self._encoder = encoder

    def nearest(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None, leave_out: int | None = None
    ) -> list[list[dict[str, Any]]]:
        """Top-k hits per query vector among the rows ``allowed`` (a boolean per row id, None: all),
        ``leave_out`` a row id never returned. A filter of few rows (a rare label) is scored exactly on
        those rows; a broader one fetches 4x more from the index until k pass."""
        if allowed is not None and int(allowed.sum()) <= SUBSET_EXACT:
            return self._nearest_among(vectors, k, np.flatnonzero(allowed), leave_out)
        fetch = k + (leave_out is not None)
        while True:
            scores, row_ids = self.index.search(vectors, fetch)
            keep = row_ids >= 0
            if allowed is not None:
                keep &= allowed[np.clip(row_ids, 0, len(allowed) - 1)] & (row_ids < len(allowed))
            if leave_out is not None:
                keep &= row_ids != leave_out
            if allowed is None or keep.sum(axis=1).min() >= k or fetch >= len(self.index):
                break
            fetch = min(len(self.index), fetch * 4)
        rows = zip(scores, row_ids, keep, strict=True)
        return [self._hits(ids[kept][:k], found[kept][:k]) for found, ids, kept in rows]

    def _nearest_among(
        self, vectors: np.ndarray, k: int, row_ids: np.ndarray, leave_out: int | None
    ) -> list[list[dict[str, Any]]]:
        positions = self._positions[row_ids[row_ids < len(self._positions)]]
        positions = positions[positions >= 0]
        if leave_out is not None and leave_out < len(self._positions):
            positions = positions[positions != self._positions[leave_out]]
        if len(positions) == 0:
            return [[] for _ in vectors]
        scores = np.atleast_2d(vectors).astype(np.float32) @ self._vectors_at(positions).T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ids = self.index.ids[positions]
        return [self._hits(ids[order], row[order]) for row, order in zip(scores, top, strict=True)]

    def _hits(self, row_ids: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        hits = self.rows.records(row_ids.tolist())
        for rank, (hit, score) in enumerate(zip(hits, scores.tolist(), strict=True), start=1):
            hit.pop("split", None)
            hit.update(rank=rank, score=float(score))
        return hits

    def _vectors_at(self, positions: np.ndarray) -> np.ndarray:
        try:  # a flat index holds the vectors
            return self.index.index.reconstruct_batch(positions)
        except (RuntimeError, AttributeError):  # an IVF index keeps no position -> vector map
            return self.stored().take(positions)

    def stored(self) -> Embeddings:
        """The run's stored vectors, read once (a ``vectors.npy`` run: a memmap)."""
        if self._stored is None:
            from pipeline.artifacts.store import load_embeddings

            self._stored = load_embeddings(self.run.paths.embeddings)
        return self._stored

    def query_vectors(self, queries: list[str]) -> np.ndarray:
        """With ``fast_queries`` (a one-off CLI query), ONNX Runtime when the run allows it (fp32, no
        remote code) and the export exists or can be made; else the torch encoder."""
        if self.fast_queries and self._fast is None:
            self._fast = fast_query_encoder(self.run) or False
        if self._fast:
            return self._fast.encode(queries)
        return one_layer(self.encoder.encode(queries, batch_size=64).vectors)

    def search_texts(self, queries: list[str], k: int = 10) -> pd.DataFrame:
        queries = list(queries)
        if not queries or any(not q.strip() for q in queries):
            raise EncajesError("Give non-empty query text(s).")
        return hits_frame(queries, self.nearest(self.query_vectors(queries), k))

    def indexed(self, row_id: int) -> bool:
        return 0 <= row_id < len(self._positions) and self._positions[row_id] >= 0

    def row_vector(self, row_id: int) -> np.ndarray:
        return self._vectors_at(self._positions[[row_id]])[0]

    def similar(self, row_id: int, k: int = 10, allowed: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Neighbours of an indexed corpus row, the row itself left out."""
        return self.nearest(self.row_vector(row_id)[None, :], k, allowed, leave_out=row_id)[0]

    def search_row(self, row: str, k: int = 10) -> pd.DataFrame:
        """Neighbours of a corpus row (by ``row_id`` or by ``id``), the row itself left out."""
        row_id = self.lookup_row(row)
        return hits_frame([f"row {row_id}"], [self.similar(row_id, k)])

    def lookup_row(self, row: str) -> int:
        if ROW_ID.fullmatch(str(row)) and self.indexed(int(row)):
            return int(row)
        matches = self.corpus.loc[self.corpus["id"] == str(row), "row_id"]
        if len(matches) == 0:
            raise EncajesError(
                f"No row with row_id or id {row!r} in the index: give a corpus row's row_id or its id "
                "(every hit shows both)."
            )
        if len(matches) > 1:
            raise EncajesError(f"id {row!r} is used by {len(matches)} rows; give the row_id instead.")
        return int(matches.iloc[0])
