"""A small Python API over the stages, for notebooks: open a workdir, ingest, embed, search."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.embed import (
    EmbedReport,
    EmbedSettings,
    embed_corpus,
    find_run,
    load_encoder,
    resolve_settings,
)
from pipeline.index import IndexReport, index_run
from pipeline.ingest import Columns, IngestReport, ingest, load_corpus
from pipeline.layout import Workdir
from pipeline.models import DEFAULT_MODEL
from pipeline.search import Searcher
from pipeline.store import Embeddings, load_embeddings


class Workspace:
    """One workdir. Every method runs the same code as the matching CLI command, reruns skip fresh work."""

    def __init__(self, path: str | Path) -> None:
        self.workdir = Workdir.at(path)
        self._searchers: dict[tuple[str, str | None], Searcher] = {}

    def ingest(
        self, csv_paths: Sequence[str | Path], columns: Columns | None = None, **options
    ) -> IngestReport:
        self._searchers.clear()
        return ingest(csv_paths, self.workdir.root, columns=columns, **options)

    @property
    def corpus(self) -> pd.DataFrame:
        return load_corpus(self.workdir)

    def embed(
        self,
        model: str = DEFAULT_MODEL,
        pooling: str | None = None,
        progress: bool = True,
        force: bool = False,
        **settings,
    ) -> EmbedReport:
        self._searchers.pop((model, pooling), None)
        return embed_corpus(
            self.workdir.root,
            EmbedSettings(model=model, pooling=pooling, **settings),
            force=force,
            progress=progress,
        )

    def index(
        self, model: str = DEFAULT_MODEL, pooling: str | None = None, force: bool = False
    ) -> IndexReport:
        return index_run(self.workdir.root, model, pooling, force=force)

    def embeddings(self, model: str = DEFAULT_MODEL, pooling: str | None = None) -> Embeddings:
        """A run's vectors and row ids; for a ``vectors.npy`` run, a read-only memmap (use ``blocks``)."""
        run, _ = find_run(self.workdir, model, pooling)
        return load_embeddings(run.embeddings)

    def search(
        self, query: str | Sequence[str], k: int = 10, model: str = DEFAULT_MODEL, pooling: str | None = None
    ) -> pd.DataFrame:
        queries = [query] if isinstance(query, str) else list(query)
        return self._searcher(model, pooling).search_texts(queries, k)

    def similar_to(
        self, row: int | str, k: int = 10, model: str = DEFAULT_MODEL, pooling: str | None = None
    ) -> pd.DataFrame:
        return self._searcher(model, pooling).search_row(str(row), k)

    def _searcher(self, model: str, pooling: str | None) -> Searcher:
        key = (model, pooling)
        if key not in self._searchers:
            self._searchers[key] = Searcher.open(str(self.workdir.root), model, pooling)
        return self._searchers[key]


def embed_texts(
    texts: Sequence[str], model: str = DEFAULT_MODEL, pooling: str | None = None, **settings
) -> np.ndarray:
    """Embed a list of texts without a workdir: L2-normalised float32, one row per text."""
    encoder = load_encoder(resolve_settings(EmbedSettings(model=model, pooling=pooling, **settings)))
    return encoder.encode(list(texts)).vectors
