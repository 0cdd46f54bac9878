"""Map page check: umap.html (and optionally the serve page's map) driven in a real headless Chromium.

Builds a 100,000-point umap.html from synthetic data (write_umap_html directly: 30 labels, a categorical
``lang``, a time ``created_at`` and an integer ``followers`` field, texts with commas, quotes and line
breaks), then checks in the browser: colouring by a category and by a time (legend ticks as dates); a
lasso drawn with mouse events selects exactly the points inside the polygon as matplotlib computes it
from the page's data (the page's polygon, and the mouse path mapped from screen to data coordinates);
the CSV download holds those rows with their texts and fields; a box of about 10,000 points is listed
within 500 ms (performance.now in the page, up to the next painted frame); the URL's hash restores the
colouring and the selection in a fresh page; no console errors and no request to any host.

With --serve it also builds a small workdir (data/sample_tweets.csv: ingest, embed minilm, plot), starts
`encajes serve` and checks that a click on a map point lists that tweet's neighbours and that a search
within a lasso selection only returns selected rows.
Prints a JSON summary; saves eval/out/map_page.png (and map_serve.png).

    .venv/bin/python eval/check_map_page.py [--points 100000] [--serve]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from matplotlib.path import Path as Polygon
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "eval" / "out"
sys.path.insert(0, str(ROOT))
LIST_BUDGET_MS = 500
LOCAL = ("file:", "data:", "blob:", "about:")


def synthetic(n: int, seed: int = 0) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """Clusters of points, each with a leading label, and kept fields with gaps."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, (12, 2))
    cluster = rng.integers(0, 12, n)
    xy = centres[cluster] + rng.normal(scale=1.2, size=(n, 2))
    labels = np.where(rng.random(n) < 0.7, cluster, rng.integers(0, 30, n))
    frame = pd.DataFrame(
        {"row_id": np.arange(n) * 2 + 5, "x": xy[:, 0], "y": xy[:, 1], "label": labels.astype(str)}
    )
    texts = [f'tweet {i}, with "quotes"' + ("\nand a second line" if i % 7 == 0 else "") for i in range(n)]
    langs = np.array(["es", "en", "pt", "fr", "ca", "it", "de", "gl", "eu", None], dtype=object)
    stamps = pd.to_datetime(1.6e9 + rng.integers(0, 365 * 86400, n), unit="s", utc=True)
    fields = pd.DataFrame(
        {
            "lang": langs[np.minimum(rng.geometric(0.35, n) - 1, 9)],
            "created_at": stamps.where(rng.random(n) > 0.05),
            "followers": pd.array(np.where(rng.random(n) > 0.1, rng.integers(0, 5000, n), -1), dtype="Int64"),
        }
    )
    fields.loc[fields["followers"] < 0, "followers"] = pd.NA
    return frame, texts, fields


def watch(page: Page, errors: list[str], hosts: set[str]) -> None:
    page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("request", lambda r: not r.url.startswith(LOCAL) and hosts.add(urlsplit(r.url).netloc or r.url))


def page_points(path: Path) -> dict[str, Any]:
    page = path.read_text(encoding="utf-8")
    return json.loads(
        re.search(r'type="application/json">(.*?)</script>', page, re.S)[1].replace("<\\/", "</")
    )


def to_screen(view: dict[str, float], box: dict[str, float], x: float, y: float) -> tuple[float, float]:
    return box["x"] + view["W"] / 2 + (x - view["cx"]) * view["s"], box["y"] + view["H"] / 2 - (
        y - view["cy"]
    ) * view["s"]


def to_data(view: dict[str, float], box: dict[str, float], sx: float, sy: float) -> tuple[float, float]:
    return view["cx"] + (sx - box["x"] - view["W"] / 2) / view["s"], view["cy"] - (
        sy - box["y"] - view["H"] / 2
    ) / view["s"]


def polygon(points: Any) -> Polygon:
    """A closed polygon through ``points`` (matplotlib drops the vertex a CLOSEPOLY code sits on)."""
    points = np.asarray(points, dtype=float)
    return Polygon(np.vstack([points, points[:1]]), closed=True)


def drag(page: Page, path: list[tuple[float, float]], shift: bool = False, steps: int = 1) -> None:
    """Mouse down at the first point, through the others, up at the last (the lasso closes itself);
    ``steps`` > 1 adds moves between them, at whole pixels off the straight line."""
    if shift:
        page.keyboard.down("Shift")
    page.mouse.move(*path[0])
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")


def state(page: Page) -> dict[str, Any]:
    return page.evaluate("() => window.encajesMap.state()")


def selected(page: Page) -> list[int]:
    return page.evaluate("() => Array.from(window.encajesMap.selected())")


def check_lasso(page: Page, data: dict[str, Any], canvas: str) -> dict[str, Any]:
    """A pentagon lasso with the mouse: the page's selection against matplotlib's, two ways."""
    view, box = state(page)["view"], page.locator(canvas).bounding_box()
    xy = np.column_stack([data["x"], data["y"]])
    cx, cy = to_screen(view, box, float(np.median(xy[:, 0])), float(np.median(xy[:, 1])))
    radius = min(view["W"], view["H"]) * 0.22
    angles = np.linspace(0, 2 * np.pi, 25)[:-1] + 0.3  # a star; whole pixels: events carry no fractions
    reach = radius * np.where(np.arange(24) % 2, 0.55, 1.0)
    corners = [
        (round(cx + r * np.cos(a)), round(cy + r * np.sin(a))) for a, r in zip(angles, reach, strict=True)
    ]
    page.click("button[data-mode=lasso]")
    drag(page, [*corners, corners[0]])
    page.wait_for_function(
        "() => window.encajesMap.state().kind === 'lasso' && window.encajesMap.timings.painted_ms"
    )
    got, timings = selected(page), page.evaluate("() => ({...window.encajesMap.timings})")
    poly = state(page)["poly"]
    by_page_polygon = np.flatnonzero(polygon(poly).contains_points(xy)).tolist()
    mapped = polygon([to_data(view, box, x, y) for x, y in corners])
    by_mouse_polygon = set(np.flatnonzero(mapped.contains_points(xy)).tolist())
    assert got == by_page_polygon, (len(got), len(by_page_polygon))
    differ = len(by_mouse_polygon.symmetric_difference(got))
    assert differ <= max(2, len(got) // 1000), f"{differ} points differ from the screen-mapped lasso"
    return {
        "lasso_selected": len(got),
        "lasso_vertices": len(poly),
        "lasso_vs_screen_mapped_polygon": differ,
        "lasso_select_ms": round(timings["select_ms"], 1),
        "lasso_listed_and_painted_ms": round(timings["painted_ms"], 1),
    }


def check_csv(page: Page, data: dict[str, Any], fields: pd.DataFrame, rows: list[int]) -> dict[str, Any]:
    """The CSV download: one line per selected point, texts and fields as the data hold them."""
    with page.expect_download() as info:
        page.click(".em-csv")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    table = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [int(r["row_id"]) for r in table] == [data["row_id"][i] for i in rows]
    assert [r["text"] for r in table] == [data["text"][i] for i in rows]
    assert [r["label"] for r in table] == [data["label_values"][data["label"][i]] for i in rows]
    langs = [fields["lang"].iloc[i] for i in rows]
    assert [r["lang"] for r in table] == ["" if v is None or pd.isna(v) else v for v in langs]
    stamps = [fields["created_at"].iloc[i] for i in rows]
    expected = ["" if pd.isna(s) else s.strftime("%Y-%m-%dT%H:%M:%SZ") for s in stamps]
    assert [r["created_at"] for r in table] == expected
    assert [r["followers"] for r in table] == [
        "" if pd.isna(fields["followers"].iloc[i]) else str(fields["followers"].iloc[i]) for i in rows
    ]
    return {
        "csv_rows": len(table),
        "csv_bytes": len(text.encode("utf-8")),
        "csv_multiline_texts": sum("\n" in r["text"] for r in table),
    }


def check_listing(page: Page, data: dict[str, Any], canvas: str) -> dict[str, Any]:
    """A box holding about 10,000 points, dragged with the mouse: how long until it is listed."""
    x, y = np.asarray(data["x"]), np.asarray(data["y"])
    order = np.sort(x)
    want = min(10_000, len(x) // 5)
    x0, x1 = order[len(x) // 2], order[len(x) // 2 + want]
    y0, y1 = float(np.quantile(y, 0.01)), float(np.quantile(y, 0.99))
    page.dblclick(canvas)  # the whole map
    page.wait_for_timeout(300)
    view, box = state(page)["view"], page.locator(canvas).bounding_box()
    page.click("button[data-mode=box]")
    page.evaluate("() => { delete window.encajesMap.timings.painted_ms; }")
    drag(page, [to_screen(view, box, x0, y0), to_screen(view, box, x1, y1)])
    page.wait_for_function(
        "() => window.encajesMap.timings.painted_ms !== undefined && window.encajesMap.state().kind === 'box'"
    )
    timings = page.evaluate("() => ({...window.encajesMap.timings})")
    shown = page.locator(".em-row").count()
    last = page.evaluate("""async () => {
      const s = document.querySelector('.em-scroll'), t0 = performance.now();
      s.scrollTop = s.scrollHeight;
      await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
      const rows = [...document.querySelectorAll('.em-row')].map((r) => Number(r.dataset.row));
      return {ms: performance.now() - t0, last: Math.max(...rows)};
    }""")
    rows = selected(page)
    assert last["last"] == data["row_id"][rows[-1]], (last, rows[-1])
    assert 0.9 * want <= timings["selected"] <= 1.1 * want and shown < 200, (timings, shown)
    assert timings["painted_ms"] <= LIST_BUDGET_MS, timings
    assert page.inner_text(".em-selcount").startswith(f"{timings['selected']:,} selected")
    return {
        "box_selected": timings["selected"],
        "box_select_ms": round(timings["select_ms"], 1),
        "box_listed_ms": round(timings["list_ms"], 1),
        "box_listed_and_painted_ms": round(timings["painted_ms"], 1),
        "rows_in_the_dom": shown,
        "scroll_to_end_ms": round(last["ms"], 1),
    }


def check_colours(page: Page) -> dict[str, Any]:
    page.select_option(".em-colour", "created_at")
    ticks = page.inner_text(".em-ticks")
    assert len(re.findall(r"\d{4}-\d\d-\d\d", ticks)) == 3, ticks
    page.select_option(".em-colour", "lang")
    legend = page.inner_text("#legend")
    assert "es (" in legend and "missing (" in legend, legend
    return {"time_ticks": ticks.split("\n"), "lang_legend_entries": legend.count("(")}


def check_umap_page(points: int, browser: Any) -> dict[str, Any]:
    frame, texts, fields = synthetic(points)
    target = OUT / "map_page" / "umap.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    from pipeline.render.umap_page import write_umap_html

    write_umap_html(frame, texts, "synthetic map", target, fields=fields, top=10)
    data = page_points(target)
    errors: list[str] = []
    hosts: set[str] = set()
    page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    watch(page, errors, hosts)
    page.goto(target.as_uri())
    page.wait_for_function("() => window.encajesMap && document.querySelector('.em-count')")
    summary: dict[str, Any] = {"points": points, "page_mb": round(target.stat().st_size / 2**20, 1)}
    summary.update(check_colours(page))
    summary.update(check_lasso(page, data, "#c"))
    rows = selected(page)
    summary.update(check_csv(page, data, fields, rows))
    page.wait_for_timeout(400)  # the hash follows a moment later
    url = page.evaluate("location.href")
    assert "color=lang" in url and "lasso=" in url, url
    again = browser.new_page(viewport={"width": 1400, "height": 900})
    watch(again, errors, hosts)
    again.goto(url)
    again.wait_for_function("() => window.encajesMap && window.encajesMap.state().kind === 'lasso'")
    assert state(again)["colour"] == "lang" and selected(again) == rows
    again.close()
    summary["hash_restores_selection"] = True
    summary["hash_chars"] = len(urlsplit(url).fragment)
    summary.update(check_listing(page, data, "#c"))
    page.screenshot(path=OUT / "map_page.png")
    summary.update({"errors": errors, "foreign_hosts": sorted(hosts)})
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--serve", action="store_true", help="Also check the serve page's map.")
    parser.add_argument("--workdir", type=Path, help="The serve check's workdir (default: a temp folder).")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(headless=True, executable_path=shutil.which("chromium"))
        try:
            summary = {"umap_html": check_umap_page(args.points, browser)}
            if args.serve:
                sys.path.insert(0, str(ROOT / "eval"))
                from check_map_serve import check_serve_map

                workdir = args.workdir or Path(tempfile.mkdtemp(prefix="encajes-map-")) / "work"
                summary["serve"] = check_serve_map(browser, workdir)
        finally:
            browser.close()
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    for part in summary.values():
        assert not part.get("errors"), part.get("errors")
        assert not part.get("foreign_hosts"), part.get("foreign_hosts")


if __name__ == "__main__":
    main()
