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
from pipeline.comparison import CompareResult, test_sentences
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
    per_class = result.per_class_f1().rename(index=lambda label: display_label(label, for_html=True))
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
        "## Per-class F1 (logistic regression)",
        "",
        markdown_table(
            [
                {
                    "label": str(label),
                    "support": str(int(row["support"])),
                    **{col: f"{row[col]:.3f}" for col in per_class.columns[1:]},
                }
                for label, row in per_class.iterrows()
            ]
        ),
        "",
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
.best{font-weight:700;background:#eef7ee}"""


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
    per_class = result.per_class_f1()
    best_per_class = per_class.drop(columns="support").max(axis=1)  # ties all bold; zeros never
    pc_head = "<th>label</th><th>support</th>" + "".join(f"<th>{esc(c)}</th>" for c in per_class.columns[1:])
    pc_body = ""
    for label, row in per_class.iterrows():
        cells = "".join(
            f"<td{' class=best' if 0 < row[col] == best_per_class[label] else ''}>{row[col]:.3f}</td>"
            for col in per_class.columns[1:]
        )
        name = esc(display_label(label, for_html=True))
        pc_body += f"<tr><td>{name}</td><td>{int(row['support'])}</td>{cells}</tr>"
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
    )
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
<h2>Per-class F1 (logistic regression)</h2><table><tr>{pc_head}</tr>{pc_body}</table>
<h2>Confusion matrices</h2><div class="grid wide">{confusions}</div>
<p><small>Generated {ctx["created"]} by encajes in {result.seconds:.1f}s.</small></p>
</body></html>"""


def write_report(result: CompareResult, paths: ReportPaths) -> dict[str, str]:
    """report.md, report.html and report.json in ``paths``; also kept in ``result.report``."""
    paths.root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(paths.markdown, render_markdown(result, paths.root))
    write_text_atomic(paths.html, render_html(result, paths.root))
    write_text_atomic(paths.json, json.dumps(result.payload(), indent=2, ensure_ascii=False, default=str))
    result.report = {"markdown": str(paths.markdown), "html": str(paths.html), "json": str(paths.json)}
    return result.report
