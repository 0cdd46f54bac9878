"""Tables for the report, as Markdown and as HTML, from rows of text cells."""

from __future__ import annotations

import html


def markdown_table(rows: list[dict[str, str]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row[h] for h in header) + " |" for row in rows]
    return "\n".join(lines)


def html_table(rows: list[dict[str, str]], best: set[tuple[int, str]] | None = None, css: str = "") -> str:
    esc, best = html.escape, best or set()
    head = "".join(f"<th>{esc(h)}</th>" for h in rows[0])
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=best' if (i, k) in best else ''}>{esc(v)}</td>" for k, v in row.items())
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table{f' class={css}' if css else ''}><tr>{head}</tr>{body}</table>"
