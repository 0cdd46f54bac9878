"""Render a comparison as report.md, a self-contained report.html (images inlined) and report.json."""

from __future__ import annotations

import base64
import html
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.atomic import write_text_atomic
from pipeline.comparison import CompareResult, RunResult, test_sentences
from pipeline.confusions import confused_pairs, narrow_prediction
from pipeline.figures import display_label
from pipeline.layout import ReportPaths


def _ci(row: pd.Series, prefix: str) -> str:
    return f"{row[f'{prefix}_macro_f1']:.3f} [{row[f'{prefix}_ci_low']:.3f}, {row[f'{prefix}_ci_high']:.3f}]"


def _params(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n else "?"


def headline_rows(result: CompareResult) -> tuple[list[dict[str, str]], set[tuple[int, str]]]:
    """Table cells as text, and which (row, column) cells hold the best figure of their column."""
    table = result.table()
    rows, best = [], set()
    for i, (_, row) in enumerate(table.iterrows()):
        rows.append(
            {
                "model": row["model"],
                "pooling": row["pooling"],
                "dim": str(row["dim"]),
                "params": _params(int(row["parameters"])),
                "texts/s": f"{row['texts_per_s']:,.0f}" if row["texts_per_s"] else "?",
                "LR macro-F1 [95% CI]": _ci(row, "lr"),
                "LR acc": f"{row['lr_accuracy']:.3f}",
                "kNN macro-F1 [95% CI]": _ci(row, "knn"),
                "kNN acc": f"{row['knn_accuracy']:.3f}",
            }
        )
        for probe, column in (("lr", "LR macro-F1 [95% CI]"), ("knn", "kNN macro-F1 [95% CI]")):
            if row[f"{probe}_macro_f1"] == table[f"{probe}_macro_f1"].max():
                best.add((i, column))
    return rows, best


def _bold(rows: list[dict[str, str]], best: set[tuple[int, str]]) -> list[dict[str, str]]:
    return [{k: f"**{v}**" if (i, k) in best else v for k, v in row.items()} for i, row in enumerate(rows)]


def markdown_table(rows: list[dict[str, str]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row[h] for h in header) + " |" for row in rows]
    return "\n".join(lines)


def _context(result: CompareResult) -> dict[str, Any]:
    first = result.runs[0].probe
    return {
        "split": first["split"],
        "train": first["train_rows"],
        "test": first["test_rows"],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def render_markdown(result: CompareResult, out_dir: Path) -> str:
    ctx = _context(result)
    lines = [
        f"# encajes comparison — {result.workdir.name}",
        "",
        f"{len(result.runs)} runs on one corpus; probes trained on {ctx['split']} "
        f"({ctx['train']:,} train / {ctx['test']:,} test rows). Macro-F1 is the primary figure "
        "(as in SemEval-2018 Task 2 and TweetEval); intervals are 95% bootstrap over test rows.",
        "",
        markdown_table(_bold(*headline_rows(result))),
        "",
        "## Is the best run better?",
        "",
        *(f"- {s}" for s in test_sentences(result) or ["Only one run: nothing to compare."]),
        "",
        *per_class_markdown(result),
        "## Maps",
        "",
    ]
    for run in result.runs:
        if run.plot:
            rel = os.path.relpath(run.plot["png"], out_dir)
            rel_html = os.path.relpath(run.plot["html"], out_dir)
            lines += [
                f"### {run.model} · {run.pooling}",
                "",
                f"![UMAP]({rel})",
                "",
                f"[interactive map]({rel_html})",
                "",
            ]
    lines += [f"_Generated {ctx['created']} by encajes in {result.seconds:.1f}s._", ""]
    return "\n".join(lines)


def _img(path: str | Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="">'


CSS = """body{font:15px/1.45 system-ui,sans-serif;max-width:1400px;margin:24px auto;padding:0 16px;color:#222}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.grid{display:grid;
grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}.grid img{width:100%}figure{margin:0}
figcaption{font-weight:600;margin:4px 0}.wide{grid-template-columns:1fr}
.best{font-weight:700;background:#eef7ee}.warn{color:#8a3b00;font-weight:600;margin:4px 0}
summary{cursor:pointer;color:#555;margin:8px 0}
.pairs td:nth-child(2),.pairs th:nth-child(2){text-align:left}"""


def render_html(result: CompareResult, out_dir: Path) -> str:
    ctx = _context(result)
    esc = html.escape
    rows, best = headline_rows(result)
    head = "".join(f"<th>{esc(h)}</th>" for h in rows[0])
    body = ""
    for i, row in enumerate(rows):
        cells = "".join(
            f"<td{' class=best' if (i, key) in best else ''}>{esc(value)}</td>" for key, value in row.items()
        )
        body += f"<tr>{cells}</tr>"
    maps = "".join(
        f"<figure><figcaption>{esc(r.model)} · {esc(r.pooling)} — "
        f'<a href="{esc(os.path.relpath(r.plot["html"], out_dir))}">interactive</a></figcaption>'
        f"{_img(r.plot['png'])}</figure>"
        for r in result.runs
        if r.plot
    )
    confusions = "".join(
        f"<figure><figcaption>{esc(r.model)} · {esc(r.pooling)}</figcaption>"
        f"{_img(r.probe['confusion_png'])}</figure>"
        for r in result.runs
    ) + pairs_html(result)
    tests = "".join(f"<li>{esc(s).replace('**', '')}</li>" for s in test_sentences(result)) or (
        "<li>Only one run: nothing to compare.</li>"
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>encajes comparison — {esc(result.workdir.name)}</title><style>{CSS}</style></head><body>
<h1>encajes comparison — {esc(result.workdir.name)}</h1>
<p>{len(result.runs)} runs on one corpus; probes trained on {esc(ctx["split"])} ({ctx["train"]:,} train /
{ctx["test"]:,} test rows). Macro-F1 is the primary figure; intervals are 95% bootstrap over test rows.
Best figures are highlighted.</p>
<table><tr>{head}</tr>{body}</table>
<h2>Is the best run better?</h2><ul>{tests}</ul>
<h2>UMAP maps</h2><div class="grid">{maps or "<p>(plots were turned off)</p>"}</div>
<h2>Per-class F1 (logistic regression)</h2>{per_class_html(result)}
<h2>Confusion matrices</h2><div class="grid wide">{confusions}</div>
<p><small>Generated {ctx["created"]} by encajes in {result.seconds:.1f}s.</small></p>
</body></html>"""


# --- per-class and confusion sections ------------------------------------------------------------------

SHOWN_CLASSES = 15  # per-class rows shown before the rest fold away; report.json keeps every class


def narrow_lines(result: CompareResult) -> list[str]:
    """One sentence per probe that predicts fewer than half of the classes: worth saying first."""
    lines = []
    for run in result.runs:
        for probe in ("logistic", "knn"):
            scores = run.probe[probe]
            name = f"{run.model} · {run.pooling} ({probe})"
            line = narrow_prediction(name, scores["labels"], scores["confusion"])
            lines += [line] if line else []
    return lines


def best_run(result: CompareResult) -> RunResult:
    return max(result.runs, key=lambda run: run.probe["logistic"]["macro_f1"])


def pair_rows(result: CompareResult, run: RunResult) -> list[dict[str, str]]:
    """The logistic probe's most-confused pairs of one run, as table cells."""
    scores = run.probe["logistic"]
    names = result.label_names
    return [
        {
            "true": display_label(row.true, for_html=True, names=names),
            "predicted as": display_label(row.predicted, for_html=True, names=names),
            "test rows": f"{row.count:,}",
            "share of true class": f"{row.share:.0%}",
        }
        for row in confused_pairs(scores["labels"], scores["confusion"]).itertuples()
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


def _html_table(rows: list[dict[str, str]], best: set[tuple[int, str]] | None = None, css: str = "") -> str:
    esc, best = html.escape, best or set()
    head = "".join(f"<th>{esc(h)}</th>" for h in rows[0])
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=best' if (i, k) in best else ''}>{esc(v)}</td>" for k, v in row.items())
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table{f' class={css}' if css else ''}><tr>{head}</tr>{body}</table>"


def per_class_html(result: CompareResult) -> str:
    """Warnings, the largest classes, and the rest folded in a <details>; best F1 per class highlighted."""
    rows = per_class_rows(result)
    runs = list(rows[0])[2:]
    best = set()
    for i, row in enumerate(rows):  # ties all bold; zeros never
        top = max(float(row[col]) for col in runs)
        best |= {(i, col) for col in runs if 0 < float(row[col]) == top}
    out = "".join(f"<p class=warn>{html.escape(line)}.</p>" for line in narrow_lines(result))
    out += _html_table(rows[:SHOWN_CLASSES], best)
    if len(rows) > SHOWN_CLASSES:
        rest = {(i - SHOWN_CLASSES, col) for i, col in best if i >= SHOWN_CLASSES}
        out += (
            f"<details><summary>{len(rows) - SHOWN_CLASSES} more classes</summary>"
            f"{_html_table(rows[SHOWN_CLASSES:], rest)}</details>"
        )
    return out


def pairs_html(result: CompareResult) -> str:
    """Each run's most-confused pairs (logistic), the best run's open and the others folded."""
    best, out = best_run(result), ""
    for run in result.runs:
        pairs = pair_rows(result, run)
        table = _html_table(pairs, css="pairs") if pairs else "<p>No test row was misclassified.</p>"
        out += (
            f"<details{' open' if run is best else ''}><summary>Most-confused pairs — "
            f"{html.escape(run.model)} · {html.escape(run.pooling)} (logistic regression)</summary>"
            f"{table}</details>"
        )
    return out


def write_report(result: CompareResult, paths: ReportPaths) -> dict[str, str]:
    """report.md, report.html and report.json in ``paths``; also kept in ``result.report``."""
    paths.root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(paths.markdown, render_markdown(result, paths.root))
    write_text_atomic(paths.html, render_html(result, paths.root))
    write_text_atomic(paths.json, json.dumps(result.payload(), indent=2, ensure_ascii=False, default=str))
    result.report = {"markdown": str(paths.markdown), "html": str(paths.html), "json": str(paths.json)}
    return result.report
