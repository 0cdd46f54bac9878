"""The wheel a user installs holds every module and data file of the tree: packages are found by
setuptools' discovery, so a new folder ships without being listed, and a missing ``__init__.py`` or
``page.html`` fails here rather than on a user's machine."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_built_wheel_holds_every_module_and_the_search_page(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("encajes-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {"cli.py", "pipeline/serve/page.html", "pipeline/render/map_view.js"}
    for package in ("pipeline", "indexes"):
        expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")}
    assert expected - shipped == set()
    folders = {p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("pipeline/**/*.py")}
    assert all(
        (ROOT / folder / "__init__.py").exists() for folder in folders
    )  # a folder without one is not found
