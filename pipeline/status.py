"""What in a workdir is fresh, stale or missing, from the manifests and the artifacts' current hashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.errors import EncajesError
from pipeline.ingest import corpus_hash, texts_hash
from pipeline.layout import RunPaths, Workdir, file_sha256, read_manifest, stage_entry
from pipeline.models import resolve_model, weights_fingerprint
from pipeline.store import vectors_file_problem

STAGES = ("embed", "index", "probe", "plot")


def _state(state: str, why: str = "") -> dict[str, str]:
    return {"state": state, "why": why}


def ingest_status(work: Workdir) -> dict[str, str]:
    entry = stage_entry(work.manifest, "ingest")
    if entry is None or not work.corpus.exists():
        return _state("missing", "run `encajes ingest`")
    for source in entry["inputs"]["files"]:
        path = Path(source["path"])
        if not path.exists():
            return _state("fresh", f"{path.name} is gone; the corpus is what it was")
        if file_sha256(path) != source["sha256"]:
            return _state("stale", f"{path.name} changed since it was ingested")
    return _state("fresh")


def run_status(work: Workdir, run: RunPaths) -> dict[str, dict[str, str]]:
    manifest = read_manifest(run.manifest)
    out: dict[str, dict[str, str]] = {}
    embed = manifest.get("embed")
    shards = list((run.root / "shards").glob("*.npz")) if (run.root / "shards").exists() else []
    if embed is None or not run.embeddings.exists():
        why = f"interrupted: {len(shards)} shard(s) done, rerun embed to resume" if shards else "run embed"
        out["embed"] = _state("missing", why)
    elif embed["inputs"].get("texts_sha256") != texts_hash(work):
        out["embed"] = _state("stale", "the corpus texts changed")
    elif file_sha256(run.embeddings) != embed.get("embeddings_sha256"):
        out["embed"] = _state("stale", "embeddings.pt was modified after it was written")
    elif problem := vectors_file_problem(run.embeddings):
        out["embed"] = _state("stale", problem)
    else:
        out["embed"] = _weights_state(embed)
    embeddings_hash = (embed or {}).get("embeddings_sha256")
    files = {
        "index": [run.index, run.index_ids],
        "probe": [run.probe, run.predictions],
        "plot": [run.umap, run.umap_png, run.umap_html],
    }
    for stage in ("index", "probe", "plot"):
        entry = manifest.get(stage)
        if entry is None or not all(path.exists() for path in files[stage]):
            out[stage] = _state("missing", f"run `encajes {stage}`")
        elif out["embed"]["state"] != "fresh" or entry["inputs"].get("embeddings_sha256") != embeddings_hash:
            out[stage] = _state("stale", "its embeddings changed or are stale")
        elif stage != "index" and entry["inputs"].get("corpus_sha256") != corpus_hash(work):
            out[stage] = _state("stale", "the corpus (labels or splits) changed")
        else:
            out[stage] = _state("fresh")
    return out


def _weights_state(embed: dict[str, Any]) -> dict[str, str]:
    try:
        model = resolve_model(embed["inputs"]["model"])
    except EncajesError as error:
        return _state("fresh", f"model not checked: {error}")
    if not model.is_local:
        return _state("fresh", "hub model: weights not re-checked")
    if weights_fingerprint(model) != embed["inputs"].get("weights"):
        return _state("stale", "the model's weights changed")
    return _state("fresh")


def workdir_status(workdir: str | Path) -> dict[str, Any]:
    work = Workdir.at(workdir)
    status: dict[str, Any] = {"workdir": str(work.root), "ingest": ingest_status(work), "runs": {}}
    if status["ingest"]["state"] == "missing" or not work.runs.exists():
        return status
    for folder in sorted(p for p in work.runs.iterdir() if p.is_dir()):
        status["runs"][folder.name] = run_status(work, RunPaths(folder))
    return status
