"""The learning-curve stages: a run's probes (``curve``, in the run's folder) and the baselines
(``baseline_curve``, once per corpus in ``W/baselines/``) refitted on the same stratified subsamples of
the training rows, so a run's curve reads against the baselines' point by point.

The full-size point is read from probe.json (baselines.json), never refitted: a curve needs a fresh
probe (baselines) stage for the same settings, and records its result's hash so a new probe makes the
curve stale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.artifacts.corpus import corpus_hash, load_corpus
from pipeline.artifacts.run_layer import find_layer_run
from pipeline.artifacts.run_stage import RunStage
from pipeline.artifacts.runs import Run
from pipeline.core.atomic import write_text_atomic
from pipeline.core.errors import EncajesError
from pipeline.core.hashing import params_hash
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.runner import Stage, Timings, fresh_report, run_stage
from pipeline.core.settings import DEFAULT_MODEL, CurveSettings, ProbeSettings
from pipeline.core.stage_report import StageReport
from pipeline.stages.probe.baseline_stage import BaselineReport, BaselineStage, baselines
from pipeline.stages.probe.curves import (
    Curve,
    Fitted,
    ProbeData,
    TextData,
    curve_sizes,
    draw_curve,
    dropped_sizes,
    fit_baselines_on,
    fit_probes_on,
)
from pipeline.stages.probe.data import choose_split
from pipeline.stages.probe.stage import ProbeReport, ProbeStage, probe_rows

# what a curve depends on of the probe settings: the split and the C (and k) search, not the bootstrap
BASELINE_SETTINGS_USED = ("C", "cv_folds", "max_iter", "include_val", "seed", "test_size")
PROBE_SETTINGS_USED = ("k", *BASELINE_SETTINGS_USED)


def _used(settings: ProbeSettings, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in asdict(settings).items() if key in keys}


@dataclass(kw_only=True)
class CurveReport(StageReport):
    """A run's learning curve: mean test macro-F1 and its spread over the resamples, per size."""

    stage = "curve"
    file: Path
    title: str
    curve: Curve
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"curve": self.curve.to_dict()}

    def record(self) -> dict[str, Any]:
        """The manifest keeps the means; the file has every resample."""
        curve = self.curve
        means = {name: [round(m, 6) for m in values] for name, values in curve.means().items()}
        return {"title": self.title, "seconds": self.seconds, "sizes": curve.sizes, "means": means}

    @classmethod
    def read(cls, file: Path, entry: dict[str, Any]) -> CurveReport:
        """The report of a fresh stage: the curve from its file, the rest from the manifest entry."""
        curve = Curve.from_dict(json.loads(file.read_text(encoding="utf-8")))
        outputs = entry.get("outputs", {})
        return cls(file=file, title=outputs["title"], curve=curve, seconds=outputs["seconds"], skipped=True)

    def lines(self) -> list[str]:
        curve = self.curve
        out = [
            f"{'fresh, kept' if self.skipped else 'wrote'} {self.file}",
            f"learning curve of {self.title}: {curve.resamples} stratified resample(s) a size below "
            f"all {curve.train_rows:,} training rows (seed {curve.seed}); test macro-F1, mean (min-max)",
            *curve.notes,
        ]
        names = list(curve.points[0].scores) if curve.points else []
        out.append(f"{'size':>8} {'rows':>8}  " + "  ".join(f"{name:<19}" for name in names))
        for point in curve.points:
            cells = []
            for name in names:
                scores = point.scores[name]
                cells.append(f"{np.mean(scores):.3f} ({min(scores):.3f}-{max(scores):.3f})")
            out.append(f"{point.size:>8,} {point.rows:>8,}  " + "  ".join(cells))
        return out


@dataclass(kw_only=True)
class BaselineCurveReport(CurveReport):
    """The baselines' learning curve (TF-IDF and majority class), on the same subsamples as the runs'."""

    stage = "baseline_curve"


def _with_notes(curve: Curve, sizes_spec: str, train_rows: int) -> Curve:
    """The curve with a note on the sizes it left out (above the training rows)."""
    dropped = dropped_sizes(sizes_spec, train_rows)
    if not dropped:
        return curve
    listed = ", ".join(f"{size:,}" for size in dropped)
    note = f"note: sizes above the {train_rows:,} training rows left out: {listed}"
    return replace(curve, notes=[note])


class CurveStage(RunStage[CurveReport]):
    """The probes' learning curve on one run."""

    name = "curve"

    def __init__(self, work: Workdir, run: Run, settings: ProbeSettings, curve: CurveSettings) -> None:
        super().__init__(work, run, settings)
        self.curve = curve

    def probe_result(self) -> tuple[ProbeReport | None, str | None]:
        """The probe stage's report and the hash of the result its manifest records; (None, None) when
        it is not fresh for these settings."""
        report = fresh_report(ProbeStage(self.work, self.run, self.settings))
        if report is None:
            return None, None
        # what the curve reads of it: the full-size figures and choices (not the intervals or leakage,
        # which --bootstrap and --near-dup change without touching a fit)
        used = {
            name: (result.macro_f1, result.choice.value if result.choice else None)
            for name, result in (("logistic", report.logistic), ("knn", report.knn))
        }
        return report, params_hash(used)

    def inputs(self) -> dict[str, Any]:
        return {
            "corpus_sha256": corpus_hash(self.work),
            "embeddings_sha256": self.run.embeddings_sha256,
            **_used(self.settings, PROBE_SETTINGS_USED),
            **asdict(self.curve),
            "probe_result_sha256": self.probe_result()[1],
        }

    def rebuild(self, entry: dict[str, Any]) -> CurveReport:
        return CurveReport.read(self.run.paths.curve, entry)

    def compute(self, inputs: dict[str, Any], timings: Timings) -> CurveReport:
        probe, _ = self.probe_result()
        if probe is None:
            raise EncajesError(
                f"The learning curve of {self.run.title} starts from its probe figures, and they are missing "
                f"or were made with other settings: run `encajes probe --workdir {self.work.root}` with the "
                "same options first."
            )
        with timings.part("seconds"):
            rows = probe_rows(self.work, self.run, self.settings)
            data = ProbeData(rows.x_train, rows.y_train, rows.x_test, rows.y_test)
            full = {
                "logistic": Fitted(probe.logistic.macro_f1, _value(probe.logistic.C)),
                "knn": Fitted(probe.knn.macro_f1, _value(probe.knn.k)),
            }
            curve = _draw(
                self.work, self.settings, self.curve, rows.y_train, full,
                lambda positions: fit_probes_on(positions, data, self.settings),
            )  # fmt: skip
            write_text_atomic(self.run.paths.curve, json.dumps(curve.to_dict(), indent=2, ensure_ascii=False))
        return CurveReport(
            file=self.run.paths.curve, title=self.run.title, curve=curve, seconds=timings.rounded()["seconds"]
        )


def _value(choice: Any) -> float | None:
    return None if choice is None else choice.value


def _train_row_ids(work: Workdir, settings: ProbeSettings) -> np.ndarray:
    corpus = load_corpus(work, columns=["row_id", "label", "split"])
    train, _, _ = choose_split(corpus, settings)
    return corpus["row_id"].to_numpy()[train]


def _draw(
    work: Workdir,
    settings: ProbeSettings,
    spec: CurveSettings,
    y_train: np.ndarray,
    full: dict[str, Fitted],
    fit_one: Callable[[np.ndarray], dict[str, Fitted]],
    n_jobs: int | None = None,
) -> Curve:
    """The curve on the corpus' training rows, at the sizes ``spec`` asks for (``n_jobs``: see
    ``draw_curve``)."""
    row_ids = _train_row_ids(work, settings)
    if len(row_ids) != len(y_train):
        raise EncajesError(f"The training rows of {work.root} changed under the curve: run it again.")
    sizes = curve_sizes(spec.train_sizes, y_train)
    curve = draw_curve(y_train, row_ids, sizes, spec.resamples, settings.seed, fit_one, full, n_jobs)
    return _with_notes(curve, spec.train_sizes, len(y_train))


class BaselineCurveStage(Stage[BaselineCurveReport]):
    """The baselines' learning curve, once per corpus and settings, recorded in the workdir manifest."""

    name = "baseline_curve"

    def __init__(self, work: Workdir, settings: ProbeSettings, curve: CurveSettings) -> None:
        self.work, self.settings, self.curve = work, settings, curve

    @property
    def manifest(self) -> Path:
        return self.work.manifest

    def outputs(self) -> list[Path]:
        return [self.work.baseline_curve]

    def baselines_result(self) -> tuple[BaselineReport | None, str | None]:
        """The baselines' report and the hash of the result the manifest records, or (None, None)."""
        report = fresh_report(BaselineStage(self.work, self.settings))
        if report is None:
            return None, None
        used = {  # the full-size figures and TF-IDF's C, as for a run's curve
            name: (result["macro_f1"], (result.get("C") or {}).get("value"))
            for name, result in report.results.items()
        }
        return report, params_hash(used)

    def inputs(self) -> dict[str, Any]:
        return {
            "corpus_sha256": corpus_hash(self.work),
            **_used(self.settings, BASELINE_SETTINGS_USED),
            **asdict(self.curve),
            "baselines_result_sha256": self.baselines_result()[1],
        }

    def rebuild(self, entry: dict[str, Any]) -> BaselineCurveReport:
        return BaselineCurveReport.read(self.work.baseline_curve, entry)

    def compute(self, inputs: dict[str, Any], timings: Timings) -> BaselineCurveReport:
        base, _ = self.baselines_result()
        if base is None:
            raise EncajesError(f"The baselines of {self.work.root} are missing or stale: run them first.")
        settings = self.settings
        with timings.part("seconds"):
            corpus = load_corpus(self.work, columns=["row_id", "text", "label", "split"])
            train, test, _ = choose_split(corpus, settings)
            y, texts = corpus["label"].astype(str).to_numpy(), corpus["text"].to_numpy()
            data = TextData(texts[train], y[train], list(texts[test]), y[test])
            tfidf = base.results["tfidf"]
            full = {
                "tfidf": Fitted(tfidf["macro_f1"], tfidf["C"]["value"]),
                "majority": Fitted(base.results["majority"]["macro_f1"]),
            }
            curve = _draw(
                self.work, settings, self.curve, data.y_train, full,
                lambda positions: fit_baselines_on(positions, data, settings),
                n_jobs=1,  # TF-IDF's C search runs its folds in worker processes, which threads cannot nest
            )  # fmt: skip
            self.work.baseline_curve.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(
                self.work.baseline_curve, json.dumps(curve.to_dict(), indent=2, ensure_ascii=False)
            )
        return BaselineCurveReport(
            file=self.work.baseline_curve,
            title="baselines",
            curve=curve,
            seconds=timings.rounded()["seconds"],
        )


def curve_run(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    probe: ProbeSettings | None = None,
    curve: CurveSettings | None = None,
    force: bool = False,
    layer: str = LAST_LAYER,
) -> CurveReport:
    """The probes' learning curve on one run (its probe stage fresh for the same settings first)."""
    work = Workdir.at(workdir)
    stage = CurveStage(
        work, find_layer_run(work, model, pooling, layer), probe or ProbeSettings(), curve or CurveSettings()
    )
    return run_stage(stage, force)


def baseline_curve(
    workdir: str | Path,
    probe: ProbeSettings | None = None,
    curve: CurveSettings | None = None,
    force: bool = False,
) -> BaselineCurveReport:
    """The baselines' learning curve, once per corpus: the baselines stage first (skipped when fresh),
    then the same subsamples as every run's curve."""
    work, probe = Workdir.at(workdir), probe or ProbeSettings()
    baselines(work.root, probe)
    return run_stage(BaselineCurveStage(work, probe, curve or CurveSettings()), force)
