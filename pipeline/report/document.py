"""Render a comparison as report.md, a self-contained report.html (images inlined) and report.json."""

from __future__ import annotations

import base64
import html
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.atomic import write_text_atomic
from pipeline.core.layout import ReportPaths
from pipeline.render.tables import markdown_table
from pipeline.report.class_tables import confused_pairs_html, per_class_html, per_class_markdown
from pipeline.report.pair_tables import pairs_html, pairs_markdown
from pipeline.report.results import BASELINE_NAMES, CompareResult, run_name
from pipeline.report.study_sections import Section, sections_html, sections_markdown, study_sections
from pipeline.stages.probe.data import NO_SPLIT
from pipeline.stages.probe.estimators import choice_words

LR_HEAD, KNN_HEAD = "LR macro-F1 [95% CI]", "kNN macro-F1 [95% CI]"


def _ci(row: pd.Series, prefix: str) -> str:
    return f"{row[f'{prefix}_macro_f1']:.3f} [{row[f'{prefix}_ci_low']:.3f}, {row[f'{prefix}_ci_high']:.3f}]"


def _params(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n else "?"


def headline_rows(result: CompareResult) -> tuple[list[dict[str, str]], set[tuple[int, str]]]:
    """Table cells as text (runs, then the baselines), and which (row, column) cells hold the best
    figure of their column."""
    table = result.table()
    layered = any(run.layer != "last" for run in result.runs)
    rows, best = [], set()
    for _, row in table.iterrows():
        rows.append(
            {
                "model": row["model"],
                "pooling": row["pooling"],
                **({"layer": row["layer"]} if layered else {}),
                "dim": str(row["dim"]),
                "params": _params(int(row["parameters"])),
                "texts/s": f"{row['texts_per_s']:,.0f}" if row["texts_per_s"] else "?",
                LR_HEAD: _ci(row, "lr"),
                "LR C": row["lr_C_how"],
                "LR acc": f"{row['lr_accuracy']:.3f}",
                KNN_HEAD: _ci(row, "knn"),
                "kNN k": row["knn_k_how"],
                "kNN acc": f"{row['knn_accuracy']:.3f}",
            }
        )
    scores = {LR_HEAD: list(table["lr_macro_f1"]), KNN_HEAD: list(table["knn_macro_f1"])}
    for name, base in result.baselines.items():
        ci = base["macro_f1_ci"]
        choice = base.get("C")
        rows.append(
            {
                **dict.fromkeys(rows[0], "—"),
                "model": f"baseline: {BASELINE_NAMES[name]}",
                LR_HEAD: f"{base['macro_f1']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]",
                "LR C": choice_words(choice) if choice else "—",
                "LR acc": f"{base['accuracy']:.3f}",
            }
        )
        scores[LR_HEAD].append(base["macro_f1"])
    for column, values in scores.items():
        best |= {(i, column) for i, value in enumerate(values) if value == max(values)}
    return rows, best


def _bold(rows: list[dict[str, str]], best: set[tuple[int, str]]) -> list[dict[str, str]]:
    return [{k: f"**{v}**" if (i, k) in best else v for k, v in row.items()} for i, row in enumerate(rows)]


def _context(result: CompareResult) -> dict[str, Any]:
    first = result.runs[0].probe
    return {
        "split": first["split"],
        "train": first["train_rows"],
        "test": first["test_rows"],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def context_sentence(result: CompareResult, ctx: dict[str, Any]) -> str:
    drawn = ctx["split"].startswith(NO_SPLIT)
    split = "a drawn split" if drawn else ctx["split"]
    warning = (
        f"Warning: {ctx['split']}; name the files *_train / *_test or ingest with SPLIT=FILE. "
        if drawn
        else ""
    )
    return warning + (
        f"{len(result.runs)} run{'s' * (len(result.runs) != 1)} on one corpus; probes trained on {split} "
        f"({ctx['train']:,} train / {ctx['test']:,} test rows), C and k chosen by cross-validation on the "
        "training rows unless fixed. "
        "Macro-F1 is the primary figure (as in SemEval-2018 Task 2 and TweetEval); intervals are 95% "
        "bootstrap over test rows. The baselines are trained and scored on the same rows."
    )


def render_markdown(result: CompareResult, out_dir: Path, sections: list[Section] | None = None) -> str:
    ctx = _context(result)
    sections = study_sections(result, out_dir) if sections is None else sections
    lines = [
        f"# encajes comparison — {result.workdir.name}",
        "",
        " ".join(result.opening()),
        "",
        context_sentence(result, ctx),
        "",
        markdown_table(_bold(*headline_rows(result))),
        "",
        *pairs_markdown(result),
        *sections_markdown(sections),
        *per_class_markdown(result),
        "## Maps",
        "",
    ]
    for run in result.headline:
        if run.plot:
            rel = os.path.relpath(run.plot["png"], out_dir)
            rel_html = os.path.relpath(run.plot["html"], out_dir)
            lines += [
                f"### {run_name(run)}",
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
img.study{max-width:100%}
figcaption{font-weight:600;margin:4px 0}.wide{grid-template-columns:1fr}
.best{font-weight:700;background:#eef7ee}.warn{color:#8a3b00;font-weight:600;margin:4px 0}
summary{cursor:pointer;color:#555;margin:8px 0}
.pairs td:nth-child(2),.pairs th:nth-child(2){text-align:left}
.lead{font-size:17px;background:#f6f8fa;border-left:4px solid #4e79a7;padding:8px 12px}"""


def render_html(result: CompareResult, out_dir: Path, sections: list[Section] | None = None) -> str:
    ctx = _context(result)
    sections = study_sections(result, out_dir) if sections is None else sections
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
        f"<figure><figcaption>{esc(run_name(r))} — "
        f'<a href="{esc(os.path.relpath(r.plot["html"], out_dir))}">interactive</a></figcaption>'
        f"{_img(r.plot['png'])}</figure>"
        for r in result.headline
        if r.plot
    )
    confusions = "".join(
        f"<figure><figcaption>{esc(run_name(r))}</figcaption>{_img(r.probe['confusion_png'])}</figure>"
        for r in result.headline
    ) + confused_pairs_html(result)
    verdict = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", "<br>".join(esc(v) for v in result.opening()))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>encajes comparison — {esc(result.workdir.name)}</title><style>{CSS}</style></head><body>
<h1>encajes comparison — {esc(result.workdir.name)}</h1>
<p class=lead>{verdict}</p>
<p>{esc(context_sentence(result, ctx))} The highest figure of each column is highlighted.</p>
<table><tr>{head}</tr>{body}</table>
{pairs_html(result)}
{sections_html(sections)}
<h2>UMAP maps</h2><div class="grid">{maps or "<p>(plots were turned off)</p>"}</div>
<h2>Per-class F1 (logistic regression)</h2>{per_class_html(result)}
<h2>Confusion matrices</h2><div class="grid wide">{confusions}</div>
<p><small>Generated {ctx["created"]} by encajes in {result.seconds:.1f}s.</small></p>
</body></html>"""


def write_report(result: CompareResult, paths: ReportPaths) -> dict[str, str]:
    """report.md, report.html and report.json in ``paths``; also kept in ``result.report``."""
    paths.root.mkdir(parents=True, exist_ok=True)
    sections = study_sections(result, paths.root)  # figures drawn once, for both documents
    write_text_atomic(paths.markdown, render_markdown(result, paths.root, sections))
    write_text_atomic(paths.html, render_html(result, paths.root, sections))
    write_text_atomic(paths.json, json.dumps(result.payload(), indent=2, ensure_ascii=False, default=str))
    result.report = {"markdown": str(paths.markdown), "html": str(paths.html), "json": str(paths.json)}
    return result.report
