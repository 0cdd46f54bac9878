"""Report page check: a comparison's report.html opened in a real headless Chromium.

Checks that every figure is inlined and drawn (an image that failed to decode has no natural size), that
the figures are legible (drawn at least 600 px wide in a 1400 px window, with their native resolution
at least that), that the opening paragraph names inner CV's layer and the learning-curve crossover, that
the sections are there, and that the page makes no request to another host and logs no error. Saves a
full-page screenshot to eval/out/report_page.png and prints a JSON summary. Needs Debian's chromium and
`pip install playwright` (no `playwright install`).

    .venv/bin/python eval/check_report_page.py W/report/report.html
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parents[1] / "eval" / "out"
SECTIONS = (
    "Hidden layers",
    "Learning curves",
    "Near-duplicate leakage",
    "Embeddings + TF-IDF",
    "Quality against cost",
)
CROSSOVER = re.compile(r"beats TF-IDF|TF-IDF beats|indistinguishable|No crossover|TF-IDF is ahead")
IMAGES = """() => Array.from(document.images).map(i => ({alt: i.alt, natural: i.naturalWidth,
  height: i.naturalHeight, shown: Math.round(i.getBoundingClientRect().width)}))"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("report", type=Path)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    errors, foreign = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(headless=True, executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: foreign.append(r.url) if r.url.startswith("http") else None)
        page.goto(args.report.resolve().as_uri())
        page.wait_for_load_state("load")
        lead = page.inner_text("p.lead")
        headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
        images = page.evaluate(IMAGES)
        page.screenshot(path=str(OUT / "report_page.png"), full_page=True)
        browser.close()
    study = [i for i in images if i["alt"] in SECTIONS]
    checks = {
        "images_drawn": all(i["natural"] > 0 for i in images),
        "study_figures": sorted(i["alt"] for i in study),
        "study_figures_legible": all(i["shown"] >= 600 and i["natural"] >= 600 for i in study),
        "lead_names_best_layer": "inner CV picks" in lead,
        "lead_states_crossover": bool(CROSSOVER.search(lead)),
        "sections": [s for s in SECTIONS if s in headings],
        "console_errors": errors,
        "requests_to_other_hosts": foreign,
    }
    ok = (
        checks["images_drawn"]
        and checks["study_figures_legible"]
        and checks["lead_names_best_layer"]
        and checks["lead_states_crossover"]
        and len(checks["sections"]) == len(SECTIONS)
        and not errors
        and not foreign
    )
    print(json.dumps({"ok": ok, **checks, "images": images, "lead": lead}, indent=2, ensure_ascii=False))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
