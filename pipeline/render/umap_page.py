"""``umap.html``: one self-contained page (no network) with a canvas scatter of a run's map; hover a point
to read its tweet, click a label to hide it, scroll to zoom."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.atomic import write_atomic
from pipeline.render.figures import display_label, label_names
from pipeline.render.map_style import OTHER_COLOR, map_groups, map_view, outside_note

HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#plot{flex:1;position:relative}canvas{width:100%;height:100%;display:block}
#side{width:320px;overflow:auto;padding:12px;border-left:1px solid #ddd}
#tip{position:absolute;pointer-events:none;background:#fff;border:1px solid #999;border-radius:4px;
padding:6px 8px;max-width:360px;box-shadow:0 2px 6px #0002;display:none;white-space:pre-wrap}
.item{cursor:pointer;padding:3px 4px;border-radius:3px;user-select:none;line-height:1.35}
.item:hover{background:#eee}.off{opacity:.35}.note{color:#555;margin-top:6px}
.sw{display:inline-block;width:11px;height:11px;border-radius:6px;margin-right:7px;vertical-align:-1px}
.dia{display:inline-block;width:8px;height:8px;border:1px solid #333;transform:rotate(45deg);
margin:0 8px 0 2px}
h1{font-size:15px;margin:0 0 8px}small{color:#666;display:block;margin-bottom:8px}
h2{font-size:13px;margin:8px 0 4px}
</style></head><body>
<div id="plot"><canvas id="c"></canvas><div id="tip"></div></div>
<div id="side"><h1>__TITLE__</h1><small>__SAMPLED__Hover a point to read the tweet; click a label to hide it.
Scroll to zoom, drag to pan, double-click to reset.</small><h2 id="head"></h2><div id="legend"></div></div>
<script id="data" type="application/json">__DATA__</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent), B = D.view;
const cv = document.getElementById('c'), ctx = cv.getContext('2d'), tip = document.getElementById('tip');
const n = D.x.length, hidden = new Set(), pad = 14, dpr = window.devicePixelRatio || 1;
let W, H, cx, cy, s, home = true, clamp = true;  // view: centre (cx, cy), pixels per unit s
const grp = (i) => D.group[D.label[i]], grey = (i) => D.groups[grp(i)].other;
const out = (i) => D.x[i] < B.x0 || D.x[i] > B.x1 || D.y[i] < B.y0 || D.y[i] > B.y1;
const px = (i) => (clamp ? Math.min(Math.max(D.x[i], B.x0), B.x1) : D.x[i]);
const py = (i) => (clamp ? Math.min(Math.max(D.y[i], B.y0), B.y1) : D.y[i]);
function box() {
  if (clamp) return B;
  let a = Infinity, b = -Infinity, c = Infinity, d = -Infinity;
  for (let i = 0; i < n; i++) {
    a = Math.min(a, D.x[i]); b = Math.max(b, D.x[i]); c = Math.min(c, D.y[i]); d = Math.max(d, D.y[i]);
  }
  return {x0: a, x1: b, y0: c, y1: d};
}
function fit() {  // one scale for both axes: the map keeps its shape
  const b = box();
  cx = (b.x0 + b.x1) / 2; cy = (b.y0 + b.y1) / 2;
  s = Math.min((W - 2 * pad) / (b.x1 - b.x0 || 1), (H - 2 * pad) / (b.y1 - b.y0 || 1));
}
const sx = (x) => W / 2 + (x - cx) * s, sy = (y) => H / 2 - (y - cy) * s;
const shuffled = [...Array(n).keys()].sort(() => Math.random() - 0.5);
const order = shuffled.filter(grey).concat(shuffled.filter((i) => !grey(i)));  // grey underneath
const r = Math.max(1.5, Math.min(6, Math.sqrt(40000 / n)));
function diamond(X, Y, k) {
  ctx.beginPath(); ctx.moveTo(X, Y - k); ctx.lineTo(X + k, Y); ctx.lineTo(X, Y + k); ctx.lineTo(X - k, Y);
  ctx.closePath(); ctx.fill(); ctx.stroke();
}
function draw() {
  W = cv.clientWidth; H = cv.clientHeight; cv.width = W * dpr; cv.height = H * dpr;
  if (home) fit();
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, W, H);
  const edge = [];
  for (const i of order) {
    if (hidden.has(grp(i))) continue;
    if (clamp && out(i)) { edge.push(i); continue; }
    ctx.globalAlpha = grey(i) ? 0.8 : n > 5000 ? 0.55 : 0.85;
    ctx.fillStyle = D.colors[D.label[i]];
    ctx.fillRect(sx(D.x[i]) - r / 2, sy(D.y[i]) - r / 2, r, r);
  }
  ctx.globalAlpha = 1;
  if (!D.outside || !clamp) return;
  ctx.strokeStyle = '#ccc'; ctx.setLineDash([4, 4]);  // the edge the far-off points are drawn on
  ctx.strokeRect(sx(B.x0), sy(B.y1), (B.x1 - B.x0) * s, (B.y1 - B.y0) * s);
  ctx.setLineDash([]); ctx.strokeStyle = '#333'; ctx.lineWidth = 0.8;
  for (const i of edge) { ctx.fillStyle = D.colors[D.label[i]]; diamond(sx(px(i)), sy(py(i)), r / 2 + 2.5); }
}
function item(html, text, title, on, click) {
  const d = document.createElement('div');
  d.className = 'item' + (on ? '' : ' off'); d.innerHTML = html;
  d.appendChild(document.createTextNode(text));
  if (title) d.title = title;
  d.onclick = click;
  return d;
}
function legend() {
  const el = document.getElementById('legend');
  el.innerHTML = ''; document.getElementById('head').textContent = D.head;
  D.groups.forEach((g, k) => el.appendChild(item(
    '<span class="sw" style="background:' + g.color + '"></span>', g.name, g.title, !hidden.has(k),
    () => { hidden.has(k) ? hidden.delete(k) : hidden.add(k); legend(); draw(); })));
  if (!D.outside) return;
  const t = D.note + (clamp ? ' (click to show where they lie)' : ' (click to draw them at the edge again)');
  const d = item('<span class="dia"></span>', t, '', true, () => {
    clamp = !clamp; home = true; legend(); draw();
  });
  d.className += ' note'; el.appendChild(d);
}
function nearest(mx, my) {
  let best = -1, bd = 64;
  for (const i of order) {
    if (hidden.has(grp(i))) continue;
    const dx = sx(px(i)) - mx, dy = sy(py(i)) - my, dd = dx * dx + dy * dy;
    if (dd <= bd) { bd = dd; best = i; }
  }
  return best;
}
let drag = null;
cv.onmousemove = (e) => {
  const b = cv.getBoundingClientRect(), mx = e.clientX - b.left, my = e.clientY - b.top;
  if (drag) {
    cx -= (mx - drag.x) / s; cy += (my - drag.y) / s; drag = {x: mx, y: my}; home = false; draw(); return;
  }
  const i = nearest(mx, my);
  if (i < 0) { tip.style.display = 'none'; return; }
  tip.style.display = 'block';
  const where = clamp && out(i) ? '  ·  outside the view' : '';
  tip.textContent = D.labels[D.label[i]] + '  ·  row ' + D.row[i] + where + '\\n' + D.text[i];
  tip.style.left = Math.min(mx + 12, W - 370) + 'px'; tip.style.top = (my + 12) + 'px';
};
cv.onmousedown = (e) => {
  const b = cv.getBoundingClientRect(); drag = {x: e.clientX - b.left, y: e.clientY - b.top};
};
window.onmouseup = () => { drag = null; };
cv.onmouseleave = () => { tip.style.display = 'none'; };
cv.ondblclick = () => { home = true; draw(); };
cv.onwheel = (e) => {  // zoom about the pointer
  e.preventDefault();
  const b = cv.getBoundingClientRect(), mx = e.clientX - b.left - W / 2, my = e.clientY - b.top - H / 2;
  const X = cx + mx / s, Y = cy - my / s;
  s *= e.deltaY > 0 ? 1 / 1.2 : 1.2; cx = X - mx / s; cy = Y + my / s; home = false; draw();
};
legend(); draw(); window.onresize = draw;
</script></body></html>
"""


OTHER_NAMES_LISTED = 200  # the grey group's tooltip names this many of its labels
HTML_MAX_POINTS = 100_000  # a browser hovers 100k points smoothly; millions make a page of gigabytes


def html_rows(rows: int, limit: int = HTML_MAX_POINTS, seed: int = 0) -> np.ndarray:
    """Positions the HTML map shows: all rows, or a sorted uniform random ``limit`` of them."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))


def write_umap_html(
    frame: pd.DataFrame,
    texts: list[str],
    title: str,
    target: Path,
    counts: pd.Series | None = None,
    names: Mapping[str, str] | None = None,
    top: int = 10,
) -> None:
    """One self-contained HTML file (no network): canvas scatter, hover shows the tweet and its label.
    ``frame``/``texts`` may be a sample of the map; ``counts`` (rows per label) are then the whole map's."""
    labels = label_names(frame)
    data = map_data(frame, labels.value_counts() if counts is None else counts, top, names)
    code = data.pop("code")
    data["label"] = [code[label] for label in labels]
    data["row"] = frame["row_id"].astype(int).tolist()
    data["text"] = [str(text) for text in texts]
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;")
    sampled = (
        f"Showing a random {len(frame):,} of {data['total']:,} tweets (umap.parquet and umap.png hold them "
        "all; label counts are the whole corpus'). "
        if len(frame) < data["total"]
        else ""
    )
    page = (
        HTML_TEMPLATE.replace("__TITLE__", safe_title)
        .replace("__SAMPLED__", sampled)
        .replace("__DATA__", payload)
    )
    write_atomic(target, lambda tmp: tmp.write_text(page, encoding="utf-8"))


def map_data(
    frame: pd.DataFrame, counts: pd.Series, top: int, names: Mapping[str, str] | None
) -> dict[str, Any]:
    """The page's picture: positions, the view they open in, and legend groups (the ``top`` labels, then
    one grey group of the rest) that a click hides; ``code`` numbers each label for the points."""
    groups = map_groups(counts, top)
    view = map_view(frame["x"].to_numpy(), frame["y"].to_numpy())
    shown = [display_label(label, for_html=True, names=names) for label in groups.order]
    legend = [
        {"name": f"{name} ({groups.counts[label]:,})", "color": groups.colors[label], "other": False}
        for label, name in zip(groups.coloured, shown, strict=False)
    ]
    if groups.other:
        rest = shown[len(groups.coloured) :]
        listed = ", ".join(rest[:OTHER_NAMES_LISTED]) + (", …" if len(rest) > OTHER_NAMES_LISTED else "")
        legend.append({"name": groups.other_legend(), "color": OTHER_COLOR, "other": True, "title": listed})
    return {
        "x": np.round(frame["x"].to_numpy(), 4).tolist(),
        "y": np.round(frame["y"].to_numpy(), 4).tolist(),
        "code": {label: i for i, label in enumerate(groups.order)},
        "labels": shown,
        "colors": [groups.colors[label] for label in groups.order],
        "counts": [groups.counts[label] for label in groups.order],
        "group": [min(i, len(groups.coloured)) for i in range(len(groups.order))],
        "groups": legend,
        "head": f"{len(groups.coloured)} most frequent of {len(groups.order):,} labels"
        if groups.other
        else "label",
        "view": view.as_dict(),
        "outside": view.n_outside,
        "note": outside_note(view.n_outside),
        "total": int(sum(groups.counts.values())),
    }
