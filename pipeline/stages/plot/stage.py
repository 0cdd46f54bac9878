"""Plot stage: a run's embeddings -> a UMAP map (``umap.parquet``), its picture (``umap.png``) and an
interactive page (``umap.html``). The projection is ``projection``'s, the picture ``map_figure``'s and the
page ``umap_page``'s; this module only wires them to the workdir."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import pipeline.render.umap_page as umap_page
from pipeline.artifacts.corpus import CorpusTexts, corpus_hash, load_corpus
from pipeline.artifacts.label_names import load_label_names, names_input
from pipeline.artifacts.run_layer import find_layer_run
from pipeline.artifacts.run_stage import RunStage
from pipeline.artifacts.store import load_embeddings
from pipeline.core.atomic import write_atomic
from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.runner import Timings, run_stage
from pipeline.core.settings import DEFAULT_MODEL, UmapSettings
from pipeline.core.stage_report import StageReport
from pipeline.render.figures import label_names
from pipeline.render.map_figure import plot_umap_png
from pipeline.stages.plot.projection import umap_2d


@dataclass(kw_only=True)
class PlotReport(StageReport):
    stage = "plot"
    umap: Path
    png: Path
    html: Path
    rows: int
    seconds: float
    fitted_rows: int = 0  # rows UMAP was fitted on; the rest were placed by their nearest fitted rows
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    peak_rss_after_fit_mb: float = 0.0  # when UMAP fitted a sample: the peak before placing the rest

    def lines(self) -> list[str]:
        state = "fresh, kept" if self.skipped else f"drew {self.rows:,} points in {self.seconds:.1f}s:"
        out = [f"{state} {self.png}", f"interactive: {self.html}"]
        if not self.skipped:
            parts = ", ".join(
                f"{k.removesuffix('_s').replace('_', ' ')} {v:.1f}s" for k, v in self.timings.items()
            )
            sample = f"fitted on {self.fitted_rows:,} rows, " if self.fitted_rows < self.rows else ""
            after_fit = f" ({self.peak_rss_after_fit_mb:,.0f} MB after the fit)" if sample else ""
            out.append(f"  UMAP: {sample}{parts}; peak memory {self.peak_rss_mb:,.0f} MB{after_fit}")
        return out


class PlotStage(RunStage[PlotReport]):
    name = "plot"

    def inputs(self) -> dict[str, Any]:
        return {  # labels colour the map, so a relabelled corpus redraws it
            "corpus_sha256": corpus_hash(self.work),
            "embeddings_sha256": self.run.embeddings_sha256,
            **asdict(self.settings),
            **names_input(self.names),
        }

    @cached_property
    def names(self) -> dict[str, str]:
        return load_label_names(self.work)

    def rebuild(self, entry: dict[str, Any]) -> PlotReport:
        paths = self.run.paths
        return PlotReport.rebuild(entry["outputs"], umap=paths.umap, png=paths.umap_png, html=paths.umap_html)

    def compute(self, inputs: dict[str, Any], timings: Timings) -> PlotReport:
        paths = self.run.paths
        with timings.part("seconds"):
            embeddings = load_embeddings(paths.embeddings)
            corpus = load_corpus(self.work, columns=["row_id", "label"])  # texts: the page's rows only
            positions = pd.Index(corpus["row_id"]).get_indexer(embeddings.row_ids)
            if (positions < 0).any():
                raise EncajesError(
                    f"{paths.embeddings} holds rows that the corpus no longer has: run `encajes embed` again."
                )
            projection = umap_2d(embeddings, self.settings)
            frame = pd.DataFrame(
                {
                    "row_id": embeddings.row_ids,
                    "x": projection.xy[:, 0],
                    "y": projection.xy[:, 1],
                    "label": corpus["label"].to_numpy()[positions],
                }
            )
            write_atomic(paths.umap, lambda tmp: frame.to_parquet(tmp, index=False))
            plot_umap_png(
                frame, self.run.title, paths.umap_png, names=self.names, top=self.settings.map_labels
            )
            self.write_page(frame, positions)
        return PlotReport(
            umap=paths.umap,
            png=paths.umap_png,
            html=paths.umap_html,
            rows=len(frame),
            seconds=timings.rounded()["seconds"],
            fitted_rows=projection.fitted_rows,
            timings=projection.seconds,
            peak_rss_mb=projection.peak_rss_mb,
            peak_rss_after_fit_mb=projection.peak_rss_after_fit_mb,
        )

    def write_page(self, frame: pd.DataFrame, positions: np.ndarray) -> None:
        """umap.html with every row, or a seeded sample of them; only the shown rows' texts are read."""
        shown = umap_page.html_rows(len(frame), umap_page.HTML_MAX_POINTS)
        order = np.argsort(positions[shown], kind="stable")  # CorpusTexts.take reads in corpus order
        texts = np.empty(len(shown), dtype=object)
        texts[order] = CorpusTexts(self.work.require_corpus()).take(positions[shown][order])
        counts = label_names(frame).value_counts()
        umap_page.write_umap_html(
            frame.iloc[shown],
            list(texts),
            self.run.title,
            self.run.paths.umap_html,
            counts,
            names=self.names,
            top=self.settings.map_labels,
        )


def plot_run(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    settings: UmapSettings | None = None,
    force: bool = False,
    layer: str = LAST_LAYER,
) -> PlotReport:
    """UMAP one run to 2-D: umap.parquet (row_id, x, y, label), umap.png and umap.html in its folder;
    ``layer``: the run's hidden layer, as ``--layer`` takes it."""
    work = Workdir.at(workdir)
    run = find_layer_run(work, model, pooling, layer)
    return run_stage(PlotStage(work, run, settings or UmapSettings()), force)


__all__ = ["PlotReport", "UmapSettings", "plot_run"]
