"""One runner for every stage: lock -> freshness -> compute -> atomic outputs -> manifest -> report.

A stage says what its inputs are (parameters and hashes of upstream artifacts), which files it writes
and how to compute them; the runner decides whether to run it at all. A fresh stage is answered from its
manifest before any lock is taken, so reading a workdir never waits for a writer. Otherwise the runner
takes the workdir's lock, lets the stage re-read what it depends on (``refresh``), checks freshness
again (another writer may have just made it), computes and records.

An entry recorded by another version of the stage's computation (``manifest.STAGE_VERSIONS``) is not
fresh: it is computed again. A fresh entry's report is rebuilt from it, and an error there is a bug that
surfaces; only an output file damaged on disk (JSON that no longer parses) costs a recompute.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pipeline.core.layout import Workdir
from pipeline.core.lock import workdir_lock
from pipeline.core.manifest import is_fresh, record_stage, stage_entry, version_problem
from pipeline.core.stage_report import StageReport
from pipeline.core.timing import Timings

R = TypeVar("R", bound=StageReport)


class Stage(ABC, Generic[R]):
    """A stage of the chain, as the runner sees it."""

    name: ClassVar[str]  # its key in the manifest
    work: Workdir

    @property
    @abstractmethod
    def manifest(self) -> Path:
        """The manifest that records this stage."""

    @abstractmethod
    def inputs(self) -> dict[str, Any]:
        """Everything the outputs depend on: while it is unchanged and the outputs exist, the stage is
        fresh."""

    @abstractmethod
    def outputs(self) -> list[Path]:
        """The files the stage writes, each atomically."""

    @abstractmethod
    def compute(self, inputs: dict[str, Any], timings: Timings) -> R:
        """Write the outputs and return the report."""

    @abstractmethod
    def rebuild(self, entry: dict[str, Any]) -> R:
        """The report of a fresh stage, from its manifest entry."""

    def fresh(self, entry: dict[str, Any], inputs: dict[str, Any]) -> bool:
        return is_fresh(entry, inputs, self.outputs())

    def refresh(self) -> None:
        """Re-read what the stage depends on, now that the lock is held (a writer may have changed it)."""

    def recorded_extras(self, report: R) -> dict[str, Any]:
        """Manifest fields beside inputs and outputs that downstream stages read (e.g. an output's hash)."""
        return {}


def run_stage(stage: Stage[R], force: bool = False) -> R:
    """The stage's report: rebuilt from its manifest when fresh, else computed under the workdir's lock."""
    if not force and (report := fresh_report(stage)) is not None:
        return report
    with workdir_lock(stage.work.root):
        stage.refresh()
        inputs = stage.inputs()
        if not force and (report := fresh_report(stage, inputs)) is not None:
            return report
        report = stage.compute(inputs, Timings())
        record_stage(stage.manifest, stage.name, inputs, report.record(), **stage.recorded_extras(report))
        return report


Pending = list[tuple[Stage[R], dict[str, Any]]]  # stale stages with the inputs they are computed from


def run_together(
    stages: Sequence[Stage[R]],
    compute: Callable[[Pending, Timings], list[R]],
    force: bool = False,
) -> list[R]:
    """Stages whose outputs come from one computation (the hidden layers of one forward pass): each is
    checked and recorded as ``run_stage`` does, and ``compute`` makes the stale ones' outputs at once,
    returning their reports in the order given."""
    reports: list[R | None] = [None if force else fresh_report(stage) for stage in stages]
    if all(report is not None for report in reports):
        return reports  # type: ignore[return-value]
    with workdir_lock(stages[0].work.root):
        pending: list[tuple[int, Stage[R], dict[str, Any]]] = []
        for i, stage in enumerate(stages):
            if reports[i] is not None:
                continue
            stage.refresh()
            inputs = stage.inputs()
            reports[i] = None if force else fresh_report(stage, inputs)
            if reports[i] is None:
                pending.append((i, stage, inputs))
        computed = compute([(stage, inputs) for _, stage, inputs in pending], Timings()) if pending else []
        for (i, stage, inputs), report in zip(pending, computed, strict=True):
            record_stage(stage.manifest, stage.name, inputs, report.record(), **stage.recorded_extras(report))
            reports[i] = report
    return reports  # type: ignore[return-value]


def recorded_before_fields(stage: Stage[Any], inputs: dict[str, Any]) -> dict[str, Any] | None:
    """``inputs`` as a stage recorded them before corpora kept fields: with the whole corpus file's hash,
    which ingest still records. The same file means the same texts, labels and splits, so a probe of a
    corpus re-ingested unchanged stays fresh. None where it does not apply."""
    work = getattr(stage, "work", None)
    if "corpus_sha256" not in inputs or not isinstance(work, Workdir):
        return None
    whole = ((stage_entry(work.manifest, "ingest") or {}).get("outputs") or {}).get("corpus_sha256")
    return {**inputs, "corpus_sha256": whole} if whole and whole != inputs["corpus_sha256"] else None


def fresh_report(stage: Stage[R], inputs: dict[str, Any] | None = None) -> R | None:
    """The report of a fresh stage, or None: not recorded, recorded by another version of the stage,
    inputs changed, an output gone, or an output damaged on disk."""
    inputs = stage.inputs() if inputs is None else inputs
    entry = stage_entry(stage.manifest, stage.name)
    if not entry or version_problem(entry, stage.name):
        return None
    if not stage.fresh(entry, inputs) and not (
        (old := recorded_before_fields(stage, inputs)) and stage.fresh(entry, old)
    ):
        return None
    try:
        return stage.rebuild(entry)
    except json.JSONDecodeError:  # a damaged probe.json or baselines.json only costs a rerun
        return None
