"""Finding a run: the folder that ``encajes embed --model M --pooling P`` wrote, from the name alone.

Locating a run never loads, converts or downloads a model: ``index``, ``probe``, ``plot``, ``search``
and ``status`` only need to know what the name means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import EncajesError
from pipeline.core.layout import RunPaths, Workdir
from pipeline.core.manifest import stage_entry
from pipeline.core.settings import DEFAULT_MODEL, EmbedSettings
from pipeline.encoders.models import identify


@dataclass(frozen=True)
class Run:
    """An embedded run: its files and what its embed stage recorded."""

    paths: RunPaths
    embed_entry: dict[str, Any]  # what its embed stage recorded in the run's manifest

    @property
    def model(self) -> str:
        return self.embed_entry["inputs"]["model"]

    @property
    def pooling(self) -> str:
        return self.embed_entry["inputs"]["pooling"]

    @property
    def title(self) -> str:
        return f"{self.model} · {self.pooling}"

    @property
    def embeddings_sha256(self) -> str | None:
        return self.embed_entry.get("embeddings_sha256")


def run_paths(work: Workdir, model: str = DEFAULT_MODEL, pooling: str | None = None) -> RunPaths:
    """Where the run of (model, pooling) lives, whether or not it exists yet."""
    EmbedSettings(model=model, pooling=pooling)  # the one check of the names
    name = identify(model)
    return work.run(name.key, pooling or name.default_pooling)


def find_run(work: Workdir, model: str = DEFAULT_MODEL, pooling: str | None = None) -> Run:
    """The finished run of (model, pooling), or an error that says which embed to run."""
    paths = run_paths(work, model, pooling)
    if (run := find_run_at(paths)) is None:
        pooling = paths.root.name.rsplit("__", 1)[1]
        raise EncajesError(
            f"No embeddings for model {model!r} with {pooling} pooling in {work.root}: run "
            f"`encajes embed --workdir {work.root} --model {model} --pooling {pooling}` first."
        )
    return run


def find_run_at(paths: RunPaths) -> Run | None:
    """The run in this folder as its manifest says now, or None if it has no finished embed."""
    entry = stage_entry(paths.manifest, "embed")
    return Run(paths, entry) if entry is not None and paths.embeddings.exists() else None
