"""Plot stage: a run's embeddings -> a UMAP map (``umap.parquet``), its picture (``umap.png``) and an
interactive page (``umap.html``, coloured by labels or kept fields). The projection is ``projection``'s,
the picture ``map_figure``'s and the page ``umap_page``'s; this module only wires them to the workdir.
UMAP is the expensive part and depends on the embeddings and its settings alone: when only labels, names
or kept fields changed, the stored coordinates (keyed in ``umap.parquet``'s metadata) are drawn again."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import pipeline.render.umap_page as umap_page
from pipeline.artifacts.corpus import CorpusTexts, corpus_hash, fields_hash, load_corpus
from pipeline.artifacts.fields import kept_fields
from pipeline.artifacts.label_names import load_label_names, names_input
from pipeline.artifacts.run_layer import find_layer_run
from pipeline.artifacts.run_stage import RunStage
from pipeline.artifacts.store import load_embeddings
from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.runner import Timings, run_stage
from pipeline.core.settings import DEFAULT_MODEL, UmapSettings
from pipeline.core.stage_report import StageReport
from pipeline.render.figures import label_names
from pipeline.render.map_figure import plot_umap_png
from pipeline.render.map_file import MapMeta, ProjectionKey, read_map_meta, write_map
from pipeline.stages.plot.projection import Projection, umap_2d


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
    projection_reused: bool = False  # same embeddings and UMAP settings: the stored coordinates redrawn

    def lines(self) -> list[str]:
        state = "fresh, kept" if self.skipped else f"drew {self.rows:,} points in {self.seconds:.1f}s:"
        out = [f"{state} {self.png}", f"interactive: {self.html}"]
        if self.projection_reused and not self.skipped:
            out.append("  UMAP: the stored projection of the same embeddings and settings, drawn again")
        elif not self.skipped:
            parts = ", ".join(
                f"{k.removesuffix('_s').replace('_', ' ')} {v:.1f}s" for k, v in self.timings.items()
            )
            sample = f"fitted on {self.fitted_rows:,} rows, " if self.fitted_rows < self.rows else ""
            after_fit = f" ({self.peak_rss_after_fit_mb:,.0f} MB after the fit)" if sample else ""
            out.append(f"  UMAP: {sample}{parts}; peak memory {self.peak_rss_mb:,.0f} MB{after_fit}")
        return out


class PlotStage(RunStage[PlotReport]):
    name = "plot"
    reuse_projection = True  # False (--force): UMAP runs again even when its stored key matches

    def inputs(self) -> dict[str, Any]:
        return {  # labels and kept fields colour the map, so a relabelled corpus redraws it
            "corpus_sha256": corpus_hash(self.work),
            "fields_sha256": fields_hash(self.work),
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
            key = ProjectionKey(
                self.run.embeddings_sha256,
                self.settings.n_neighbors,
                self.settings.min_dist,
                self.settings.seed,
                self.settings.fit_rows,
            )
            stored = self.stored_projection(key, embeddings.row_ids) if self.reuse_projection else None
            projection = stored or umap_2d(embeddings, self.settings)
            frame = pd.DataFrame(
                {
                    "row_id": embeddings.row_ids,
                    "x": projection.xy[:, 0],
                    "y": projection.xy[:, 1],
                    "label": corpus["label"].to_numpy()[positions],
                }
            )
            write_map(frame, paths.umap, MapMeta(key, projection.fitted_rows, self.settings.map_labels))
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
            projection_reused=stored is not None,
        )

    def stored_projection(self, key: ProjectionKey, row_ids: np.ndarray) -> Projection | None:
        """The coordinates umap.parquet holds when they were computed from ``key`` for these rows."""
        path = self.run.paths.umap
        meta = read_map_meta(path) if path.exists() else None
        if meta is None or meta.key != key:
            return None
        stored = pd.read_parquet(path, columns=["row_id", "x", "y"])
        if not np.array_equal(stored["row_id"].to_numpy(), row_ids):
            return None
        return Projection(stored[["x", "y"]].to_numpy(np.float32), meta.fitted_rows)

    def write_page(self, frame: pd.DataFrame, positions: np.ndarray) -> None:
        """umap.html with every row, or a seeded sample of them; only the shown rows' texts are read."""
        shown = umap_page.html_rows(len(frame), umap_page.HTML_MAX_POINTS)
        order = np.argsort(positions[shown], kind="stable")  # CorpusTexts.take reads in corpus order
        texts = np.empty(len(shown), dtype=object)
        texts[order] = CorpusTexts(self.work.require_corpus()).take(positions[shown][order])
        counts = label_names(frame).value_counts()
        fields, kinds = self.kept(positions[shown])
        ids = corpus_ids(self.work.require_corpus(), positions[shown])
        umap_page.write_umap_html(
            frame.iloc[shown],
            list(texts),
            self.run.title,
            self.run.paths.umap_html,
            counts,
            names=self.names,
            top=self.settings.map_labels,
            fields=fields,
            kinds=kinds,
            ids=ids,
        )

    def kept(self, positions: np.ndarray) -> tuple[pd.DataFrame | None, dict[str, str]]:
        """The kept fields (created_at, author, --keep-col ...) of the corpus rows at ``positions``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.work.require_corpus()
        kept = kept_fields(path)
        if not kept:
            return None, {}
        table = pq.read_table(path, columns=[f.name for f in kept]).take(pa.array(positions))
        return table.to_pandas(), {f.name: f.kind for f in kept}


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
    stage = PlotStage(work, run, settings or UmapSettings())
    stage.reuse_projection = not force
    return run_stage(stage, force)


__all__ = ["PlotReport", "UmapSettings", "plot_run"]


def corpus_ids(corpus: Path, positions: np.ndarray) -> list[str | None]:
    """The tweet ids at corpus ``positions``: what a researcher exporting a selection goes back with."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(corpus, columns=["id"]).column("id").take(pa.array(positions)).to_pylist()
