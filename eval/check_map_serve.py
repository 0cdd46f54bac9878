"""The serve page's map, for eval/check_map_page.py --serve: a small workdir (sample tweets, minilm),
`encajes serve`, and in the browser: a click on a map point lists its neighbours, a lasso selection
lists its tweets (texts from GET /items) and exports them, and a search within the selection returns
selected rows only. Parts the server cannot answer yet are skipped with the reason."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from check_map_page import OUT, ROOT, drag, state, to_screen, watch
from check_serve_page import ENV, build


def start(workdir: Path, timeout_s: float = 180) -> tuple[subprocess.Popen[str], str]:
    head = [sys.executable, "-m", "cli"]
    server = subprocess.Popen([*head, "serve", "--workdir", str(workdir), "--port", "0"], cwd=ROOT, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(server.stderr or ()), daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        found = [
            m[1] for line in list(lines) if (m := re.search(r"serving on (http://127\.0\.0\.1:\d+)", line))
        ]
        if found and get(found[0] + "/health") == {"status": "ok"}:
            return server, found[0]
        time.sleep(0.3)
    server.terminate()
    raise RuntimeError("the server did not come up:\n" + "".join(lines))


def get(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)
    except (urllib.error.HTTPError, urllib.error.URLError, OSError) as error:
        return {"error": str(error)}


def click_neighbours(page: Any, points: dict[str, Any]) -> dict[str, Any]:
    """Click the point nearest the map's median: the neighbours of a point under the pointer are listed."""
    view, box = state(page)["view"], page.locator("#map").bounding_box()
    xy = np.column_stack([points["x"], points["y"]])
    centre = np.median(xy, axis=0)
    i = int(np.argmin(((xy - centre) ** 2).sum(axis=1)))
    sx, sy = (round(v) for v in to_screen(view, box, *xy[i]))
    screen = np.array([to_screen(view, box, x, y) for x, y in xy])
    near = {points["row_id"][k] for k in np.flatnonzero(((screen - (sx, sy)) ** 2).sum(axis=1) < 64)}
    page.mouse.click(sx, sy)
    page.wait_for_function(
        "() => /^\\d+ neighbours in \\d+ ms$/.test(document.getElementById('status').textContent)"
    )
    about = page.inner_text("#about")
    row = int(re.search(r"Neighbours of row (\d+)", about)[1])
    rows = [
        int(r)
        for r in page.eval_on_selector_all("#hits li[data-row]", "(els) => els.map((e) => e.dataset.row)")
    ]
    assert row in near and row not in rows and len(rows) >= 5, (row, near, rows)
    return {"clicked_row": row, "neighbours_listed": len(rows)}


def lasso_and_search(page: Any, url: str) -> dict[str, Any]:
    view, box = state(page)["view"], page.locator("#map").bounding_box()
    cx, cy, r = box["x"] + view["W"] / 2, box["y"] + view["H"] / 2, min(view["W"], view["H"]) * 0.3
    corners = [(round(cx + r * np.cos(a)), round(cy + r * np.sin(a))) for a in np.linspace(0, 2 * np.pi, 13)]
    drag(page, corners, shift=True)  # shift-drag: a lasso in the pan mode
    page.wait_for_function("() => window.encajesMap.state().kind === 'lasso'")
    chosen = set(page.evaluate("() => window.encajesMap.selectedRows()"))
    assert chosen and page.is_enabled("#inside"), len(chosen)
    page.wait_for_function(
        "() => !document.querySelector('.em-text') || document.querySelector('.em-text').textContent !== '…'"
    )
    with page.expect_download() as info:
        page.click(".em-csv")
    table = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"), newline="")))
    assert {int(t["row_id"]) for t in table} == chosen and all(t["text"] and t["id"] for t in table)
    page.wait_for_function("() => location.hash.includes('lasso=')", timeout=5000)  # the view, shareable
    out: dict[str, Any] = {
        "lasso_selected": len(chosen),
        "csv_rows": len(table),
        "hash": page.evaluate("location.hash")[:60],
    }
    probe = get(url + "/search", {"query": "playa", "k": 5, "filter": {"row_id": {"in": sorted(chosen)}}})
    if "results" not in probe:
        return {**out, "search_within": f"skipped: POST /search with a row_id filter answered {probe}"}
    page.check("#inside")
    page.fill("#q", "Qué ganas de ir a la playa")
    page.press("#q", "Enter")
    page.wait_for_function(
        "() => /results in \\d+ ms within/.test(document.getElementById('status').textContent)"
    )
    rows = {
        int(r)
        for r in page.eval_on_selector_all("#hits li[data-row]", "(els) => els.map((e) => e.dataset.row)")
    }
    assert rows and rows <= chosen, rows - chosen
    return {**out, "search_within_hits": len(rows)}


def check_serve_map(browser: Any, workdir: Path) -> dict[str, Any]:
    if not (workdir / "corpus.parquet").exists():
        build(workdir)
    server, url = start(workdir)
    errors: list[str] = []
    hosts: set[str] = set()
    try:
        points = get(url + "/map")
        assert "fields" in points and "label_values" in points, "GET /map lacks the map view's data"
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        watch(page, errors, hosts)
        page.goto(url + "/")
        page.wait_for_function(
            "() => /\\d tweets on the map/.test(document.getElementById('legend').textContent)"
        )
        summary: dict[str, Any] = {"points": len(points["x"])}
        hit = get(f"{url}/similar/{points['row_id'][0]}?k=3")
        if not hit.get("results") or "fields" not in hit["results"][0][0]:
            summary["click_neighbours"] = "skipped: GET /similar hits carry no fields yet"
        else:
            summary.update(click_neighbours(page, points))
        summary.update(lasso_and_search(page, url))
        page.screenshot(path=OUT / "map_serve.png", full_page=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    foreign = sorted(hosts - {urlsplit(url).netloc})
    return {**summary, "errors": errors, "foreign_hosts": foreign}
