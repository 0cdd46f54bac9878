"""Index stage: a run's ``embeddings.pt`` -> a FAISS inner-product index and its id map.

``auto`` picks exact search for small corpora and an approximate index for large ones; an approximate
index records its recall@10 against exact search on 1,000 sampled corpus vectors."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexes.approximate import (
    IndexSpec,
    build_index,
    choose_index,
    empty_index,
    recall_at_k,
    training_rows,
    tune_search,
)
from indexes.exact import BlockScanIP, SearchIndex, build_exact, save_index
from pipeline.embed import find_run
from pipeline.layout import RunPaths, Workdir, is_fresh, record_stage, stage_entry
from pipeline.lock import workdir_lock, writes_workdir
from pipeline.models import DEFAULT_MODEL
from pipeline.store import Embeddings, load_embeddings

RECALL_QUERIES = 1000  # corpus rows whose neighbours (themselves left out) measure recall@10
TUNING_QUERIES = 500  # other rows, on which nprobe / efSearch is tuned to the target recall


@dataclass
class IndexReport:
    index: Path
    ids: Path
    kind: str
    vectors: int
    dim: int
    build_s: float
    skipped: bool
    why: str = ""
    search_params: str = ""
    recall: dict[str, Any] | None = None  # recall@10 against exact search, for approximate kinds

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stage": "index", "index": str(self.index), "ids": str(self.ids)}


def _report(run: RunPaths, out: dict[str, Any], skipped: bool) -> IndexReport:
    return IndexReport(
        run.index,
        run.index_ids,
        out["kind"],
        out["vectors"],
        out["dim"],
        out["build_s"],
        skipped,
        out.get("why", ""),
        out.get("search_params", ""),
        out.get("recall"),
    )


def build_run_index(
    run: RunPaths,
    embed_entry: dict,
    force: bool = False,
    kind: str | None = None,
    memory_budget_gb: float = 4.0,
    target_recall: float = 0.95,
) -> IndexReport:
    """``kind=None`` (what search asks for) accepts any index fresh for these embeddings, else ``auto``."""
    outputs = [run.index, run.index_ids]
    entry = stage_entry(run.manifest, "index")
    current = embed_entry.get("embeddings_sha256")
    if (
        kind is None
        and not force
        and entry
        and all(p.exists() for p in outputs)
        and (entry["inputs"].get("embeddings_sha256") == current)
    ):
        return _report(run, entry["outputs"], skipped=True)
    inputs = {
        "embeddings_sha256": current,
        "kind": kind or "auto",
        "metric": "ip",
        "memory_budget_gb": memory_budget_gb,
        "target_recall": target_recall,
    }
    if not force and is_fresh(run.manifest, "index", inputs, outputs):
        return _report(run, (stage_entry(run.manifest, "index") or {})["outputs"], skipped=True)
    with workdir_lock(run.root.parent.parent):  # search builds a missing index too: one writer at a time
        return _build(run, inputs)


def _build(run: RunPaths, inputs: dict[str, Any]) -> IndexReport:
    embeddings = load_embeddings(run.embeddings)
    n, dim = len(embeddings), embeddings.dim
    spec = choose_index(n, dim, inputs["kind"], inputs["memory_budget_gb"] * 1e9)
    start = time.perf_counter()
    search_index, truth = _fill(embeddings, spec)
    build_s = round(time.perf_counter() - start, 3)
    recall = None
    if spec.kind != "exact":
        recall, search_params = _tune_and_measure(search_index.index, truth, spec, embeddings, inputs)
        spec = replace(spec, search_params=search_params)
    save_index(search_index, run.index, run.index_ids)
    report = IndexReport(
        run.index,
        run.index_ids,
        spec.kind,
        len(search_index),
        search_index.dim,
        build_s,
        False,
        spec.why,
        spec.search_params,
        recall,
    )
    outputs = {
        key: value for key, value in report.to_dict().items() if key not in {"index", "ids", "skipped"}
    }
    outputs.update(
        model=embeddings.meta.get("model"), pooling=embeddings.meta.get("pooling"), factory=spec.factory
    )
    record_stage(run.manifest, "index", inputs, outputs)
    return report


def _fill(embeddings: Embeddings, spec: IndexSpec) -> tuple[SearchIndex, Any]:
    """The index of ``spec`` over every vector, and the exact search recall is measured against: a flat
    index when the vectors are in memory, a block-by-block scan of ``vectors.npy`` when they are not (the
    vectors are then only ever read a block at a time)."""
    ids = np.asarray(embeddings.row_ids, dtype=np.int64)
    if embeddings.file is None:
        exact = build_exact(embeddings.vectors, ids)
        if spec.kind == "exact":
            return exact, exact.index
        return SearchIndex(build_index(embeddings.vectors, spec), ids), exact.index
    n, dim = len(embeddings), embeddings.dim
    if spec.kind == "exact":
        index = faiss.IndexFlatIP(dim)
    else:
        index = empty_index(dim, spec, embeddings.take(training_rows(n, spec)))
    for _, block in embeddings.blocks():
        index.add(np.ascontiguousarray(block))
    return SearchIndex(index, ids), BlockScanIP(embeddings.blocks, n, dim)


def _tune_and_measure(
    index: Any, exact: Any, spec: IndexSpec, embeddings: Embeddings, inputs: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Tune the search setting on some corpus rows, measure recall@10 on others: the numbers a user
    reads are not the ones the setting was fitted to."""
    rng = np.random.default_rng(0)
    n = len(embeddings)
    rows = rng.choice(n, min(n, RECALL_QUERIES + TUNING_QUERIES), replace=False)
    split = min(TUNING_QUERIES, len(rows) // 3)  # a small corpus: a third tunes, the rest measures
    tuning, measuring = rows[:split], rows[split:]
    queries = embeddings.take(tuning)
    tuned = tune_search(index, exact, spec, queries, inputs["target_recall"], own_positions=tuning)
    measured = recall_at_k(index, exact, embeddings.take(measuring), 10, own_positions=measuring)
    recall: dict[str, Any] = {k: round(v, 4) for k, v in measured.items()}
    recall.update(target=inputs["target_recall"], reached_target=tuned.reached_target, trials=tuned.trials)
    return recall, tuned.search_params


@writes_workdir()
def index_run(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    force: bool = False,
    kind: str = "auto",
    memory_budget_gb: float = 4.0,
    target_recall: float = 0.95,
) -> IndexReport:
    """Build (or find fresh) the index of the run that ``embed --model/--pooling`` wrote; approximate
    kinds get the fastest search setting that reaches ``target_recall`` (recall@10 against exact)."""
    run, entry = find_run(Workdir.at(workdir), model, pooling)
    return build_run_index(run, entry, force, kind, memory_budget_gb, target_recall)
