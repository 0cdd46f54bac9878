"""Serve page check: `encajes serve`'s search page at `/`, driven in a real headless Chromium.

Builds a small workdir from data/sample_tweets.csv (ingest, embed minilm, plot), starts `encajes serve
--port 0`, then checks in the browser: the map loads and is drawn, a Spanish query lists scored hits and
highlights them in red on the map, clicking a hit shows its neighbours (never itself), an empty query is
refused on the page and the next query still works; no console errors, no failed requests and no request
to another host. Saves eval/out/serve_page.png and prints a JSON summary. Needs Debian's chromium
(`apt-get install chromium`) and `pip install playwright` (no `playwright install`).

    .venv/bin/python eval/check_serve_page.py [--workdir W] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "eval" / "out"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
QUERIES = ("Qué ganas de ir a la playa este verano", "Me muero de risa con este vídeo")
RESULTS = re.compile(r"^(\d+) results in (\d+) ms$")
PIXELS = """() => {
  const c = document.getElementById("map"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let ink = 0, red = 0;
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
    if (a > 0 && !(r > 240 && g > 240 && b > 240)) ink++;
    if (a > 230 && r > 170 && g < 90 && b < 100) red++;  // the hit marker, #d1242f, drawn opaque
  }
  return [ink, red];
}"""


def status_is(pattern: str, extra: str = "") -> str:
    """A JS predicate: the status line matches ``pattern`` (a JS regex literal), and ``extra`` holds."""
    return f"() => {pattern}.test(document.getElementById('status').textContent){extra}"


def encajes(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def build(workdir: Path) -> None:
    """A small workdir with one run (minilm, mean) and its UMAP map."""
    for args in (
        ("ingest", str(ROOT / "data" / "sample_tweets.csv")),
        ("embed", "--model", "minilm", "--no-progress"),
        ("plot", "--model", "minilm"),
    ):
        subprocess.run(encajes(*args, "--workdir", str(workdir)), cwd=ROOT, env=ENV, check=True,
                       capture_output=True, text=True, timeout=900)  # fmt: skip


def start_server(workdir: Path, timeout_s: float = 180) -> tuple[subprocess.Popen[str], str]:
    """Start `encajes serve --port 0`, read the URL it prints on stderr, wait for /health."""
    server = subprocess.Popen(encajes("serve", "--workdir", str(workdir), "--port", "0"), cwd=ROOT, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: list[str] = []
    assert server.stderr is not None
    threading.Thread(target=lambda: lines.extend(server.stderr or ()), daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        found = [m for line in list(lines) if (m := re.search(r"serving on (http://127\.0\.0\.1:\d+)", line))]
        if found:
            url = found[0][1]
            try:
                with urllib.request.urlopen(url + "/health", timeout=10) as response:
                    if json.load(response) == {"status": "ok"}:
                        return server, url
            except OSError:
                pass
        time.sleep(0.2)
    server.terminate()
    server.wait(timeout=30)
    raise RuntimeError("the server did not come up:\n" + "".join(lines))


def search(page: Page, query: str) -> tuple[int, int]:
    """Type ``query``, press Enter; wait for the hits; check each one; return (hits, ms)."""
    page.fill("#q", query)
    page.press("#q", "Enter")
    listed = " && document.querySelectorAll('#hits li').length >= 5"
    page.wait_for_function(status_is("/^\\d+ results in \\d+ ms$/", listed), timeout=60_000)
    status = RESULTS.match(page.text_content("#status") or "")
    assert status, page.text_content("#status")
    items = page.locator("#hits li[data-row]")
    assert items.count() == int(status[1]) >= 5, (items.count(), status[0])
    for i in range(items.count()):
        score = float(items.nth(i).locator(".score").inner_text())
        assert -1 <= score <= 1 and items.nth(i).locator(".text").inner_text().strip(), i
    return items.count(), int(status[2])


def check_page(page: Page, url: str) -> dict[str, Any]:
    page.goto(url + "/")
    page.wait_for_function("() => /\\d tweets/.test(document.getElementById('legend').textContent)")
    ink, red_before = page.evaluate(PIXELS)
    assert ink > 500, f"the map is blank ({ink} pixels drawn)"
    hits, ms = search(page, QUERIES[0])
    ink, red = page.evaluate(PIXELS)
    assert red > red_before + 40, f"hits not highlighted on the map ({red_before} -> {red} red pixels)"

    first = page.locator("#hits li[data-row]").first
    row, text = first.get_attribute("data-row"), first.locator(".text").inner_text()
    first.click()
    page.wait_for_selector("#about", state="visible")
    page.wait_for_function(status_is("/^\\d+ neighbours in \\d+ ms$/"))
    assert text in page.inner_text("#about") and f"row {row}" in page.inner_text("#about")
    neighbours = page.locator("#hits li[data-row]")
    rows = [neighbours.nth(i).get_attribute("data-row") for i in range(neighbours.count())]
    assert len(rows) >= 5 and row not in rows, (row, rows)

    page.fill("#q", "   ")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.getElementById('status').className === 'error'")
    refused = page.text_content("#status")
    again, _ = search(page, QUERIES[1])
    page.wait_for_selector("#about", state="hidden")
    return {"query": QUERIES[0], "hits": hits, "ms": ms, "non_white_pixels": ink, "red_pixels": red,
            "red_pixels_before_search": red_before, "clicked_row": int(row or -1), "neighbours": len(rows),
            "empty_query_status": refused, "hits_after_empty_query": again}  # fmt: skip


def browse(url: str) -> dict[str, Any]:
    """Open the page in headless Chromium, run the checks, record errors and every request's host."""
    errors: list[str] = []
    hosts: set[str] = set()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(headless=True, executable_path=shutil.which("chromium"))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(60_000)
            page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url} {r.failure}"))
            page.on("response", lambda r: r.status >= 400 and errors.append(f"HTTP {r.status}: {r.url}"))
            page.on("request", lambda r: r.url.startswith("http") and hosts.add(urlsplit(r.url).netloc))
            try:
                summary = check_page(page, url)
            except Exception:
                print("browser errors so far:", json.dumps(errors, ensure_ascii=False), file=sys.stderr)
                raise
            finally:  # on failure too: the page as it was
                OUT.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=OUT / "serve_page.png", full_page=True)
        finally:
            browser.close()
    foreign = sorted(hosts - {urlsplit(url).netloc})
    return {**summary, "errors": errors, "foreign_hosts": foreign, "screenshot": str(OUT / "serve_page.png")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, help="Where to build the workdir (default: a temp folder).")
    parser.add_argument("--keep", action="store_true", help="Keep the workdir this script made.")
    args = parser.parse_args()
    workdir: Path = args.workdir or Path(tempfile.mkdtemp(prefix="encajes-page-")) / "work"
    created = not workdir.exists()
    server = None
    try:
        build(workdir)
        server, url = start_server(workdir)
        summary = browse(url)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        if created and not args.keep:
            shutil.rmtree(workdir.parent if args.workdir is None else workdir, ignore_errors=True)
    if args.keep:
        summary["workdir"] = str(workdir)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    assert not summary["errors"], summary["errors"]
    assert not summary["foreign_hosts"], f"requests to other hosts: {summary['foreign_hosts']}"


if __name__ == "__main__":
    main()
