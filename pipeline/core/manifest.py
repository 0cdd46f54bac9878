"""Manifests: what each stage was made from (its inputs and their hash) and what it wrote.

A stage is *fresh* when its entry records the same inputs (parameters and hashes of upstream artifacts)
as the ones it would run with now, its outputs still exist, and it was recorded by the same version of
the stage's computation (``STAGE_VERSIONS``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.core.atomic import write_text_atomic
from pipeline.core.hashing import params_hash

# The version of each stage's computation. Bump a stage's number when what it computes or the shape of
# what it records changes: entries recorded by another version are computed again (and `status` says
# why), entries of the same version stay fresh. An entry without a number was recorded at version 1.
#   probe 2, baselines 2: the certified logistic solver and per-fold TF-IDF vocabularies (their results
#   were recorded without a number, so a version-1 entry may come from the older probe).
#   probe 3, baselines 3: a C (or k) at the edge of its grid extends the grid; probes report
#   near-duplicate leakage; the TF-IDF baseline its throughput.
STAGE_VERSIONS = {
    "ingest": 2,
    "embed": 1,
    "index": 1,
    "probe": 3,
    "plot": 2,
    "baselines": 3,
    "curve": 1,
    "combined": 1,
    "baseline_curve": 1,
}
VERSION_KEY = "stage_version"


def recorded_version(entry: dict[str, Any]) -> int:
    """The stage version an entry was recorded by (1 for entries written before versions were kept)."""
    return int(entry.get(VERSION_KEY, 1))


def version_problem(entry: dict[str, Any] | None, stage: str) -> str | None:
    """Why an entry cannot stand for this code's stage (another version recorded it), or None."""
    if entry is None:
        return None
    recorded, current = recorded_version(entry), STAGE_VERSIONS[stage]
    if recorded == current:
        return None
    age = "an older" if recorded < current else "a newer"
    return f"recorded by {age} version of the {stage} stage (v{recorded}, this code's is v{current})"


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}  # a damaged manifest only costs a rerun


def stage_entry(manifest_path: Path, stage: str) -> dict[str, Any] | None:
    return read_manifest(manifest_path).get(stage)


def is_fresh(entry: dict[str, Any] | None, inputs: dict[str, Any], outputs: list[Path]) -> bool:
    """True when the entry records exactly these inputs and all the outputs are still there."""
    if not entry or entry.get("inputs_hash") != params_hash(inputs):
        return False
    return all(path.exists() for path in outputs)


def library_versions() -> dict[str, str]:
    """Versions that can change results; recorded with each stage (not part of its inputs)."""
    from importlib.metadata import PackageNotFoundError, version

    from pipeline.core.version import __version__

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
        VERSION_KEY: STAGE_VERSIONS[stage],
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
