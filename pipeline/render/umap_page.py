"""``umap.html``: one self-contained page (no network) with a canvas scatter of a run's map; hover a point
to read its tweet, click a label to hide it, scroll to zoom."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.atomic import write_atomic
from pipeline.render.figures import display_label, label_names
from pipeline.render.map_fields import encode_fields
from pipeline.render.map_style import OTHER_COLOR, map_groups, map_view, outside_note

HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title><link rel="icon" href="data:,">
<style>
body{font:14px system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#plot{flex:1;position:relative;min-width:0}canvas{width:100%;height:100%;display:block}
#side{width:400px;overflow:auto;padding:12px;border-left:1px solid #ddd}
h1{font-size:15px;margin:0 0 8px}small{color:#666;display:block;margin-bottom:8px}
#sel{--em-list-height:42vh}
</style></head><body>
<div id="plot"><canvas id="c"></canvas><div id="tip" class="em-tip"></div></div>
<div id="side"><h1>__TITLE__</h1><small>__SAMPLED__Hover a point to read the tweet; click a legend entry to
hide it. Select with Box or Lasso (or shift-drag) to list the tweets and save them as CSV; the address
keeps the colouring and the selection, to share.</small><div id="tools"></div><div id="legend"></div>
<div id="sel"></div></div>
<script id="data" type="application/json">__DATA__</script>
<script>
__MAP_JS__
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
window.encajesMap = EncajesMap.create({data: D, canvas: $("c"), legend: $("legend"), tools: $("tools"),
  list: $("sel"), tip: $("tip"), texts: (idx) => Array.from(idx, (i) => D.text[i]), name: "umap-selection"});
</script></body></html>
"""


def map_script() -> str:
    """The map's code (``map_view.js``), which umap.html and the serve page both inline."""
    return resources.files("pipeline.render").joinpath("map_view.js").read_text(encoding="utf-8")


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``__NAME__`` replaced in one pass (a value is never searched again)."""
    return re.sub(r"__([A-Z_]+?)__", lambda m: values.get(m[1], m[0]), template)


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
    fields: pd.DataFrame | None = None,
    kinds: Mapping[str, str] | None = None,
    ids: list[str | None] | None = None,
) -> None:
    """One self-contained HTML file (no network): the map view of ``map_view.js`` over ``page_data``.
    ``frame``/``texts`` (and ``fields``, row for row) may be a sample of the map; ``counts`` (rows per
    label) are then the whole map's."""
    data = page_data(frame, counts, top, names, fields, kinds)
    data["text"] = [str(text) for text in texts]
    if ids is not None:  # the tweets' own ids, row for row: the CSV export carries them
        data["id"] = ids
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")  # no tag, ever
    sampled = (
        f"Showing a random {len(frame):,} of {data['total']:,} tweets (umap.parquet and umap.png hold them "
        "all; label counts are the whole corpus'). "
        if len(frame) < data["total"]
        else ""
    )
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;")
    values = {"TITLE": safe_title, "SAMPLED": sampled, "DATA": payload, "MAP_JS": map_script()}
    page = fill(HTML_TEMPLATE, values)
    write_atomic(target, lambda tmp: tmp.write_text(page, encoding="utf-8"))


def page_data(
    frame: pd.DataFrame,
    counts: pd.Series | None = None,
    top: int = 10,
    names: Mapping[str, str] | None = None,
    fields: pd.DataFrame | None = None,
    kinds: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What the map view draws, lists and colours by, texts aside (umap.html carries them, the serve page
    asks for the rows it lists): ``map_data`` plus each point's row id and label code, the labels as
    the corpus spells them (the CSV's), and the kept fields (``map_fields``), row for row with ``frame``."""
    labels = label_names(frame)
    data = map_data(frame, labels.value_counts() if counts is None else counts, top, names)
    code = data.pop("code")
    data["label"] = [code[label] for label in labels]
    data["label_values"] = list(code)
    data["row_id"] = frame["row_id"].astype(int).tolist()
    data["fields"] = [] if fields is None else encode_fields(fields, kinds, top)
    return data


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
