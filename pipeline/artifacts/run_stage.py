"""The shape of a stage on one embedded run (index, probe, plot): its manifest is the run's, and it
re-reads the run once the workdir's lock is held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.artifacts.runs import Run, find_run_at
from pipeline.core.errors import EncajesError
from pipeline.core.layout import Workdir
from pipeline.core.runner import R, Stage


class RunStage(Stage[R]):
    """A stage on one embedded run (index, probe, plot): the run's manifest records it."""

    def __init__(self, work: Workdir, run: Run, settings: Any) -> None:
        self.work, self.run, self.settings = work, run, settings

    @property
    def manifest(self) -> Path:
        return self.run.paths.manifest

    def outputs(self) -> list[Path]:
        return self.run.paths.outputs(self.name)

    def refresh(self) -> None:
        run = find_run_at(self.run.paths)
        if run is None:
            raise EncajesError(
                f"The embeddings of {self.run.paths.root} are gone: run `encajes embed` again."
            )
        self.run = run
