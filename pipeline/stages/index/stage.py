"""Index stage: a run's embeddings -> a FAISS inner-product index and its id map.

``auto`` picks exact search for small corpora and an approximate index for large ones; an approximate
index records its recall@10 against exact search on 1,000 sampled corpus vectors (its search setting
tuned on 500 others)."""

from __future__ import annotations

from dataclasses import dataclass, replace
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
from indexes.filtered import filtered_recall
from pipeline.artifacts.run_layer import find_layer_run
from pipeline.artifacts.run_stage import RunStage
from pipeline.artifacts.runs import Run
from pipeline.artifacts.store import Embeddings, load_embeddings
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.runner import Timings, fresh_report, run_stage
from pipeline.core.settings import DEFAULT_MODEL, IndexSettings
from pipeline.core.stage_report import StageReport

RECALL_QUERIES = 1000  # corpus rows whose neighbours (themselves left out) measure recall@10
TUNING_QUERIES = 500  # other rows, on which nprobe / efSearch is tuned to the target recall
FILTERED_QUERIES = 100  # of the measuring rows, for recall under filters (exact truth costs a corpus scan)
FILTER_SHARES = (0.5, 0.1)  # random filters keeping these shares of the rows


@dataclass(kw_only=True)
class IndexReport(StageReport):
    stage = "index"
    index: Path
    ids: Path
    kind: str
    vectors: int
    dim: int
    build_s: float
    why: str = ""
    search_params: str = ""
    recall: dict[str, Any] | None = None  # recall@10 against exact search, for approximate kinds
    model: str | None = None  # the run it was built for: search refuses an index of another run
    pooling: str | None = None
    factory: str = ""

    def lines(self) -> list[str]:
        state = "fresh, kept" if self.skipped else f"built in {self.build_s:.2f}s:"
        out = [f"{state} {self.index} ({self.kind}, {self.vectors} x {self.dim})"]
        out.append(f"  why: {self.why}" if self.why else "")
        if self.recall:
            r = self.recall
            out.append(
                f"  recall@10 vs exact {r['recall_at_k']:.3f} on {r['queries']:,} corpus rows (self left "
                f"out), {r['speedup_over_exact']:.1f}x the queries/s of exact search, "
                f"with {self.search_params}"
            )
            if not r["reached_target"]:
                out.append(f"  note: no setting reached recall {r['target']}; the most exact one is used")
            out.extend(filtered_lines(r.get("filtered", [])))
        return out


class IndexStage(RunStage[IndexReport]):
    """``settings=None`` (what search asks for) accepts any index fresh for these embeddings, else builds
    ``auto``."""

    name = "index"

    def inputs(self) -> dict[str, Any]:
        settings = self.settings or IndexSettings()
        return {
            "embeddings_sha256": self.run.embeddings_sha256,
            "kind": settings.kind,
            "metric": "ip",
            "memory_budget_gb": settings.memory_budget_gb,
            "target_recall": settings.target_recall,
        }

    def fresh(self, entry: dict[str, Any], inputs: dict[str, Any]) -> bool:
        if super().fresh(entry, inputs):
            return True
        if self.settings is None:  # any kind will do, if it indexes these very embeddings
            same = entry["inputs"].get("embeddings_sha256") == inputs["embeddings_sha256"]
            return same and all(path.exists() for path in self.outputs())
        return False

    def rebuild(self, entry: dict[str, Any]) -> IndexReport:
        paths = self.run.paths
        return IndexReport.rebuild(entry["outputs"], index=paths.index, ids=paths.index_ids)

    def compute(self, inputs: dict[str, Any], timings: Timings) -> IndexReport:
        paths = self.run.paths
        embeddings = load_embeddings(paths.embeddings)
        spec = choose_index(len(embeddings), embeddings.dim, inputs["kind"], inputs["memory_budget_gb"] * 1e9)
        with timings.part("build_s"):
            search_index, truth = fill_index(embeddings, spec)
        recall = None
        if spec.kind != "exact":
            recall, search_params = tune_and_measure(search_index.index, truth, spec, embeddings, inputs)
            spec = replace(spec, search_params=search_params)
        save_index(search_index, paths.index, paths.index_ids)
        return IndexReport(
            index=paths.index,
            ids=paths.index_ids,
            kind=spec.kind,
            vectors=len(search_index),
            dim=search_index.dim,
            build_s=timings.rounded()["build_s"],
            why=spec.why,
            search_params=spec.search_params,
            recall=recall,
            model=embeddings.meta.get("model"),
            pooling=embeddings.meta.get("pooling"),
            factory=spec.factory,
        )


def filtered_lines(measured: list[dict[str, Any]]) -> list[str]:
    """How filtered queries fare: recall@10 under random filters keeping a share of the rows."""
    parts = [
        f"{m['share']:.0%} of rows: " + ("scored exactly" if m["exact"] else f"{m['recall_at_k']:.3f}")
        for m in measured
    ]
    return [f"  filtered recall@10 (random filters keeping {'; '.join(parts)})"] if parts else []


def fill_index(embeddings: Embeddings, spec: IndexSpec) -> tuple[SearchIndex, Any]:
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


def tune_and_measure(
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
    searched = SearchIndex(index, np.asarray(embeddings.row_ids, dtype=np.int64))
    asked = measuring[:FILTERED_QUERIES]
    vectors = np.ascontiguousarray(embeddings.take(asked), dtype=np.float32)
    recall["filtered"] = [
        filtered_recall(searched, embeddings.blocks(), vectors, share, asked) for share in FILTER_SHARES
    ]
    return recall, tuned.search_params


def fresh_index(work: Workdir, run: Run) -> IndexReport | None:
    """The run's fresh index (of any kind), or None; builds nothing."""
    return fresh_report(IndexStage(work, run, None))


def ensure_index(work: Workdir, run: Run) -> IndexReport:
    """The run's index as search needs it: any fresh one, else an ``auto`` one built now."""
    return run_stage(IndexStage(work, run, None))


def index_run(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    settings: IndexSettings | None = None,
    force: bool = False,
    layer: str = LAST_LAYER,
) -> IndexReport:
    """Build (or find fresh) the index of the run that ``embed --model/--pooling`` wrote (``layer``: its
    hidden layer, as ``--layer`` takes it). Approximate kinds get the fastest search setting that reaches
    ``settings.target_recall`` (recall@10 against exact search)."""
    work = Workdir.at(workdir)
    run = find_layer_run(work, model, pooling, layer)
    return run_stage(IndexStage(work, run, settings or IndexSettings()), force)
