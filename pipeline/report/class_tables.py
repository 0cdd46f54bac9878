"""The report's per-class section: runs that predict few classes, the largest classes' F1 (the rest
folded away), and each run's most-confused label pairs."""

from __future__ import annotations

import html

from pipeline.render.confusions import confused_pairs, narrow_prediction
from pipeline.render.figures import display_label
from pipeline.render.tables import html_table, markdown_table
from pipeline.report.results import CompareResult, RunResult

SHOWN_CLASSES = 15  # per-class rows shown before the rest fold away; report.json keeps every class


def narrow_lines(result: CompareResult) -> list[str]:
    """One sentence per probe that predicts fewer than half of the classes: worth saying first."""
    lines = []
    for run in result.runs:
        for probe in ("logistic", "knn"):
            scores = run.scores(probe)
            name = f"{run.model} · {run.pooling} ({probe})"
            line = narrow_prediction(name, scores.labels, scores.confusion)
            lines += [line] if line else []
    return lines


def best_run(result: CompareResult) -> RunResult:
    return max(result.runs, key=lambda run: run.logistic.macro_f1)


def pair_rows(result: CompareResult, run: RunResult) -> list[dict[str, str]]:
    """The logistic probe's most-confused pairs of one run, as table cells."""
    scores = run.logistic
    names = result.label_names
    return [
        {
            "true": display_label(row.true, for_html=True, names=names),
            "predicted as": display_label(row.predicted, for_html=True, names=names),
            "test rows": f"{row.count:,}",
            "share of true class": f"{row.share:.0%}",
        }
        for row in confused_pairs(scores.labels, scores.confusion).itertuples()
    ]


def per_class_rows(result: CompareResult) -> list[dict[str, str]]:
    """Per-class F1 of every class, largest first."""
    per_class = result.per_class_f1()
    return [
        {
            "label": display_label(str(label), for_html=True, names=result.label_names),
            "support": str(int(row["support"])),
            **{col: f"{row[col]:.3f}" for col in per_class.columns[1:]},
        }
        for label, row in per_class.iterrows()
    ]


def per_class_markdown(result: CompareResult) -> list[str]:
    """The per-class section: collapsed-probe warnings, the largest classes, the best run's confusions."""
    rows = per_class_rows(result)
    hidden = len(rows) - SHOWN_CLASSES
    best, narrow = best_run(result), narrow_lines(result)
    pairs = pair_rows(result, best)
    return [
        "## Per-class F1 (logistic regression)",
        "",
        *(f"- **{line}**." for line in narrow),
        *([""] if narrow else []),
        markdown_table(rows[:SHOWN_CLASSES]),
        "",
        *([f"… and {hidden} more classes (report.json has them all)", ""] if hidden > 0 else []),
        f"### Most-confused pairs — {best.model} · {best.pooling} (logistic regression)",
        "",
        markdown_table(pairs) if pairs else "No test row was misclassified.",
        "",
    ]


def per_class_html(result: CompareResult) -> str:
    """Warnings, the largest classes, and the rest folded in a <details>; best F1 per class highlighted."""
    rows = per_class_rows(result)
    runs = list(rows[0])[2:]
    best = set()
    for i, row in enumerate(rows):  # ties all bold; zeros never
        top = max(float(row[col]) for col in runs)
        best |= {(i, col) for col in runs if 0 < float(row[col]) == top}
    out = "".join(f"<p class=warn>{html.escape(line)}.</p>" for line in narrow_lines(result))
    out += html_table(rows[:SHOWN_CLASSES], best)
    if len(rows) > SHOWN_CLASSES:
        rest = {(i - SHOWN_CLASSES, col) for i, col in best if i >= SHOWN_CLASSES}
        out += (
            f"<details><summary>{len(rows) - SHOWN_CLASSES} more classes</summary>"
            f"{html_table(rows[SHOWN_CLASSES:], rest)}</details>"
        )
    return out


def confused_pairs_html(result: CompareResult) -> str:
    """Each run's most-confused pairs (logistic), the best run's open and the others folded."""
    best, out = best_run(result), ""
    for run in result.runs:
        pairs = pair_rows(result, run)
        table = html_table(pairs, css="pairs") if pairs else "<p>No test row was misclassified.</p>"
        out += (
            f"<details{' open' if run is best else ''}><summary>Most-confused pairs — "
            f"{html.escape(run.model)} · {html.escape(run.pooling)} (logistic regression)</summary>"
            f"{table}</details>"
        )
    return out
