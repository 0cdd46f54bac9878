"""The searcher: a run's index, corpus rows and query encoder, loaded once; text queries, vectors or a
corpus row in, nearest tweets out (rank, score, row_id, id, label, text). Used by ``encajes search``, the
Python API and the server; it prints nothing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from indexes.approximate import apply_search_params
from indexes.exact import SearchIndex, load_index, on_gpu
from indexes.filtered import fetch_allowed, scored_exactly
from pipeline.artifacts.corpus import load_corpus, texts_hash
from pipeline.artifacts.fields import FieldInfo, schema_fields
from pipeline.artifacts.run_layer import find_layer_run
from pipeline.artifacts.runs import Run
from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.settings import DEFAULT_MODEL, EmbedSettings
from pipeline.core.usercache import cache_paths
from pipeline.search.asking import Ask, Candidates, rows_query, vector_query
from pipeline.search.collapse import collapse
from pipeline.search.filters import Condition, conditions_from, parse_where
from pipeline.search.rows import CorpusRows
from pipeline.stages.index.stage import IndexReport, ensure_index, fresh_index

if TYPE_CHECKING:  # the query encoder (torch) is imported only when a text query needs it
    from pipeline.artifacts.store import Embeddings
    from pipeline.encoders.encoder import Encoder
    from pipeline.encoders.onnx_query import OnnxQueryEncoder

ROW_ID = re.compile(r"-?[0-9]{1,18}")  # a row id as text: fits int64
DEDUP = 0.95  # cosine at or above which a hit is folded into a better one, where a person reads hits
FOLD_FETCH = 4  # candidates fetched per wanted hit when folding near-duplicates
FOLD_MOST = 20_000  # candidates one folded query may read (a retweet storm: thousands of copies)

RESULT_COLUMNS = ["query", "rank", "score", "row_id", "id", "label", "text", "fields", "similar"]


def hits_frame(queries: list[str], hits: list[list[dict[str, Any]]]) -> pd.DataFrame:
    """Hits per query -> one row per hit, with its query."""
    rows = [
        {"query": query, **hit} for query, query_hits in zip(queries, hits, strict=True) for hit in query_hits
    ]
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    frame.attrs["queries"] = list(queries)  # a query without hits has no row, but is still asked
    return frame


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


@dataclass
class Searcher:
    """A loaded run: its index, its corpus and (once a text query comes) its query encoder."""

    run: Run
    index: SearchIndex
    corpus: pd.DataFrame
    index_built: bool
    index_report: IndexReport | None = None  # kind, search setting and measured recall of the index
    fast_queries: bool = False  # encode queries with ONNX Runtime where the run allows it
    fields: list[FieldInfo] = field(default_factory=list)  # the corpus' columns a filter may name
    _encoder: Encoder | None = None
    _fast: OnnxQueryEncoder | bool | None = None
    _stored: Embeddings | None = None
    _subsets: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows = CorpusRows(self.corpus, self.fields)
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
        if run.embed.texts_sha256 and run.embed.texts_sha256 != texts_hash(work):
            raise EncajesError(
                f"The corpus texts changed since {run.paths.root.name} was embedded, so its vectors no "
                f"longer match the rows: run `encajes embed -w {work.root} -m {run.model} --pooling "
                f"{run.pooling}` again (`encajes status` shows every stale run)."
            )
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
        corpus = load_corpus(work)
        missing = np.setdiff1d(index.ids, corpus["row_id"].to_numpy())
        if len(missing):
            raise EncajesError(
                f"The index of {run.paths.root.name} has {len(missing)} row ids that are not in the corpus: "
                f"the corpus changed since embedding. Run `encajes embed` again."
            )
        return cls(run, index, corpus, not report.skipped, report, fields=schema_fields(work.corpus))

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
        """Top-k hits per query vector among the rows ``allowed``, ``leave_out`` never returned, nothing
        folded: exactly what a brute-force search over those rows answers."""
        out = () if leave_out is None else (leave_out,)
        return self.find(vectors, Ask(k=k, allowed=allowed, leave_out=out))

    def find(self, vectors: np.ndarray, ask: Ask) -> list[list[dict[str, Any]]]:
        """Hits per query vector as ``ask`` says. A filter of few rows (a rare label) is scored exactly on
        those rows; a broader one fetches 4x more from the index until enough pass. With folding, 4x the
        hits wanted are fetched and folded, and more while the distinct ones fall short."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        fetch = ask.wanted * (FOLD_FETCH if ask.folds else 1)
        most = max(FOLD_MOST, fetch) if ask.folds else len(self.index)
        while True:
            found = self._candidates(vectors, ask, fetch)
            pages = [self._page(c, ask) for c in found]
            if all(done for _, done in pages) or fetch >= min(len(self.index), most):
                return [hits for hits, _ in pages]
            fetch = min(len(self.index), most, fetch * 4)

    def _page(self, found: Candidates, ask: Ask) -> tuple[list[dict[str, Any]], bool]:
        """The hits ``offset`` .. ``offset + k`` of one query's candidates, and whether they are final."""
        if not ask.folds:
            heads = [(i, []) for i in range(min(len(found.row_ids), ask.wanted))]
            done = len(found.row_ids) >= ask.wanted or found.exhausted
        else:
            vectors = self._vectors_at(self._positions[found.row_ids]) if len(found.row_ids) else found.scores
            given = [r for r in ask.leave_out if self.indexed(r)]  # their copies are no news: folded away
            seeds = self._vectors_at(self._positions[given]) if given else None
            folded, reached = collapse(np.asarray(vectors, np.float32), ask.dedup, ask.wanted, seeds=seeds)
            heads = [(f.at, f.similar) for f in folded]
            done = reached or found.exhausted
        heads = heads[ask.offset : ask.wanted]
        hits = self._hits(found.row_ids[[at for at, _ in heads]], found.scores[[at for at, _ in heads]])
        for hit, (_, similar) in zip(hits, heads, strict=True):
            hit["rank"] += ask.offset
            hit["similar"] = found.row_ids[similar].tolist()
        return hits, done

    def _candidates(self, vectors: np.ndarray, ask: Ask, fetch: int) -> list[Candidates]:
        """Up to ``fetch`` allowed candidates per query, best first, none below ``min_score``."""
        if scored_exactly(ask.allowed):
            return self._candidates_among(vectors, ask, fetch)
        fetched = fetch_allowed(self.index, vectors, fetch, ask.allowed, ask.leave_out)
        scores, row_ids, keep, whole = fetched.scores, fetched.row_ids, fetched.keep, fetched.whole
        out = []
        for found, ids, kept in zip(scores, row_ids, keep, strict=True):
            below = ask.min_score is not None and len(found) > 0 and found[-1] < ask.min_score
            if ask.min_score is not None:
                kept = kept & (found >= ask.min_score)
            ids, found = ids[kept], found[kept]
            order = np.lexsort((ids, -found))  # equal scores (copies): the first row of the corpus first
            out.append(Candidates(ids[order][:fetch], found[order][:fetch], whole or below))
        return out

    def _candidates_among(self, vectors: np.ndarray, ask: Ask, fetch: int) -> list[Candidates]:
        """The allowed rows scored exactly (their vectors kept while the same filter is asked again)."""
        positions, matrix = self._subset(ask.allowed)
        if ask.leave_out:
            keep = ~np.isin(self.index.ids[positions], ask.leave_out)
            positions, matrix = positions[keep], matrix[keep]
        ids = self.index.ids[positions]
        scores = vectors @ matrix.T
        out = []
        for row in scores:
            top = np.argpartition(-row, fetch)[:fetch] if fetch < len(row) else np.arange(len(row))
            top = top[np.argsort(-row[top], kind="stable")]
            whole = fetch >= len(row)
            if ask.min_score is not None:
                whole |= len(top) > 0 and row[top[-1]] < ask.min_score  # the rest score lower still
                top = top[row[top] >= ask.min_score]
            out.append(Candidates(ids[top], row[top], whole))
        return out

    def _subset(self, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index positions of the allowed rows and their vectors, remembered for the last few filters
        (a page that alternates two filters reads each once)."""
        for held in self._subsets:
            if held[0] is allowed:
                return held[1], held[2]
        row_ids = np.flatnonzero(allowed)
        positions = self._positions[row_ids[row_ids < len(self._positions)]]
        positions = np.sort(positions[positions >= 0])
        matrix = self._vectors_at(positions) if len(positions) else np.zeros((0, self.index.dim), np.float32)
        self._subsets = [(allowed, positions, np.asarray(matrix, dtype=np.float32)), *self._subsets[:3]]
        return positions, self._subsets[0][2]

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
            return self.stored().rows(positions)

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

    def ask(
        self,
        k: int = 10,
        where: Mapping[str, Any] | Sequence[Condition | str] | str | None = None,
        dedup: float = DEDUP,
        min_score: float | None = None,
        offset: int = 0,
    ) -> Ask:
        """An ``Ask`` from a person's options; ``where``: a mapping as the API takes it, conditions, or
        ``--where`` texts ("lang=es"), checked against the corpus' fields."""
        if isinstance(where, str):  # "lang=es", as --where says it
            where = [where]
        if where is None or isinstance(where, Mapping):
            conditions = conditions_from(where)
        else:
            conditions = [c if isinstance(c, Condition) else parse_where([c])[0] for c in where]
        return Ask(k, offset, min_score, dedup, self.rows.allowed(conditions))

    def search_texts(self, queries: list[str], k: int = 10, ask: Ask | None = None) -> pd.DataFrame:
        """Hits of each text; by default ``k`` of them, near-duplicates folded."""
        queries = list(queries)
        if not queries or any(not q.strip() for q in queries):
            raise EncajesError("Give non-empty query text(s).")
        return hits_frame(queries, self.find(self.query_vectors(queries), ask or Ask(k, dedup=DEDUP)))

    def search_vector(self, vector: Sequence[float] | np.ndarray, ask: Ask) -> pd.DataFrame:
        """Hits of a query vector given as numbers (checked for dimension, normalised)."""
        return hits_frame(["vector"], self.find(vector_query(vector, self.index.dim)[None, :], ask))

    def search_like(
        self, positive: Sequence[str | int], negative: Sequence[str | int], ask: Ask
    ) -> pd.DataFrame:
        """More like the ``positive`` rows, less like the ``negative`` ones (row ids or ids), all of them
        left out of the hits."""
        pos = [self.lookup_row(str(row)) for row in positive]
        neg = [self.lookup_row(str(row)) for row in negative]
        query = self.like_query(pos, neg)
        ask = replace(ask, leave_out=tuple(ask.leave_out) + tuple(pos + neg))
        name = "like " + ",".join(map(str, pos)) + (" unlike " + ",".join(map(str, neg)) if neg else "")
        return hits_frame([name], self.find(query[None, :], ask))

    def like_query(self, positive: list[int], negative: list[int]) -> np.ndarray:
        """The query vector of indexed rows liked and disliked (see ``rows_query``)."""
        vectors = self._vectors_at(self._positions[positive + negative]) if positive else np.zeros((0, 1))
        return rows_query(vectors[: len(positive)], vectors[len(positive) :])

    def indexed(self, row_id: int) -> bool:
        return 0 <= row_id < len(self._positions) and self._positions[row_id] >= 0

    def row_vector(self, row_id: int) -> np.ndarray:
        return self._vectors_at(self._positions[[row_id]])[0]

    def similar(self, row_id: int, k: int = 10, allowed: np.ndarray | None = None,
                ask: Ask | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Neighbours of an indexed corpus row, the row itself left out (``ask``: as asked, else ``k``
        among ``allowed``, nothing folded)."""
        ask = replace(ask or Ask(k, allowed=allowed), leave_out=(row_id,))
        return self.find(self.row_vector(row_id)[None, :], ask)[0]

    def search_row(self, row: str, k: int = 10, ask: Ask | None = None) -> pd.DataFrame:
        """Neighbours of a corpus row (by ``row_id`` or by ``id``), the row itself left out."""
        row_id = self.lookup_row(row)
        return hits_frame([f"row {row_id}"], [self.similar(row_id, ask=ask or Ask(k, dedup=DEDUP))])

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
