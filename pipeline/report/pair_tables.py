"""The report's significance section: every pair of systems, per probe, with the paired-bootstrap
difference of macro-F1, its 95% interval and the Holm-adjusted p-value."""

from __future__ import annotations

import html

from pipeline.render.tables import html_table, markdown_table
from pipeline.report.pairs import resolution_problem
from pipeline.report.results import PROBES, CompareResult

INTRO = (
    "Each row tests one pair on the same test rows: the difference of macro-F1 (higher minus lower), its "
    "95% paired-bootstrap interval (not adjusted), and the two-sided p-value, also adjusted for the number "
    "of pairs (Holm). Only an adjusted p < 0.05 counts as a real difference."
)


def _p(value: float, resamples: int) -> str:
    """A bootstrap p-value cannot go below 2/(B+1): say so rather than print the floor as a value."""
    floor = 2 / (resamples + 1)
    return f"≤ {floor:.3f}" if value <= floor * (1 + 1e-9) else f"{value:.3f}"


def pair_cells(result: CompareResult, probe: str) -> list[dict[str, str]]:
    return [
        {
            "higher": row["a"],
            "lower": row["b"],
            "difference": f"{row['difference']:+.3f}",
            "95% CI (unadjusted)": f"[{row['low']:+.3f}, {row['high']:+.3f}]",
            "p": _p(row["p_value"], row["resamples"]),
            "p (Holm)": f"{row['p_holm']:.3f}",
            "verdict": "significant" if row["significant"] else "indistinguishable",
        }
        for row in sorted(result.pairs.get(probe, []), key=lambda r: (r["p_holm"], -r["difference"]))
    ]


def pairs_markdown(result: CompareResult) -> list[str]:
    lines = ["## Every pair tested", "", INTRO, ""]
    for probe, name in PROBES.items():
        cells = pair_cells(result, probe)
        warning = resolution_problem(result.pairs.get(probe, []))
        lines += [f"### {name}", "", *([f"**{warning}**", ""] if warning else [])]
        lines += [markdown_table(cells) if cells else "Only one system: no pair.", ""]
    return lines


def pairs_html(result: CompareResult) -> str:
    out = f"<h2>Every pair tested</h2><p>{html.escape(INTRO)}</p>"
    for probe, name in PROBES.items():
        cells = pair_cells(result, probe)
        table = html_table(cells, css="pairs") if cells else "<p>Only one system: no pair.</p>"
        warning = resolution_problem(result.pairs.get(probe, []))
        note = f"<p class=warn>{html.escape(warning)}</p>" if warning else ""
        out += f"<h3>{html.escape(name)}</h3>{note}{table}"
    return out
