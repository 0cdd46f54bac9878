"""Reading the corpus back: its texts lazily (row group by row group), its columns, its fingerprints.

``corpus_hash`` (texts, labels, splits) is what probes and maps depend on; ``texts_hash`` (row ids and
texts only) is what embeddings depend on, so relabelling a corpus does not re-embed it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.hashing import file_sha256
from pipeline.core.layout import Workdir
from pipeline.core.manifest import stage_entry


def texts_fingerprint_of_file(path: Path) -> str:
    """``texts_fingerprint`` of a corpus file, read one row group at a time."""
    texts = CorpusTexts(path)
    digest = hashlib.sha256(np.arange(len(texts), dtype=np.int64).tobytes())
    for group in texts.groups():
        for text in group:
            digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()


def texts_fingerprint(corpus: pd.DataFrame) -> str:
    """Hash of (row_id, text) only, what embeddings depend on: relabelling a corpus does not re-embed it."""
    digest = hashlib.sha256(np.ascontiguousarray(corpus["row_id"].to_numpy(dtype=np.int64)).tobytes())
    for text in corpus["text"]:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()


def corpus_hash(workdir: Workdir) -> str:
    """Fingerprint of the texts, labels and splits (kept fields left out): what probes and plots depend
    on. A corpus ingested before kept fields existed has only the whole file's hash, which serves."""
    outputs = (stage_entry(workdir.manifest, "ingest") or {}).get("outputs", {})
    recorded = outputs.get("labels_sha256") or outputs.get("corpus_sha256")
    return recorded or file_sha256(workdir.require_corpus())


def corpus_hashes(workdir: Workdir) -> set[str]:
    """Every value a fresh stage may have recorded for the corpus: ``corpus_hash``, and the whole file's
    hash that stages recorded before kept fields existed (the same file means the same labels)."""
    outputs = (stage_entry(workdir.manifest, "ingest") or {}).get("outputs", {})
    return {corpus_hash(workdir), *([outputs["corpus_sha256"]] if outputs.get("corpus_sha256") else [])}


def fields_hash(workdir: Workdir) -> str:
    """Fingerprint of the kept fields (created_at, author, --keep-col ...): what map pages depend on."""
    from pipeline.artifacts.fields import fields_fingerprint

    outputs = (stage_entry(workdir.manifest, "ingest") or {}).get("outputs", {})
    return outputs.get("fields_sha256") or fields_fingerprint(workdir.require_corpus())


def texts_hash(workdir: Workdir) -> str:
    """Fingerprint of the texts and their row ids: what embeddings depend on."""
    entry = stage_entry(workdir.manifest, "ingest") or {}
    recorded = entry.get("outputs", {}).get("texts_sha256")
    return recorded or texts_fingerprint(load_corpus(workdir))


def load_corpus(workdir: Workdir, columns: list[str] | None = None) -> pd.DataFrame:
    """The corpus, or only ``columns`` of it (a probe needs no text: at 10M rows that is gigabytes).
    Kept integer fields with missing values come back as pandas' nullable integers, not floats (a tweet
    id past 2**53 is exact)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.artifacts.fields import kept_fields

    path = workdir.require_corpus()
    frame = pd.read_parquet(path, columns=columns)
    floated = [f.name for f in kept_fields(path) if f.kind == "integer" and frame.get(f.name) is not None
               and frame[f.name].dtype.kind == "f"]  # fmt: skip
    if floated:
        exact = pq.read_table(path, columns=floated).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        for name in floated:
            frame[name] = exact[name]
    return frame


class CorpusTexts(Sequence[str]):
    """The corpus ``text`` column read lazily, row group by row group: ``texts[a:b]`` reads only the
    groups that hold rows a..b, so embedding a corpus never holds all of its text in memory."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self._file = pq.ParquetFile(path)
        sizes = [self._file.metadata.row_group(g).num_rows for g in range(self._file.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._cached: tuple[int, list[str]] = (-1, [])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def groups(self) -> Iterator[list[str]]:
        """The texts, one row group at a time."""
        for group in range(len(self._starts) - 1):
            yield self._group(group)

    def _group(self, group: int) -> list[str]:
        if self._cached[0] != group:
            column = self._file.read_row_group(group, columns=["text"]).column("text")
            self._cached = (group, column.to_pylist())
        return self._cached[1]

    def __getitem__(self, where):  # type: ignore[override]
        if isinstance(where, int):
            return self[where : where + 1 if where != -1 else None][0]
        begin, end, step = where.indices(len(self))
        if step != 1:
            raise ValueError("CorpusTexts slices have step 1")
        out: list[str] = []
        first = int(np.searchsorted(self._starts, begin, side="right")) - 1
        for group in range(max(first, 0), len(self._starts) - 1):
            lo, hi = int(self._starts[group]), int(self._starts[group + 1])
            if lo >= end:
                break
            out.extend(self._group(group)[max(begin, lo) - lo : min(end, hi) - lo])
        return out

    def take(self, positions: np.ndarray) -> list[str]:
        """Texts at sorted ``positions``, reading only the row groups that hold one (one at a time)."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) and (
            np.any(np.diff(positions) < 0) or positions[0] < 0 or positions[-1] >= len(self)
        ):
            raise ValueError("CorpusTexts.take needs sorted positions inside the corpus")
        out: list[str] = []
        bounds = np.searchsorted(positions, self._starts)  # positions[bounds[g]:bounds[g+1]] lie in group g
        for group in range(len(self._starts) - 1):
            lo, hi = bounds[group], bounds[group + 1]
            if hi > lo:
                texts = self._group(group)
                out.extend(texts[p] for p in positions[lo:hi] - self._starts[group])
        return out


def corpus_row_ids(workdir: Workdir) -> np.ndarray:
    import pyarrow.parquet as pq

    return pq.read_table(workdir.require_corpus(), columns=["row_id"]).column("row_id").to_numpy()
