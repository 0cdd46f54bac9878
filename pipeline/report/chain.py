"""The whole chain (``encajes run``, ``Workspace.run``): ingest -> embed, probe and plot every run ->
the comparison report -> each run's index. Every stage skips itself when fresh."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.layout import Workdir
from pipeline.core.lock import workdir_lock
from pipeline.core.settings import Columns, CsvFormat, IndexSettings
from pipeline.report.compare import CompareSpec, compare
from pipeline.report.document import write_report
from pipeline.report.results import CompareResult
from pipeline.stages.index.stage import IndexReport, index_run
from pipeline.stages.ingest.stage import IngestReport, ingest


def compare_and_report(
    workdir: str | Path,
    spec: CompareSpec,
    out: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> CompareResult:
    """``compare``, then the report in ``out`` (default: the workdir's report folder)."""
    work = Workdir.at(workdir)
    work.require_corpus()
    with workdir_lock(work.root):  # the report is written by the comparison that made it
        result = compare(work.root, spec, force=force, progress=progress, on_step=on_step)
        write_report(result, work.report(out))
    return result


@dataclass
class ChainResult:
    workdir: Path
    ingest: IngestReport
    comparison: CompareResult
    indexes: list[IndexReport]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ingest": self.ingest.to_dict(),
            "indexes": [index.to_dict() for index in self.indexes],
            **self.comparison.to_dict(),
        }

    def lines(self) -> list[str]:
        i = self.ingest
        counts = f"rows read {i.rows_read} = kept {i.rows_kept} + rejected {i.rows_rejected}"
        return [
            f"ingest: {counts} -> {i.corpus}",
            *self.comparison.lines(),
            f'search it: encajes search --workdir {self.workdir} "your text"',
        ]


def run_chain(
    inputs: Sequence[str | Path],
    workdir: str | Path,
    spec: CompareSpec,
    columns: Columns | None = None,
    fmt: CsvFormat | None = None,
    index: IndexSettings | None = None,
    *,
    out: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> ChainResult:
    """Ingest ``inputs``, compare ``spec``'s grid and write its report, then index every run."""
    fmt = fmt or CsvFormat()
    if on_step:
        on_step("ingest")
    ingested = ingest(inputs, workdir, columns, fmt.delimiter, fmt.encoding, force=force)
    result = compare_and_report(workdir, spec, out, force, progress, on_step)
    indexes = [index_run(workdir, run.model, run.pooling, index, layer=run.layer) for run in result.headline]
    return ChainResult(Workdir.at(workdir).root, ingested, result, indexes)
