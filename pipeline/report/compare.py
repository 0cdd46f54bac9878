"""Compare: every model x pooling on one corpus -> embed, probe and plot each (reusing fresh artifacts),
the baselines, and the paired tests of every pair that say which differences are real. ``results``
holds the results, ``document`` renders them."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.artifacts.label_names import load_label_names
from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.lock import workdir_lock
from pipeline.core.settings import GRID_DEFAULTS, CurveSettings, EmbedSettings, ProbeSettings, UmapSettings
from pipeline.core.timing import Timings
from pipeline.report.pairs import all_pairs
from pipeline.report.results import TFIDF_SYSTEM, CompareResult, RunResult, combined_name, run_name
from pipeline.report.study import layer_picks, study_sentences
from pipeline.stages.embed.stage import LayersReport, embed_corpus
from pipeline.stages.plot.stage import plot_run
from pipeline.stages.probe.baseline_stage import BaselineReport, baselines
from pipeline.stages.probe.combined_stage import combined_run
from pipeline.stages.probe.curve_stage import baseline_curve, curve_run
from pipeline.stages.probe.stage import probe_run


@dataclass(frozen=True)
class CompareSpec:
    models: tuple[str, ...] = GRID_DEFAULTS["model"]
    poolings: tuple[str, ...] = GRID_DEFAULTS["pooling"]
    embed: dict[str, Any] = field(default_factory=dict)  # EmbedSettings fields other than model/pooling
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    umap: UmapSettings = field(default_factory=UmapSettings)
    plots: bool = True
    curve: CurveSettings = field(default_factory=CurveSettings)
    curves: bool = True  # learning curves of the headline runs and the baselines
    combined: bool = True  # each headline run's embeddings + TF-IDF in one probe

    def runs(self) -> list[tuple[str, str]]:
        return [(model, pooling) for model in self.models for pooling in self.poolings]


def load_spec(path: Path) -> CompareSpec:
    """A TOML file: models = [...], poolings = [...], and optional [embed], [probe], [umap] tables."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise EncajesError(f"{path}: cannot read the comparison file ({error}).") from None
    known = {"models", "poolings", "embed", "probe", "umap", "curve", "plots", "curves", "combined"}
    if unknown := set(data) - known:
        raise EncajesError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(known)}.")
    try:
        return CompareSpec(
            models=_names(data, "models", path) or GRID_DEFAULTS["model"],
            poolings=_names(data, "poolings", path) or GRID_DEFAULTS["pooling"],
            embed=_embed_table(data.get("embed", {}), path),
            probe=ProbeSettings(**_checked(data.get("probe", {}), ProbeSettings, path, "probe")),
            umap=UmapSettings(**_checked(data.get("umap", {}), UmapSettings, path, "umap")),
            plots=bool(data.get("plots", True)),
            curve=CurveSettings(**_checked(data.get("curve", {}), CurveSettings, path, "curve")),
            curves=bool(data.get("curves", True)),
            combined=bool(data.get("combined", True)),
        )
    except EncajesError as error:  # a value out of range: say which file it came from
        message = str(error)
        raise EncajesError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def spec_from(
    config: Path | None = None,
    models: Sequence[str] = (),
    poolings: Sequence[str] = (),
    embed: dict[str, Any] | None = None,
    probe: dict[str, Any] | None = None,
    umap: dict[str, Any] | None = None,
    plots: bool | None = None,
    curve: dict[str, Any] | None = None,
    curves: bool | None = None,
    combined: bool | None = None,
) -> CompareSpec:
    """The config file's spec (or the defaults), with every value given on the command line on top:
    a flag the user typed always wins, a flag left out never overrides the file."""
    base = load_spec(config) if config else CompareSpec()
    return CompareSpec(
        models=tuple(models) or base.models,
        poolings=tuple(poolings) or base.poolings,
        embed={**base.embed, **(embed or {})},
        probe=replace(base.probe, **(probe or {})),
        umap=replace(base.umap, **(umap or {})),
        plots=base.plots if plots is None else plots,
        curve=replace(base.curve, **(curve or {})),
        curves=base.curves if curves is None else curves,
        combined=base.combined if combined is None else combined,
    )


def _names(data: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    """A list of strings from the file (``models = ["minilm"]``), never a string read letter by letter."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise EncajesError(f'{path}: {key} must be a list of names, e.g. {key} = ["{value}"].')
    return tuple(value)


def _embed_table(table: dict, path: Path) -> dict[str, Any]:
    """The [embed] table, checked now (not when its run's turn comes)."""
    table = _checked(table, EmbedSettings, path, "embed", exclude={"model", "pooling"})
    EmbedSettings(**table)
    return table


def _checked(table: dict, cls: type, path: Path, name: str, exclude: set[str] = frozenset()) -> dict:
    allowed = {f.name for f in fields(cls)} - set(exclude)
    if unknown := set(table) - allowed:
        raise EncajesError(f"{path}: unknown keys {sorted(unknown)} in [{name}]; allowed: {sorted(allowed)}.")
    return table


def compare(
    workdir: str | Path,
    spec: CompareSpec,
    force: bool = False,
    progress: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> CompareResult:
    """Run the grid; each stage skips itself when fresh, so a rerun costs only the report."""
    timings = Timings()
    work = Workdir.at(workdir)
    work.require_corpus()
    if not spec.models or not spec.poolings:
        raise EncajesError("Give at least one --model and one --pooling.")
    with timings.part("seconds"), workdir_lock(work.root):  # one comparison writes at a time
        if on_step:
            on_step("baselines (majority class, TF-IDF)")
        base = baselines(work.root, spec.probe, force=force)
        results = [
            result
            for model, pooling in spec.runs()
            for result in _one_model(work, model, pooling, spec, force, progress, on_step)
        ]
        curve = None
        if spec.curves:
            if on_step:
                on_step("learning curves of the baselines")
            curve = baseline_curve(work.root, spec.probe, spec.curve, force=force).to_dict()
        pairs = tested_pairs(results, base, spec.probe)
    result = CompareResult(
        work.root,
        results,
        pairs,
        timings.rounded()["seconds"],
        baselines=base.results,
        label_names=load_label_names(work),
        baseline_curve=curve,
    )
    result.findings = study_sentences(result)
    return result


def _one_model(
    work: Workdir,
    model: str,
    pooling: str,
    spec: CompareSpec,
    force: bool,
    progress: bool,
    on_step: Callable[[str], None] | None,
) -> list[RunResult]:
    """One model x pooling: embed every layer asked for (one pass), probe each, then the headline
    layers' maps, learning curves and combined probes."""
    if on_step:
        on_step(f"{model} · {pooling}")
    settings = EmbedSettings(model=model, pooling=pooling, **spec.embed)
    embedded = embed_corpus(work.root, settings, force=force, progress=progress)
    reports = embedded.runs if isinstance(embedded, LayersReport) else [embedded]
    probed = {r.layer: probe_run(work.root, model, pooling, spec.probe, force, r.layer) for r in reports}
    picks = layer_picks({layer: {"logistic": p.logistic, "knn": p.knn} for layer, p in probed.items()})
    results = []
    for report in reports:
        layer = report.layer
        picked_for = tuple(probe for probe, pick in picks.items() if pick == layer)
        main = layer == LAST_LAYER or bool(picked_for)
        primary = layer == picks["logistic"]  # curves and the TF-IDF combination: LR's pick only
        plotted = (
            plot_run(work.root, model, pooling, spec.umap, force, layer) if spec.plots and main else None
        )
        curve = (
            curve_run(work.root, model, pooling, spec.probe, spec.curve, force, layer)
            if spec.curves and primary
            else None
        )
        mixed = (
            combined_run(work.root, model, pooling, spec.probe, force, layer)
            if spec.combined and primary
            else None
        )
        done = {"embed": report, "probe": probed[layer], "plot": plotted, "curve": curve, "combined": mixed}
        results.append(
            RunResult(
                model=model,
                pooling=pooling,
                layer=layer,
                picked_for=picked_for,
                run_dir=report.run_dir,
                embed=report.to_dict(),
                probe=probed[layer].to_dict(),
                plot=plotted.to_dict() if plotted else None,
                curve=curve.to_dict() if curve else None,
                combined=mixed.to_dict() if mixed else None,
                skipped={name: stage.skipped for name, stage in done.items() if stage is not None},
            )
        )
    return results


def tested_pairs(
    runs: list[RunResult], base: BaselineReport, settings: ProbeSettings
) -> dict[str, list[dict[str, Any]]]:
    """Per probe, every pair of runs (and, for logistic regression, each run against the TF-IDF baseline)
    on the same test rows: paired bootstrap of macro-F1, Holm-adjusted over the pairs."""
    baseline = pd.read_parquet(base.predictions)
    headline = [run for run in runs if run.headline]
    frames = {run_name(run): pd.read_parquet(run.probe["predictions"]) for run in headline}  # read once
    mixed = {
        combined_name(run): pd.read_parquet(run.combined["predictions"]).rename(
            columns={"combined": "logistic"}
        )
        for run in headline
        if run.combined
    }
    members = {
        probe: {run_name(run) for run in headline if run.in_pairs(probe)} for probe in ("logistic", "knn")
    }
    for name, frame in {**frames, **mixed}.items():
        if not np.array_equal(frame["row_id"].to_numpy(), baseline["row_id"].to_numpy()):
            raise EncajesError(
                f"{name} was probed on other test rows than the rest; rerun compare with --force."
            )
    truth = baseline["label"].to_numpy()
    out = {}
    for probe in ("logistic", "knn"):
        predictions = {
            name: frame[probe].to_numpy() for name, frame in frames.items() if name in members[probe]
        }
        if probe == "logistic":
            predictions |= {name: frame["logistic"].to_numpy() for name, frame in mixed.items()}
            predictions[TFIDF_SYSTEM] = baseline["tfidf"].to_numpy()
        enough = len(predictions) > 1
        out[probe] = all_pairs(truth, predictions, settings.bootstrap, settings.seed) if enough else []
    return out
