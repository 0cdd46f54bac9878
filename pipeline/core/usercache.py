"""The per-user cache: where it is, and file hashes remembered across runs (a model's weights are hundreds
of MB; freshness checks should not re-read them every time)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from pipeline.core.atomic import write_text_atomic
from pipeline.core.hashing import file_sha256
from pipeline.core.layout import CachePaths

CACHE_ENV = "ENCAJES_CACHE"


def cache_paths() -> CachePaths:
    """``$ENCAJES_CACHE``, else ``$XDG_CACHE_HOME/encajes``, else ``~/.cache/encajes``."""
    if os.environ.get(CACHE_ENV):
        return CachePaths(Path(os.environ[CACHE_ENV]).expanduser())
    return CachePaths(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "encajes")


def cached_file_sha256(path: Path) -> str:
    """``file_sha256`` remembered by (path, size, mtime) in the user cache."""
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    store = cache_paths().file_hashes
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
