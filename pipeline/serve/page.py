"""The search page served at ``/``: ``page.html`` with the map view (``pipeline/render/map_view.js``, the
code umap.html inlines too) put in its place, built once."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from pipeline.render.umap_page import map_script

MAP_SCRIPT_SLOT = "/*__MAP_JS__*/"


@lru_cache(maxsize=1)
def page_html() -> str:
    page = resources.files("pipeline.serve").joinpath("page.html").read_text(encoding="utf-8")
    return page.replace(MAP_SCRIPT_SLOT, map_script(), 1)
