"""The report's significance section: every pair of systems, per probe, with the paired-bootstrap
difference of macro-F1, its 95% interval and the Holm-adjusted p-value."""

from __future__ import annotations

import html

from pipeline.comparison import PROBES, CompareResult
from pipeline.report_tables import html_table, markdown_table

INTRO = (
    "Each row tests one pair on the same test rows: the difference of macro-F1 (first minus second), its "
    "95% paired-bootstrap interval, and the two-sided p-value adjusted for the number of pairs (Holm). "
    "Adjusted p < 0.05 counts as a real difference."
)


def pair_cells(result: CompareResult, probe: str) -> list[dict[str, str]]:
    return [
        {
            "better": row["a"],
            "worse": row["b"],
            "difference": f"{row['difference']:+.3f}",
            "95% CI": f"[{row['low']:+.3f}, {row['high']:+.3f}]",
            "p": f"{row['p_value']:.3f}",
            "p (Holm)": f"{row['p_holm']:.3f}",
            "verdict": "significant" if row["significant"] else "indistinguishable",
        }
        for row in sorted(result.pairs.get(probe, []), key=lambda r: (r["p_holm"], -r["difference"]))
    ]


def pairs_markdown(result: CompareResult) -> list[str]:
    lines = ["## Every pair tested", "", INTRO, ""]
    for probe, name in PROBES.items():
        cells = pair_cells(result, probe)
        lines += [f"### {name}", "", markdown_table(cells) if cells else "Only one system: no pair.", ""]
    return lines


def pairs_html(result: CompareResult) -> str:
    out = f"<h2>Every pair tested</h2><p>{html.escape(INTRO)}</p>"
    for probe, name in PROBES.items():
        cells = pair_cells(result, probe)
        table = html_table(cells, css="pairs") if cells else "<p>Only one system: no pair.</p>"
        out += f"<h3>{html.escape(name)}</h3>{table}"
    return out
