"""Search: text queries or a corpus row in, nearest tweets out (rank, score, row_id, id, label, text)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from indexes.approximate import apply_search_params
from indexes.exact import SearchIndex, load_index, on_gpu
from pipeline.corpus import load_corpus
from pipeline.encoders.encoder import Encoder
from pipeline.errors import EncajesError
from pipeline.index import ensure_index
from pipeline.layout import Workdir
from pipeline.models import DEFAULT_MODEL
from pipeline.runs import Run, find_run
from pipeline.settings import EmbedSettings
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


def query_settings(run: Run, device: str = "auto") -> EmbedSettings:
    """The settings the corpus was embedded with, so a query lands in the same space: model (at the hub
    commit the run recorded), pooling, max length, prefix and dtype (fp16 only where it can run: on a
    CPU it is refused, and fp32 is used)."""
    inputs, settings = run.embed_entry["inputs"], run.embed_entry["outputs"]["settings"]
    dtype = inputs["dtype"]
    if dtype == "fp16":
        import torch

        if device == "cpu" or not torch.cuda.is_available():
            dtype = "fp32"
    return EmbedSettings(
        model=inputs["model"],
        pooling=inputs["pooling"],
        max_length=inputs["max_length"],
        prefix=inputs["prefix"],
        dtype=dtype,
        device=device,
        trust_remote_code=bool(settings.get("trust_remote_code")),
        revision=settings.get("model_revision") if inputs.get("weights", "").startswith("hub:") else None,
    )


@dataclass
class SearchResult:
    """Hits of one or more queries, as ``encajes search`` prints them."""

    hits: pd.DataFrame
    run: str
    k: int
    index_built: bool

    def to_dict(self) -> dict[str, Any]:
        results = [
            {"query": q, "hits": group.drop(columns="query").to_dict(orient="records")}
            for q, group in self.hits.groupby("query", sort=False)
        ]
        return {
            "stage": "search",
            "run": self.run,
            "k": self.k,
            "index_built": self.index_built,
            "results": results,
        }

    def lines(self) -> list[str]:
        import click

        width = max(shutil.get_terminal_size((120, 20)).columns, 60)
        out = []
        for q, group in self.hits.groupby("query", sort=False):
            out += [
                click.style(f"query: {q}", bold=True),
                f"{'rank':>4}  {'score':>6}  {'row_id':>7}  {'label':<8}  text",
            ]
            for hit in group.itertuples():
                text = " ".join(str(hit.text).split())
                line = f"{hit.rank:>4}  {hit.score:6.3f}  {hit.row_id:>7}  {hit.label or '-'!s:<8}  {text}"
                out.append(line[:width])
            out.append("")
        return out


@dataclass
class Searcher:
    """A loaded run: its index, its corpus and (once a text query comes) its query encoder."""

    run: Run
    index: SearchIndex
    corpus: pd.DataFrame
    index_built: bool
    _encoder: Encoder | None = None

    @classmethod
    def open(cls, workdir: str, model: str = DEFAULT_MODEL, pooling: str | None = None) -> Searcher:
        work = Workdir.at(workdir)
        run = find_run(work, model, pooling)
        report = ensure_index(work, run)  # a missing or stale exact index is cheap: (re)build it
        index = load_index(run.paths.index, run.paths.index_ids)
        apply_search_params(index.index, report.search_params)
        index = on_gpu(index)
        wanted = (run.model, run.pooling, run.embed_entry["outputs"]["dim"])
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
        return cls(run, index, corpus, not report.skipped)

    @property
    def encoder(self) -> Encoder:
        """The query encoder, with the very settings the corpus was embedded with (device aside)."""
        if self._encoder is None:
            from pipeline.encoders.loading import encoder_for

            self._encoder = encoder_for(query_settings(self.run))
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
            query = load_embeddings(self.run.paths.embeddings).take(np.array([position]))[0]
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


def read_queries(path: Path) -> list[str]:
    """One query per non-empty line."""
    queries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not queries:
        raise EncajesError(f"{path}: no queries (one per line).")
    return queries


def search(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    k: int = 10,
    query: str | None = None,
    row: str | None = None,
    queries_file: str | Path | None = None,
) -> SearchResult:
    """What ``encajes search`` asks: neighbours of a text, of a corpus row, or of each line of a file."""
    if sum(x is not None for x in (query, row, queries_file)) != 1:
        raise EncajesError("Give exactly one of: a QUERY text, --id ROW, or --queries FILE.")
    searcher = Searcher.open(str(workdir), model, pooling)
    if row is not None:
        hits = searcher.search_row(row, k)
    else:
        hits = searcher.search_texts([query] if query is not None else read_queries(Path(queries_file)), k)
    return SearchResult(hits, searcher.run.paths.root.name, k, searcher.index_built)
