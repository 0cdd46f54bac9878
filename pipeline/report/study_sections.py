"""The report's study sections (layers, learning curves, near-duplicates, TF-IDF combined, cost), as
Markdown and HTML: each figure written beside the report and inlined in the HTML."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.render.study_figures import plot_cost, plot_curves, plot_layers
from pipeline.render.tables import html_table, markdown_table
from pipeline.report.cost import cost_table_rows
from pipeline.report.curves import curve_table_rows
from pipeline.report.results import PROBES, CompareResult, combined_name, run_name
from pipeline.report.study import (
    TYPICAL_SHARE,
    combined_sentences,
    cost_findings,
    crossover_sentences,
    curve_series,
    layer_sentences,
    layer_studies,
    leakage_sentences,
)

FIGURES = {"layers": "layers.png", "curves": "learning_curves.png", "cost": "cost.png"}


@dataclass
class Section:
    """A titled section: sentences, tables (rows of text cells) and at most one figure."""

    title: str
    meaning: str  # what the section's figure and figures mean, in a sentence or two
    sentences: list[str] = field(default_factory=list)
    tables: list[list[dict[str, str]]] = field(default_factory=list)
    figure: Path | None = None


def _layers(result: CompareResult, out_dir: Path) -> Section | None:
    studies = layer_studies(result)
    if not studies:
        return None
    figure = out_dir / FIGURES["layers"]
    panels = {study.system: study.scores for study in studies}
    best = {study.system: {probe: pick.layer for probe, pick in study.best.items()} for study in studies}
    plot_layers(panels, best, figure, "Test macro-F1 by hidden layer (95% intervals); ★ inner CV's pick")
    rows = [
        {
            "run": study.system,
            "layer": score.layer,
            **{f"{PROBES[probe]} macro-F1": _cell(study, probe, score.layer) for probe in PROBES},
        }
        for study in studies
        for score in study.scores["logistic"]
    ]
    meaning = (
        "Each layer of a model is probed like any run. The layer named for each probe is the one with "
        "the best inner cross-validation score on the training rows (the test rows play no part in "
        "choosing it); its difference from the last layer is tested in the pair tables."
    )
    return Section("Hidden layers", meaning, layer_sentences(result), [rows], figure)


def _cell(study, probe: str, layer: str) -> str:
    score = next(s for s in study.scores[probe] if s.layer == layer)
    mark = " ★" if study.best[probe].layer == layer else ""
    return f"{score.macro_f1:.3f} [{score.low:.3f}, {score.high:.3f}]{mark}"


def _curves(result: CompareResult, out_dir: Path) -> Section | None:
    series = curve_series(result)
    if not any(s.kind == "run" for s in series):
        return None
    figure = out_dir / FIGURES["curves"]
    plot_curves(series, figure, "Logistic-regression macro-F1 by labelled training tweets")
    meaning = (
        "Each point trains the probe (C tuned by inner CV within the subsample) on a stratified "
        "subsample of the training rows, the same subsamples for every run and baseline, and scores "
        "it on all test rows; the band spans the resamples, cells are mean ± sd. The last point uses "
        "every training row and equals the table above."
    )
    return Section(
        "Learning curves", meaning, crossover_sentences(result), [curve_table_rows(series)], figure
    )


def _leakage(result: CompareResult) -> Section | None:
    rows = []
    for run in result.headline:
        leak = run.leakage
        if leak is None:
            continue
        judged = leak.twins <= TYPICAL_SHARE * leak.test_rows
        twins = f"{leak.twins:,} of {leak.test_rows:,}" + ("" if judged else " (not judged)")
        row = {"run": run_name(run), "test rows with a twin": twins}
        for probe, clean in (("logistic", leak.logistic), ("knn", leak.knn)):
            full = run.scores(probe).macro_f1
            value = f"{clean.macro_f1:.3f} (all: {full:.3f})" if clean else "—"
            row[f"{PROBES[probe]} without twins"] = value + (
                " ⚠" if judged and clean and clean.outside else ""
            )
        rows.append(row)
    if not rows:
        return None
    meaning = (
        "A twin is a training row at cosine ≥ the --near-dup threshold from a test row (in the run's "
        "own space); ⚠ marks a figure that leaves the whole test set's 95% interval without them. Where "
        "over a tenth of the test rows have one, the threshold is an ordinary neighbour's cosine in that "
        "space (CLS vectors crowd together), so the run is not judged."
    )
    return Section("Near-duplicate leakage", meaning, leakage_sentences(result), [rows])


def _combined(result: CompareResult) -> Section | None:
    sentences = combined_sentences(result)
    if not sentences:
        return None
    rows = [
        {"system": combined_name(run), "LR macro-F1": f"{run.combined['macro_f1']:.3f}"}
        for run in result.headline
        if run.combined
    ]
    meaning = (
        "One logistic regression on the TF-IDF features and the run's embeddings together, each block "
        "scaled to unit mean row norm, C tuned as for TF-IDF: does the encoder add what n-grams miss?"
    )
    return Section("Embeddings + TF-IDF", meaning, sentences, [rows])


def _cost(result: CompareResult, out_dir: Path) -> Section | None:
    points, front, sentence = cost_findings(result)
    if len(points) < 2:
        return None
    figure = out_dir / FIGURES["cost"]
    plot_cost(points, front, figure, "Logistic-regression macro-F1 against texts/s on this machine")
    meaning = (
        "Throughput is what the embed stage measured on this machine at the stored dtype (a run made "
        "in a layer sweep carries the sweep's pass, every layer at once; for TF-IDF: transforming and "
        "predicting the test texts); the named points are the Pareto front."
    )
    return Section("Quality against cost", meaning, [sentence], [cost_table_rows(points, front)], figure)


def study_sections(result: CompareResult, out_dir: Path) -> list[Section]:
    """The sections that have data, their figures written into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made = [
        _layers(result, out_dir),
        _curves(result, out_dir),
        _leakage(result),
        _combined(result),
        _cost(result, out_dir),
    ]
    return [section for section in made if section is not None]


def sections_markdown(sections: list[Section]) -> list[str]:
    lines = []
    for section in sections:
        lines += [f"## {section.title}", "", section.meaning, ""]
        lines += [*(f"- {sentence}" for sentence in section.sentences), ""] if section.sentences else []
        if section.figure:
            lines += [f"![{section.title}]({section.figure.name})", ""]
        for rows in section.tables:
            lines += [markdown_table(rows), ""] if rows else []
    return lines


def sections_html(sections: list[Section]) -> str:
    esc = html.escape
    parts = []
    for section in sections:
        parts.append(f"<h2>{esc(section.title)}</h2><p>{esc(section.meaning)}</p>")
        if section.sentences:
            items = "".join(f"<li>{_bold(esc(s))}</li>" for s in section.sentences)
            parts.append(f"<ul>{items}</ul>")
        if section.figure:
            data = base64.b64encode(section.figure.read_bytes()).decode()
            image = f'<img class=study src="data:image/png;base64,{data}" alt="{esc(section.title)}">'
            parts.append(f"<figure>{image}</figure>")
        parts += [html_table(rows) for rows in section.tables if rows]
    return "\n".join(parts)


def _bold(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
