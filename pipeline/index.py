"""Index stage: a run's ``embeddings.pt`` -> an exact FAISS inner-product index and its id map."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from indexes.exact import build_exact, save_index
from pipeline.embed import find_run
from pipeline.layout import RunPaths, Workdir, is_fresh, record_stage, stage_entry
from pipeline.lock import workdir_lock, writes_workdir
from pipeline.models import DEFAULT_MODEL
from pipeline.store import load_embeddings

INDEX_KIND = "exact"


@dataclass
class IndexReport:
    index: Path
    ids: Path
    kind: str
    vectors: int
    dim: int
    build_s: float
    skipped: bool

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stage": "index", "index": str(self.index), "ids": str(self.ids)}


def index_inputs(run: RunPaths, embed_entry: dict) -> dict[str, Any]:
    return {"embeddings_sha256": embed_entry.get("embeddings_sha256"), "kind": INDEX_KIND, "metric": "ip"}


def build_run_index(run: RunPaths, embed_entry: dict, force: bool = False) -> IndexReport:
    inputs = index_inputs(run, embed_entry)
    if not force and is_fresh(run.manifest, "index", inputs, [run.index, run.index_ids]):
        out = (stage_entry(run.manifest, "index") or {})["outputs"]
        return IndexReport(
            run.index, run.index_ids, out["kind"], out["vectors"], out["dim"], out["build_s"], True
        )
    with workdir_lock(run.root.parent.parent):  # search builds a missing index too: one writer at a time
        return _build(run, embed_entry, inputs)


def _build(run: RunPaths, embed_entry: dict, inputs: dict[str, Any]) -> IndexReport:
    embeddings = load_embeddings(run.embeddings)
    start = time.perf_counter()
    search_index = build_exact(embeddings.vectors, embeddings.row_ids)
    save_index(search_index, run.index, run.index_ids)
    report = IndexReport(
        run.index,
        run.index_ids,
        INDEX_KIND,
        len(search_index),
        search_index.dim,
        round(time.perf_counter() - start, 3),
        False,
    )
    outputs = {
        key: value for key, value in report.to_dict().items() if key not in {"index", "ids", "skipped"}
    }
    outputs.update(model=embeddings.meta.get("model"), pooling=embeddings.meta.get("pooling"))
    record_stage(run.manifest, "index", inputs, outputs)
    return report


@writes_workdir()
def index_run(
    workdir: str | Path, model: str = DEFAULT_MODEL, pooling: str | None = None, force: bool = False
) -> IndexReport:
    """Build (or find fresh) the exact index of the run that ``embed --model/--pooling`` wrote."""
    run, entry = find_run(Workdir.at(workdir), model, pooling)
    return build_run_index(run, entry, force=force)
