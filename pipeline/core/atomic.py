"""Atomic writes: write a temporary sibling, then rename it over the target, so no reader (and no killed
run) ever sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _current_umask()


def publish(tmp: Path, target: Path) -> None:
    """Give a finished temporary file the usual permissions (mkstemp makes 0600) and move it into place."""
    os.chmod(tmp, 0o666 & ~UMASK)
    os.replace(tmp, target)


def atomic_path(target: Path) -> Path:
    """A temporary sibling of ``target`` to write to."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def write_atomic(target: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` then rename tmp over ``target``; on failure the old target stays untouched."""
    tmp = atomic_path(target)
    try:
        write(tmp)
        publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
