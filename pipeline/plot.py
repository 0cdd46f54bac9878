"""Pictures: UMAP maps of a run (PNG + interactive HTML), confusion matrices, similarity heatmaps.

Labels that are emojis are shown with their Unicode name, plus the emoji itself where the plotting font
can draw it, so a legend is readable on any machine. Browsers draw every emoji, so the HTML shows them.
"""

from __future__ import annotations

import functools
import json
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.embed import find_run
from pipeline.errors import EncajesError
from pipeline.ingest import CorpusTexts, corpus_hash, load_corpus
from pipeline.layout import Workdir, is_fresh, record_stage, stage_entry, write_atomic
from pipeline.lock import writes_workdir
from pipeline.models import DEFAULT_MODEL
from pipeline.projection import UmapSettings, umap_2d
from pipeline.store import load_embeddings

INVISIBLE = {0xFE0F, 0xFE0E, 0x200D}
CLDR_NAMES = {"❤": "red heart", "❤️": "red heart"}  # where Unicode's character name reads oddly


# --- labels --------------------------------------------------------------------------------------------


@functools.cache
def _font_charmap() -> frozenset[int]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_manager.findfont("DejaVu Sans")).get_charmap())


def emoji_name(label: str) -> str | None:
    """'😂' -> 'face with tears of joy'; None when the label is not made of symbols (e.g. 'positive', '3')."""
    if label in CLDR_NAMES:
        return CLDR_NAMES[label]
    chars = [ch for ch in label if ord(ch) not in INVISIBLE]
    if not chars or any(unicodedata.category(ch)[0] in "LN" for ch in chars):
        return None
    if all(0x1F1E6 <= ord(ch) <= 0x1F1FF for ch in chars):  # regional indicators: a flag
        return "flag " + "".join(chr(ord(ch) - 0x1F1E6 + ord("A")) for ch in chars)
    return " ".join(unicodedata.name(ch, "?").lower() for ch in chars)


def display_label(label: str, for_html: bool = False) -> str:
    """A legend entry people can read: the emoji where it can be drawn, and its name."""
    name = emoji_name(label)
    if name is None:
        return label
    drawable = for_html or all(ord(ch) in _font_charmap() or ord(ch) in INVISIBLE for ch in label)
    return f"{label} {name}" if drawable else name


def label_colors(labels: list[str]) -> dict[str, str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    if len(labels) <= 20:
        return {label: to_hex(cmap(i)) for i, label in enumerate(labels)}
    hues = colormaps["hsv"](np.linspace(0, 1, len(labels), endpoint=False))
    return {label: to_hex(c) for label, c in zip(labels, hues, strict=True)}


def _pyplot():
    """matplotlib's pyplot on the Agg backend: files only, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, target: Path) -> None:
    """Write a figure atomically and free it."""
    write_atomic(target, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))
    _pyplot().close(fig)


# --- UMAP ----------------------------------------------------------------------------------------------


def label_names(frame: pd.DataFrame) -> pd.Series:
    """The map's labels as strings, unlabelled rows named."""
    return frame["label"].fillna("(no label)").astype(str)


def _ordered_labels(labels: pd.Series) -> list[str]:
    """Most frequent first, so the legend reads like the data."""
    return labels.value_counts().index.astype(str).tolist()


def plot_umap_png(frame: pd.DataFrame, title: str, target: Path) -> None:
    """A scatter that stays legible from 200 to 100k+ points: small rasterised dots, shuffled draw order."""
    plt = _pyplot()

    n = len(frame)
    labels = label_names(frame)
    order = _ordered_labels(labels)
    colors = label_colors(order)
    shuffled = np.random.default_rng(0).permutation(n)
    size = float(np.clip(30000 / max(n, 1), 0.3, 30))
    alpha = 0.9 if n < 5000 else 0.5
    fig, ax = plt.subplots(figsize=(10, 7.5), dpi=150)
    ax.scatter(
        frame["x"].to_numpy()[shuffled],
        frame["y"].to_numpy()[shuffled],
        c=[colors[label] for label in labels.to_numpy()[shuffled]],
        s=size,
        alpha=alpha,
        linewidths=0,
        rasterized=True,
    )
    counts = labels.value_counts()
    handles = [
        plt.Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=7,
            color=colors[label],
            label=f"{display_label(label)} ({counts[label]:,})",
        )
        for label in order
    ]
    ax.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
        fontsize=8,
        title="label",
        title_fontsize=9,
    )
    ax.set_title(f"{title}  ·  {n:,} tweets  ·  UMAP (cosine)", fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.tight_layout()
    save_png(fig, target)


HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#plot{flex:1;position:relative}canvas{width:100%;height:100%;display:block}
#side{width:300px;overflow:auto;padding:12px;border-left:1px solid #ddd}
#tip{position:absolute;pointer-events:none;background:#fff;border:1px solid #999;border-radius:4px;
padding:6px 8px;max-width:360px;box-shadow:0 2px 6px #0002;display:none;white-space:pre-wrap}
.item{cursor:pointer;padding:2px 4px;border-radius:3px;user-select:none}.item:hover{background:#eee}
.off{opacity:.35}.sw{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:6px}
h1{font-size:15px;margin:0 0 8px}small{color:#666}
</style></head><body>
<div id="plot"><canvas id="c"></canvas><div id="tip"></div></div>
<div id="side"><h1>__TITLE__</h1><small>__SAMPLED__Hover a point to read the tweet; click a label to hide it.
Scroll to zoom, drag to pan, double-click to reset.</small><div id="legend"></div></div>
<script id="data" type="application/json">__DATA__</script>
<script>
const D=JSON.parse(document.getElementById('data').textContent);
const cv=document.getElementById('c'),ctx=cv.getContext('2d'),tip=document.getElementById('tip');
const n=D.x.length,hidden=new Set();let view,W,H,dpr=window.devicePixelRatio||1;
function bounds(){let a=Infinity,b=-Infinity,c=Infinity,d=-Infinity;for(let i=0;i<n;i++){a=Math.min(a,D.x[i]);
b=Math.max(b,D.x[i]);c=Math.min(c,D.y[i]);d=Math.max(d,D.y[i]);}const px=(b-a)*.03||1,py=(d-c)*.03||1;
return{x0:a-px,x1:b+px,y0:c-py,y1:d+py};}
function sx(x){return (x-view.x0)/(view.x1-view.x0)*W}function sy(y){return H-(y-view.y0)/(view.y1-view.y0)*H}
const order=[...Array(n).keys()].sort(()=>Math.random()-.5);
const r=Math.max(1.2,Math.min(6,Math.sqrt(40000/n)));
function draw(){W=cv.clientWidth;H=cv.clientHeight;cv.width=W*dpr;cv.height=H*dpr;
ctx.setTransform(dpr,0,0,dpr,0,0);ctx.clearRect(0,0,W,H);ctx.globalAlpha=n>5000?.55:.85;
for(const i of order){const l=D.label[i];if(hidden.has(l))continue;
ctx.fillStyle=D.colors[l];ctx.fillRect(sx(D.x[i])-r/2,sy(D.y[i])-r/2,r,r);}}
function legend(){const el=document.getElementById('legend');el.innerHTML='';D.labels.forEach((name,l)=>{
const d=document.createElement('div');d.className='item'+(hidden.has(l)?' off':'');
d.innerHTML='<span class="sw" style="background:'+D.colors[l]+'"></span>';
d.appendChild(document.createTextNode(name+' ('+D.counts[l].toLocaleString()+')'));
d.onclick=()=>{hidden.has(l)?hidden.delete(l):hidden.add(l);legend();draw();};el.appendChild(d);});}
function nearest(mx,my){let best=-1,bd=64;for(let i=0;i<n;i++){if(hidden.has(D.label[i]))continue;
const dx=sx(D.x[i])-mx,dy=sy(D.y[i])-my,dd=dx*dx+dy*dy;if(dd<bd){bd=dd;best=i;}}return best;}
let drag=null;cv.onmousemove=e=>{const b=cv.getBoundingClientRect(),mx=e.clientX-b.left,my=e.clientY-b.top;
if(drag){const fx=(view.x1-view.x0)/W,fy=(view.y1-view.y0)/H;const dx=(mx-drag.x)*fx,dy=(my-drag.y)*fy;
view={x0:view.x0-dx,x1:view.x1-dx,y0:view.y0+dy,y1:view.y1+dy};drag={x:mx,y:my};draw();return;}
const i=nearest(mx,my);if(i<0){tip.style.display='none';return;}tip.style.display='block';
tip.textContent=D.labels[D.label[i]]+'  ·  row '+D.row[i]+'\\n'+D.text[i];
tip.style.left=Math.min(mx+12,W-370)+'px';tip.style.top=(my+12)+'px';};
cv.onmousedown=e=>{const b=cv.getBoundingClientRect();drag={x:e.clientX-b.left,y:e.clientY-b.top};};
window.onmouseup=()=>{drag=null};cv.onmouseleave=()=>{tip.style.display='none'};
cv.ondblclick=()=>{view=bounds();draw();};
cv.onwheel=e=>{e.preventDefault();const b=cv.getBoundingClientRect(),mx=e.clientX-b.left,my=e.clientY-b.top;
const k=e.deltaY>0?1.2:1/1.2,cx=view.x0+mx/W*(view.x1-view.x0),cy=view.y0+(H-my)/H*(view.y1-view.y0);
view={x0:cx+(view.x0-cx)*k,x1:cx+(view.x1-cx)*k,y0:cy+(view.y0-cy)*k,y1:cy+(view.y1-cy)*k};draw();};
view=bounds();legend();draw();window.onresize=draw;
</script></body></html>
"""


HTML_MAX_POINTS = 100_000  # a browser hovers 100k points smoothly; millions make a page of gigabytes


def html_rows(rows: int, limit: int = HTML_MAX_POINTS, seed: int = 0) -> np.ndarray:
    """Positions the HTML map shows: all rows, or a sorted uniform random ``limit`` of them."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))


def write_umap_html(
    frame: pd.DataFrame, texts: list[str], title: str, target: Path, counts: pd.Series | None = None
) -> None:
    """One self-contained HTML file (no network): canvas scatter, hover shows the tweet and its label.
    ``frame``/``texts`` may be a sample of the map; ``counts`` (rows per label) are then the whole map's."""
    labels = label_names(frame)
    counts = labels.value_counts() if counts is None else counts
    order = _ordered_labels(labels)
    present = set(order)
    order += [label for label in counts.index if label not in present]  # absent from the sample
    code = {label: i for i, label in enumerate(order)}
    colors = label_colors(order)
    data = {
        "x": np.round(frame["x"].to_numpy(), 4).tolist(),
        "y": np.round(frame["y"].to_numpy(), 4).tolist(),
        "label": [code[label] for label in labels],
        "row": frame["row_id"].astype(int).tolist(),
        "text": [str(text) for text in texts],
        "labels": [display_label(label, for_html=True) for label in order],
        "colors": [colors[label] for label in order],
        "counts": [int(counts[label]) for label in order],
        "total": int(counts.sum()),
    }
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


# --- the stage -----------------------------------------------------------------------------------------


@dataclass
class PlotReport:
    umap: Path
    png: Path
    html: Path
    rows: int
    seconds: float
    skipped: bool
    fitted_rows: int = 0  # rows UMAP was fitted on; the rest were placed by their nearest fitted rows
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    peak_rss_after_fit_mb: float = 0.0  # when UMAP fitted a sample: the peak before placing the rest

    def to_dict(self) -> dict[str, Any]:
        return {"stage": "plot", **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}}


@writes_workdir()
def plot_run(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    settings: UmapSettings | None = None,
    force: bool = False,
) -> PlotReport:
    """UMAP one run to 2-D: umap.parquet (row_id, x, y, label), umap.png and umap.html in its folder."""
    settings = settings or UmapSettings()
    work = Workdir.at(workdir)
    run, embed_entry = find_run(work, model, pooling)
    inputs = {  # labels colour the map, so a relabelled corpus redraws it
        "corpus_sha256": corpus_hash(work),
        "embeddings_sha256": embed_entry.get("embeddings_sha256"),
        **asdict(settings),
    }
    outputs = [run.umap, run.umap_png, run.umap_html]
    if not force and is_fresh(run.manifest, "plot", inputs, outputs):
        out = (stage_entry(run.manifest, "plot") or {})["outputs"]
        return PlotReport(run.umap, run.umap_png, run.umap_html, **out, skipped=True)
    start = time.perf_counter()
    embeddings = load_embeddings(run.embeddings)
    corpus = load_corpus(work, columns=["row_id", "label"])  # texts are read for the HTML's rows only
    positions = pd.Index(corpus["row_id"]).get_indexer(embeddings.row_ids)
    if (positions < 0).any():
        raise EncajesError(
            f"{run.embeddings} holds rows that the corpus no longer has: run `encajes embed` again."
        )
    projection = umap_2d(embeddings, settings)
    xy = projection.xy
    frame = pd.DataFrame(
        {
            "row_id": embeddings.row_ids,
            "x": xy[:, 0],
            "y": xy[:, 1],
            "label": corpus["label"].to_numpy()[positions],
        }
    )
    write_atomic(run.umap, lambda tmp: frame.to_parquet(tmp, index=False))
    title = f"{embed_entry['inputs']['model']} · {embed_entry['inputs']['pooling']}"
    plot_umap_png(frame, title, run.umap_png)
    shown = html_rows(len(frame), HTML_MAX_POINTS)
    order = np.argsort(positions[shown], kind="stable")  # CorpusTexts.take reads in corpus order
    texts = np.empty(len(shown), dtype=object)
    texts[order] = CorpusTexts(work.require_corpus()).take(positions[shown][order])
    counts = label_names(frame).value_counts()
    write_umap_html(frame.iloc[shown], list(texts), title, run.umap_html, counts=counts)
    outputs_info = {
        "rows": len(frame),
        "seconds": round(time.perf_counter() - start, 3),
        "fitted_rows": projection.fitted_rows,
        "timings": projection.seconds,
        "peak_rss_mb": projection.peak_rss_mb,
        "peak_rss_after_fit_mb": projection.peak_rss_after_fit_mb,
    }
    record_stage(run.manifest, "plot", inputs, outputs_info)
    return PlotReport(run.umap, run.umap_png, run.umap_html, **outputs_info, skipped=False)


# --- other figures -------------------------------------------------------------------------------------


def _annotate(ax, values: np.ndarray, fmt, dark: np.ndarray, fontsize: int) -> None:
    """Write each cell's value on a heatmap, white where the cell is dark."""
    for (i, j), value in np.ndenumerate(values):
        ax.text(
            j,
            i,
            fmt(value),
            ha="center",
            va="center",
            fontsize=fontsize,
            color="white" if dark[i, j] else "black",
        )


def plot_confusions(results: dict[str, dict[str, Any]], title: str, target: Path) -> None:
    """Row-normalised confusion matrices (recall per true class), one panel per probe."""
    plt = _pyplot()

    panels = list(results.items())
    n_labels = len(panels[0][1]["labels"])
    side = max(4.5, 0.42 * n_labels + 2)
    fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels), side), dpi=120, squeeze=False)
    for ax, (name, result) in zip(axes[0], panels, strict=True):
        cm = np.asarray(result["confusion"], dtype=float)
        rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        names = [display_label(label) for label in result["labels"]]
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: macro-F1 {result['macro_f1']:.3f}, acc {result['accuracy']:.3f}", fontsize=9)
        if n_labels <= 12:
            _annotate(ax, cm, lambda v: f"{int(v)}", dark=rates > 0.5, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, target)


def plot_similarity(sentences: list[str], matrix: np.ndarray, title: str, target: Path) -> None:
    """Annotated cosine-similarity heatmap of a few sentences."""
    import textwrap

    plt = _pyplot()

    n = len(sentences)
    names = [textwrap.shorten(s, 40, placeholder="…") for s in sentences]
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * n + 3), max(4, 0.7 * n + 2)), dpi=120)
    image = ax.imshow(matrix, cmap="viridis", vmin=min(0.0, float(matrix.min())), vmax=1)
    ax.set_xticks(range(n), [str(i + 1) for i in range(n)])
    ax.set_yticks(range(n), [f"{i + 1}. {name}" for i, name in enumerate(names)], fontsize=8)
    _annotate(ax, matrix, lambda v: f"{v:.2f}", dark=matrix <= 0.6, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="cosine similarity")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, target)
