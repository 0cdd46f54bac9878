"""Search: text queries or a corpus row in, nearest tweets out (rank, score, row_id, label, text)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from indexes.approximate import apply_search_params
from indexes.exact import SearchIndex, load_index, on_gpu
from pipeline.embed import EmbedSettings, find_run, load_encoder, resolve_settings
from pipeline.encoder import Encoder
from pipeline.errors import EncajesError
from pipeline.index import build_run_index
from pipeline.ingest import load_corpus
from pipeline.layout import RunPaths, Workdir, stage_entry
from pipeline.models import DEFAULT_MODEL
from pipeline.store import load_embeddings

RESULT_COLUMNS = ["query", "rank", "score", "row_id", "id", "label", "text"]


def hits_frame(
    queries: list[str], scores: np.ndarray, row_ids: np.ndarray, corpus: pd.DataFrame
) -> pd.DataFrame:
    """The pure core: FAISS answers + corpus -> one row per hit, joined on ``row_id``."""
    by_row = corpus.set_index("row_id")
    rows = []
    for q, query in enumerate(queries):
        for rank, (score, row_id) in enumerate(zip(scores[q], row_ids[q], strict=True), start=1):
            if row_id < 0:
                continue
            hit = by_row.loc[int(row_id)]
            rows.append(
                {
                    "query": query,
                    "rank": rank,
                    "score": float(score),
                    "row_id": int(row_id),
                    "id": hit["id"],
                    "label": None if pd.isna(hit["label"]) else hit["label"],
                    "text": hit["text"],
                }
            )
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


@dataclass
class Searcher:
    """A loaded run: its index, its corpus and (once a text query comes) its query encoder."""

    run: RunPaths
    embed_entry: dict
    index: SearchIndex
    corpus: pd.DataFrame
    index_built: bool
    _encoder: Encoder | None = None

    @classmethod
    def open(cls, workdir: str, model: str = DEFAULT_MODEL, pooling: str | None = None) -> Searcher:
        work = Workdir.at(workdir)
        run, entry = find_run(work, model, pooling)
        report = build_run_index(run, entry)  # a missing or stale exact index is cheap: (re)build it
        index = load_index(run.index, run.index_ids)
        built_for = (stage_entry(run.manifest, "index") or {}).get("outputs", {})
        apply_search_params(index.index, built_for.get("search_params", ""))
        index = on_gpu(index)
        wanted = (entry["inputs"]["model"], entry["inputs"]["pooling"], entry["outputs"]["dim"])
        if (built_for.get("model"), built_for.get("pooling"), index.dim) != wanted:
            raise EncajesError(
                f"The index in {run.root} was built for {built_for.get('model')} / "
                f"{built_for.get('pooling')} ({index.dim}-d), not {wanted[0]} / {wanted[1]} ({wanted[2]}-d): "
                f"run `encajes index --force`."
            )
        corpus = load_corpus(work)
        missing = np.setdiff1d(index.ids, corpus["row_id"].to_numpy())
        if len(missing):
            raise EncajesError(
                f"The index of {run.root.name} has {len(missing)} row ids that are not in the corpus: the "
                f"corpus changed since embedding. Run `encajes embed` again."
            )
        return cls(run, entry, index, corpus, not report.skipped)

    @property
    def encoder(self) -> Encoder:
        """The query encoder, with the very settings the corpus was embedded with (device aside)."""
        if self._encoder is None:
            inputs = self.embed_entry["inputs"]
            settings = EmbedSettings(
                model=inputs["model"],
                pooling=inputs["pooling"],
                max_length=inputs["max_length"],
                prefix=inputs["prefix"],
                trust_remote_code=bool(self.embed_entry["outputs"]["settings"].get("trust_remote_code")),
            )
            self._encoder = load_encoder(resolve_settings(settings))
        return self._encoder

    def search_texts(self, queries: list[str], k: int = 10) -> pd.DataFrame:
        queries = list(queries)
        if not queries or any(not q.strip() for q in queries):
            raise EncajesError("Give non-empty query text(s).")
        vectors = self.encoder.encode(queries, batch_size=64).vectors
        scores, row_ids = self.index.search(vectors, k)
        return hits_frame(queries, scores, row_ids, self.corpus)

    def search_row(self, row: str, k: int = 10) -> pd.DataFrame:
        """Neighbours of a corpus row (by ``row_id`` or by ``id``), the row itself left out."""
        row_id = self.lookup_row(row)
        position = int(np.flatnonzero(self.index.ids == row_id)[0])
        try:
            query = self.index.vector(position)
        except RuntimeError:  # IVF indexes keep no position -> vector map: take the stored embedding
            query = load_embeddings(self.run.embeddings).take(np.array([position]))[0]
        scores, row_ids = self.index.search(query, k + 1)
        keep = row_ids[0] != row_id
        scores, row_ids = scores[:, keep][:, :k], row_ids[:, keep][:, :k]
        return hits_frame([f"row {row_id}"], scores, row_ids, self.corpus)

    def lookup_row(self, row: str) -> int:
        if str(row).lstrip("-").isdigit() and int(row) in set(self.index.ids.tolist()):
            return int(row)
        matches = self.corpus.loc[self.corpus["id"] == str(row), "row_id"]
        if len(matches) == 0:
            raise EncajesError(
                f"No row with row_id or id {row!r} in the corpus (row_ids run 0..{len(self.corpus) - 1})."
            )
        if len(matches) > 1:
            raise EncajesError(f"id {row!r} is used by {len(matches)} rows; give the row_id instead.")
        return int(matches.iloc[0])
