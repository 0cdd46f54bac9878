"""Compare: every model x pooling on one corpus -> embed, probe and plot each (reusing fresh artifacts),
then one report with the runs side by side and a paired test of the best against the runner-up."""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.embed import EmbedSettings, embed_corpus
from pipeline.errors import EncajesError
from pipeline.layout import Workdir
from pipeline.lock import writes_workdir
from pipeline.metrics import paired_bootstrap
from pipeline.plot import UmapSettings, plot_run
from pipeline.probe import ProbeSettings, probe_run


@dataclass(frozen=True)
class CompareSpec:
    models: tuple[str, ...] = ("minilm",)
    poolings: tuple[str, ...] = ("mean",)
    embed: dict[str, Any] = field(default_factory=dict)  # EmbedSettings fields other than model/pooling
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    umap: UmapSettings = field(default_factory=UmapSettings)
    plots: bool = True

    def runs(self) -> list[tuple[str, str]]:
        return [(model, pooling) for model in self.models for pooling in self.poolings]


def load_spec(path: Path, overrides: dict[str, Any] | None = None) -> CompareSpec:
    """A TOML file: models = [...], poolings = [...], and optional [embed], [probe], [umap] tables."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise EncajesError(f"{path}: cannot read the comparison file ({error}).") from None
    known = {"models", "poolings", "embed", "probe", "umap", "plots"}
    if unknown := set(data) - known:
        raise EncajesError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(known)}.")
    spec = CompareSpec(
        models=tuple(data.get("models", ["minilm"])),
        poolings=tuple(data.get("poolings", ["mean"])),
        embed=_checked(data.get("embed", {}), EmbedSettings, path, "embed", exclude={"model", "pooling"}),
        probe=ProbeSettings(**_checked(data.get("probe", {}), ProbeSettings, path, "probe")),
        umap=UmapSettings(**_checked(data.get("umap", {}), UmapSettings, path, "umap")),
        plots=bool(data.get("plots", True)),
    )
    return spec if not overrides else CompareSpec(**{**spec.__dict__, **overrides})


def _checked(table: dict, cls: type, path: Path, name: str, exclude: set[str] = frozenset()) -> dict:
    allowed = {f.name for f in fields(cls)} - set(exclude)
    if unknown := set(table) - allowed:
        raise EncajesError(f"{path}: unknown keys {sorted(unknown)} in [{name}]; allowed: {sorted(allowed)}.")
    return table


@dataclass
class RunResult:
    model: str
    pooling: str
    run_dir: Path
    embed: dict[str, Any]
    probe: dict[str, Any]
    plot: dict[str, Any] | None
    skipped: dict[str, bool]


@dataclass
class CompareResult:
    workdir: Path
    runs: list[RunResult]
    tests: dict[str, dict[str, Any]]
    seconds: float
    report: dict[str, str] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per run: the figures a reader compares."""
        rows = []
        for run in self.runs:
            lr, knn = run.probe["logistic"], run.probe["knn"]
            rows.append(
                {
                    "model": run.model,
                    "pooling": run.pooling,
                    "dim": run.embed["dim"],
                    "parameters": run.embed.get("parameters", 0),
                    "texts_per_s": run.embed.get("texts_per_second"),
                    "lr_macro_f1": lr["macro_f1"],
                    "lr_ci_low": lr["macro_f1_ci"]["low"],
                    "lr_ci_high": lr["macro_f1_ci"]["high"],
                    "lr_accuracy": lr["accuracy"],
                    "knn_macro_f1": knn["macro_f1"],
                    "knn_ci_low": knn["macro_f1_ci"]["low"],
                    "knn_ci_high": knn["macro_f1_ci"]["high"],
                    "knn_accuracy": knn["accuracy"],
                }
            )
        return pd.DataFrame(rows)

    def per_class_f1(self, probe: str = "logistic") -> pd.DataFrame:
        columns = {
            f"{r.model} · {r.pooling}": {k: v["f1"] for k, v in r.probe[probe]["per_class"].items()}
            for r in self.runs
        }
        frame = pd.DataFrame(columns)
        support = pd.Series(self.runs[0].probe[probe]["per_class"]).map(lambda v: v["support"])
        frame.insert(0, "support", support)
        return frame.sort_values("support", ascending=False)


@writes_workdir()
def compare(
    workdir: str | Path,
    spec: CompareSpec,
    force: bool = False,
    progress: bool = True,
    on_step: Any = None,
) -> CompareResult:
    """Run the grid; each stage skips itself when fresh, so a rerun costs only the report."""
    start = time.perf_counter()
    work = Workdir.at(workdir)
    work.require_corpus()
    if not spec.models or not spec.poolings:
        raise EncajesError("Give at least one --model and one --pooling.")
    results: list[RunResult] = []
    for model, pooling in spec.runs():
        if on_step:
            on_step(f"{model} · {pooling}")
        embedded = embed_corpus(
            work.root,
            EmbedSettings(model=model, pooling=pooling, **spec.embed),
            force=force,
            progress=progress,
        )
        probed = probe_run(work.root, model, pooling, spec.probe, force=force)
        plotted = plot_run(work.root, model, pooling, spec.umap, force=force) if spec.plots else None
        results.append(
            RunResult(
                model=model,
                pooling=pooling,
                run_dir=embedded.run_dir,
                embed=embedded.to_dict(),
                probe=probed.to_dict(),
                plot=plotted.to_dict() if plotted else None,
                skipped={
                    "embed": embedded.skipped,
                    "probe": probed.skipped,
                    "plot": bool(plotted and plotted.skipped),
                },
            )
        )
    tests = {probe: best_vs_runner_up(results, probe, spec.probe) for probe in ("logistic", "knn")}
    return CompareResult(
        work.root, results, {k: v for k, v in tests.items() if v}, round(time.perf_counter() - start, 3)
    )


def best_vs_runner_up(runs: list[RunResult], probe: str, settings: ProbeSettings) -> dict[str, Any] | None:
    """Paired bootstrap of macro-F1 on the same test rows: is the best run better than the second?"""
    if len(runs) < 2:
        return None
    ranked = sorted(runs, key=lambda r: r.probe[probe]["macro_f1"], reverse=True)
    best, second = ranked[0], ranked[1]
    a = pd.read_parquet(best.probe["predictions"]).set_index("row_id")
    b = pd.read_parquet(second.probe["predictions"]).set_index("row_id")
    if not np.array_equal(a.index.to_numpy(), b.index.to_numpy()):
        raise EncajesError("The runs were probed on different test rows; rerun compare with --force.")
    test = paired_bootstrap(a["label"], a[probe], b[probe], settings.bootstrap, settings.seed)
    return {
        "best": f"{best.model} · {best.pooling}",
        "runner_up": f"{second.model} · {second.pooling}",
        "significant": test["p_value"] < 0.05,
        **test,
    }
