"""A small Python API over the stages, for notebooks: open a workdir, ingest, embed, search, run it all."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.artifacts.corpus import load_corpus
from pipeline.artifacts.run_layer import find_layer_run
from pipeline.artifacts.store import Embeddings, load_embeddings
from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.settings import DEFAULT_MODEL, Columns, EmbedSettings, IndexSettings
from pipeline.report.chain import ChainResult, run_chain
from pipeline.report.compare import CompareSpec, spec_from
from pipeline.search.searcher import DEDUP, Searcher
from pipeline.stages.embed.stage import EmbedReport, LayersReport, embed_corpus
from pipeline.stages.index.stage import IndexReport, index_run
from pipeline.stages.ingest.stage import IngestReport, ingest

if TYPE_CHECKING:
    from pipeline.encoders.encoder import Encoder


class Workspace:
    """One workdir. Every method runs the same code as the matching CLI command, reruns skip fresh work.
    ``layer`` picks a run of another hidden layer than the last, as ``--layer`` does ("6", "-2", "last4")."""

    def __init__(self, path: str | Path) -> None:
        self.workdir = Workdir.at(path)
        self._searchers: dict[tuple[str, str | None, str], Searcher] = {}

    def ingest(
        self, csv_paths: Sequence[str | Path], columns: Columns | None = None, **options: Any
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
        **settings: Any,
    ) -> EmbedReport | LayersReport:
        """``layers="all,last4"``: a run per hidden layer from one pass (a ``LayersReport``)."""
        self._searchers.clear()  # every layer of the run may be embedded again
        return embed_corpus(
            self.workdir.root,
            EmbedSettings(model=model, pooling=pooling, **settings),
            force=force,
            progress=progress,
        )

    def index(
        self,
        model: str = DEFAULT_MODEL,
        pooling: str | None = None,
        force: bool = False,
        layer: str = LAST_LAYER,
        **settings: Any,
    ) -> IndexReport:
        return index_run(self.workdir.root, model, pooling, IndexSettings(**settings), force, layer)

    def run(
        self,
        inputs: Sequence[str | Path],
        models: Sequence[str] = (),
        poolings: Sequence[str] = (),
        spec: CompareSpec | None = None,
        columns: Columns | None = None,
        out: str | Path | None = None,
        force: bool = False,
        progress: bool = True,
    ) -> ChainResult:
        """The whole chain, as ``encajes run``: ingest, then embed, probe and plot every model x pooling
        (``spec`` for the full comparison settings), the report, and each run's index."""
        self._searchers.clear()
        spec = spec or spec_from(models=models, poolings=poolings)
        return run_chain(inputs, self.workdir.root, spec, columns, out=out, force=force, progress=progress)

    def embeddings(
        self, model: str = DEFAULT_MODEL, pooling: str | None = None, layer: str = LAST_LAYER
    ) -> Embeddings:
        """A run's vectors and row ids; for a ``vectors.npy`` run, a read-only memmap (use ``blocks``)."""
        return load_embeddings(find_layer_run(self.workdir, model, pooling, layer).paths.embeddings)

    def search(
        self,
        query: str | Sequence[str] | None = None,
        k: int = 10,
        model: str = DEFAULT_MODEL,
        pooling: str | None = None,
        layer: str = LAST_LAYER,
        *,
        where: Mapping[str, Any] | Sequence[str] | str | None = None,
        dedup: float = DEDUP,
        min_score: float | None = None,
        offset: int = 0,
        vector: Sequence[float] | np.ndarray | None = None,
        positive: Sequence[int | str] = (),
        negative: Sequence[int | str] = (),
    ) -> pd.DataFrame:
        """Nearest rows to each query text (embedded at the run's layer), to a ``vector``, or to rows
        liked (``positive``) and disliked (``negative``). ``where``: {"lang": "es", "created_at": {"gte":
        "2021-06-01"}, "author": {"in": [...]}, "retweet": False}; near-duplicates within cosine ``dedup``
        of a better hit are folded into it (its ``similar`` column); ``k`` counts distinct hits."""
        if sum((query is not None, vector is not None, bool(positive))) != 1:
            raise EncajesError("Give exactly one of: query text(s), vector=, or positive= row ids.")
        if negative and not positive:
            raise EncajesError("negative= needs positive=: less like those, more like which?")
        searcher = self._searcher(model, pooling, layer)
        ask = searcher.ask(k, where, dedup, min_score, offset)
        if vector is not None:
            return searcher.search_vector(vector, ask)
        if positive:
            return searcher.search_like(positive, negative, ask)
        queries = [query] if isinstance(query, str) else list(query or [])
        return searcher.search_texts(queries, ask=ask)

    def similar_to(
        self,
        row: int | str,
        k: int = 10,
        model: str = DEFAULT_MODEL,
        pooling: str | None = None,
        layer: str = LAST_LAYER,
        *,
        where: Mapping[str, Any] | Sequence[str] | str | None = None,
        dedup: float = DEDUP,
    ) -> pd.DataFrame:
        """Neighbours of a corpus row (its row_id or id), the row itself left out."""
        searcher = self._searcher(model, pooling, layer)
        return searcher.search_row(str(row), ask=searcher.ask(k, where, dedup))

    def _searcher(self, model: str, pooling: str | None, layer: str) -> Searcher:
        key = (model, pooling, layer)
        if key not in self._searchers:
            self._searchers[key] = Searcher.open(str(self.workdir.root), model, pooling, layer=layer)
        return self._searchers[key]


def embed_texts(
    texts: Sequence[str], model: str = DEFAULT_MODEL, pooling: str | None = None, **settings: Any
) -> np.ndarray:
    """Embed a list of texts without a workdir: L2-normalised float32, one row per text (``layers="6"``:
    pooled at that hidden layer). The encoder stays loaded for the next call with the same settings
    (the last four are kept)."""
    vectors = (
        warm_encoder(EmbedSettings(model=model, pooling=pooling, **settings)).encode(list(texts)).vectors
    )
    return vectors[0] if vectors.ndim == 3 else vectors


@functools.lru_cache(maxsize=4)
def warm_encoder(settings: EmbedSettings) -> Encoder:
    """Loading takes seconds and encoding one text milliseconds: keep recent encoders. A model folder
    changed on disk needs ``warm_encoder.cache_clear()``."""
    from pipeline.encoders.loading import encoder_for

    return encoder_for(settings)
