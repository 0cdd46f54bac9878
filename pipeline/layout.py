"""The artifact layout of a workdir and the manifests that make reruns skip fresh work.

Everything that knows a file name lives here, so stages never guess each other's paths::

    W/corpus.parquet, W/rejects.csv          ingest
    W/runs/<model>__<pooling>/embeddings.pt  embed (+ vectors.npy when the vectors outgrow memory)
    W/runs/<model>__<pooling>/index.faiss    index (+ index_ids.npy, the FAISS position -> row_id map)
    W/manifest.json, W/runs/*/manifest.json  what each stage was made from

A stage is *fresh* when its manifest entry records the same inputs (parameters and hashes of upstream
artifacts) as the ones it would run with now, and its outputs still exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import EncajesError

MANIFEST = "manifest.json"


def run_name(model_key: str, pooling: str) -> str:
    """Folder name of a (model, pooling) run: readable, filesystem-safe and unique per model key."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", model_key.strip("/")).strip("-.") or "model"
    if slug != model_key:  # paths and hub ids are squashed: a short hash keeps two of them apart
        slug = f"{slug[-60:]}-{hashlib.sha256(model_key.encode()).hexdigest()[:8]}"
    return f"{slug}__{pooling}"


@dataclass(frozen=True)
class RunPaths:
    """Files of one (model, pooling) run."""

    root: Path

    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings.pt"

    @property
    def vectors(self) -> Path:
        """Vectors of a run too large to hold in memory: a float32 .npy that embeddings.pt points to."""
        return self.root / "vectors.npy"

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


@dataclass(frozen=True)
class Workdir:
    """Paths of a workdir; creating the object touches nothing on disk."""

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
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def run(self, model_key: str, pooling: str) -> RunPaths:
        return RunPaths(self.runs / run_name(model_key, pooling))

    def require_corpus(self) -> Path:
        if not self.corpus.exists():
            raise EncajesError(
                f"No corpus in {self.root}: run `encajes ingest YOUR.csv --workdir {self.root}` first."
            )
        return self.corpus


# --- hashing -------------------------------------------------------------------------------------------


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


CACHE_ENV = "ENCAJES_CACHE"


def cache_root() -> Path:
    """Per-user cache: ``$ENCAJES_CACHE``, else ``$XDG_CACHE_HOME/encajes``, else ``~/.cache/encajes``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "encajes"


def cached_file_sha256(path: Path) -> str:
    """``file_sha256`` remembered by (path, size, mtime) in the user cache, so a model's weights are
    read once, not at every freshness check (hundreds of MB for e5-small)."""
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    store = cache_root() / "file-hashes.json"
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        known = {}
    if key not in known:
        known = {k: v for k, v in known.items() if Path(k.rsplit(":", 2)[0]).exists()}  # forget gone files
        known[key] = file_sha256(path)
        with contextlib.suppress(OSError):  # a read-only cache only costs re-hashing next time
            write_text_atomic(store, json.dumps(known, indent=0))
    return known[key]


def params_hash(params: dict[str, Any]) -> str:
    """Hash of a JSON-able dict, independent of key order."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


# --- atomic writes -------------------------------------------------------------------------------------


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_path(target: Path) -> Path:
    """A temporary sibling of ``target``: write there, then ``os.replace``, so no reader sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; artifacts get the usual permissions
    return Path(tmp)


def write_atomic(target: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` then rename tmp over ``target``; on failure the old target stays untouched."""
    tmp = atomic_path(target)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# --- manifests -----------------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}  # a damaged manifest only costs a rerun


def stage_entry(manifest_path: Path, stage: str) -> dict[str, Any] | None:
    return read_manifest(manifest_path).get(stage)


def is_fresh(manifest_path: Path, stage: str, inputs: dict[str, Any], outputs: list[Path]) -> bool:
    """True when ``stage`` last ran with exactly these inputs and all its outputs are still there."""
    entry = stage_entry(manifest_path, stage)
    if not entry or entry.get("inputs_hash") != params_hash(inputs):
        return False
    return all(path.exists() for path in outputs)


def library_versions() -> dict[str, str]:
    """Versions that can change results; recorded with each stage (not part of its inputs)."""
    from importlib.metadata import PackageNotFoundError, version

    from pipeline import __version__

    found = {"encajes": __version__}
    for package in ("torch", "transformers", "faiss-cpu", "scikit-learn", "umap-learn"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def record_stage(
    manifest_path: Path, stage: str, inputs: dict[str, Any], outputs: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """Write the stage's inputs and results into its manifest (atomically) and return the entry."""
    manifest = read_manifest(manifest_path)
    entry = {
        "inputs": inputs,
        "inputs_hash": params_hash(inputs),
        "outputs": outputs,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
        **extra,
    }
    manifest[stage] = entry
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
    return entry
