"""``umap.html``: one self-contained page (no network) with a canvas scatter of a run's map; hover a point
to read its tweet, click a label to hide it, scroll to zoom."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.atomic import write_atomic
from pipeline.figures import display_label, label_colors, label_names, ordered_labels

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
    order = ordered_labels(labels)
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
