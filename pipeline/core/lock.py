"""One writer per workdir: stages that write take the workdir's lock file (an OS file lock, released even
if the process is killed). A second writer waits up to ``ENCAJES_LOCK_WAIT`` seconds (default 0: refuse at
once) and then stops with a message naming the process that holds the lock."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.core.errors import EncajesError
from pipeline.core.layout import Workdir

WAIT_ENV = "ENCAJES_LOCK_WAIT"
_held: dict[Path, int] = {}  # re-entrant within one process: compare -> embed -> ... share one lock
_guard = threading.Lock()


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        return "another encajes process"
    return f"pid {info.get('pid', '?')} ({info.get('command', '?')}, since {info.get('since', '?')})"


@contextmanager
def workdir_lock(root: Path, wait: float | None = None) -> Iterator[None]:
    root = root.resolve()
    with _guard:
        if root in _held:
            _held[root] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[root] -= 1
        return

    made = not root.exists()  # a workdir this call creates: removed again if nothing else is written
    root.mkdir(parents=True, exist_ok=True)
    path = Workdir(root).lock
    wait = float(os.environ.get(WAIT_ENV, "0")) if wait is None else wait
    handle = path.open("a+", encoding="utf-8")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(path)
                handle.close()
                raise EncajesError(
                    f"{root} is being written by {holder}. Wait for it to finish (or set "
                    f"{WAIT_ENV}=SECONDS to wait), or use another --workdir."
                ) from None
            time.sleep(0.2)
    handle.seek(0)
    handle.truncate()
    handle.write(
        json.dumps(
            {
                "pid": os.getpid(),
                "command": " ".join(sys.argv[:3]),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
    )
    handle.flush()
    with _guard:
        _held[root] = 1
    try:
        yield
    finally:
        with _guard:
            del _held[root]
        handle.seek(0)
        handle.truncate()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
        if made:
            _remove_if_bare(root, path)


def _remove_if_bare(root: Path, lock: Path) -> None:
    """A workdir made for a stage that wrote nothing (a first ingest of a broken file): removed again,
    so a failure leaves no trace."""
    if [p.name for p in root.iterdir()] == [lock.name]:
        lock.unlink(missing_ok=True)
        root.rmdir()
