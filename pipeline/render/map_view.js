/* The UMAP map people work with: one implementation, inlined into umap.html and the serve page.
   EncajesMap.create(options) draws the page data of pipeline/render/umap_page.map_data on a canvas:
   colour by the label or any kept field, hover, legend clicks hide, scroll zooms, drag pans; box and
   lasso selections (in data coordinates) list their tweets in a virtual list and export them as CSV;
   the colouring, hidden entries, selection and view live in the URL's hash. Nothing is fetched here:
   the page hands in how to get texts (options.texts) and what a click on a point does (options.onPick). */
"use strict";
const EncajesMap = (() => {
  const CSS = `
.em-tools{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:6px 0;font-size:13px}
.em-tools button{font:inherit;padding:2px 8px;border:1px solid #bbb;border-radius:4px;background:#fff;
color:#222;cursor:pointer}.em-tools button.on{background:#0969da;color:#fff;border-color:#0969da}
.em-tools select{font:inherit;max-width:180px}.em-hint{color:#666;font-size:12px}
.em-item{cursor:pointer;padding:2px 4px;border-radius:3px;user-select:none;line-height:1.35}
.em-item:hover{background:#eee}.em-off{opacity:.35}.em-note{color:#555;margin-top:6px}
.em-sw{display:inline-block;width:11px;height:11px;border-radius:6px;margin-right:7px;vertical-align:-1px}
.em-dia{display:inline-block;width:8px;height:8px;border:1px solid #333;transform:rotate(45deg);
margin:0 8px 0 2px}.em-head{font-weight:600;margin:8px 0 4px}
.em-bar{height:12px;border-radius:3px;margin:4px 0 2px}
.em-ticks{display:flex;justify-content:space-between;font-size:12px;color:#555}
.em-selhead{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:6px 0;font-size:13px}
.em-selhead button{font:inherit;padding:1px 8px;border:1px solid #bbb;border-radius:4px;background:#fff;
color:#222;cursor:pointer}.em-selhead button:disabled{color:#aaa;cursor:default}.em-scroll{position:relative;overflow:auto;border:1px solid #ddd;border-radius:4px;
height:var(--em-list-height,300px)}
.em-row{position:absolute;left:0;right:0;height:44px;padding:3px 6px;border-bottom:1px solid #eee;
overflow:hidden;font-size:12px;box-sizing:border-box}
.em-meta{color:#555;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.em-text{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;font-size:13px;color:#222}
.em-tip{position:absolute;pointer-events:none;background:#fff;border:1px solid #999;border-radius:4px;
padding:6px 8px;max-width:360px;box-shadow:0 2px 6px #0002;display:none;white-space:pre-wrap;
font-size:13px;z-index:2}`;
  const ROW_H = 44, NEAR_PX = 8, CLICK_PX = 4;
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})[c]);
  const hex = (h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16));
  const round6 = (v) => Number(v.toPrecision(6));
  const iso = (t) => new Date(t * 1000).toISOString().replace(".000Z", "Z");
  function csvCell(v) {  // RFC 4180: quoted when it holds a comma, a quote or a line break
    if (v === null || v === undefined) return "";
    const s = String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function shuffled(n) {  // the same order on every load (a seeded Fisher-Yates), so views are repeatable
    const a = new Uint32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    let s = 2463534242;
    for (let i = n - 1; i > 0; i--) {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      const j = s % (i + 1), t = a[i]; a[i] = a[j]; a[j] = t;
    }
    return a;
  }
  function readHash() {
    const out = new Map();
    for (const part of location.hash.replace(/^#/, "").split("&")) {
      const at = part.indexOf("=");
      try {  // a link cut mid-escape (%C3) loses that part, not the page
        if (at > 0) out.set(decodeURIComponent(part.slice(0, at)), decodeURIComponent(part.slice(at + 1)));
      } catch (e) { /* skip the malformed part */ }
    }
    return out;
  }
  function writeHash(values) {
    const text = [...values].filter(([, v]) => v !== "" && v !== null && v !== undefined)
      .map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v).replace(/%2C/g, ",")).join("&");
    if (text === location.hash.replace(/^#/, "")) return;
    try { history.replaceState(null, "", text ? "#" + text : location.pathname + location.search); }
    catch (e) { location.hash = text; }
  }
  function fieldText(f, i) {  // a field's value as the list and the CSV show it
    if (f.scale === "category") return f.codes[i] < 0 ? "" : f.values[f.codes[i]];
    const v = f.values[i];
    return v === null ? "" : f.kind === "timestamp" ? iso(v) : String(v);
  }
  function tick(f, v) {
    if (f.kind !== "timestamp") return Number.isInteger(v) ? String(v) : String(round6(v));
    const s = iso(v).replace("T", " ");
    return f.max - f.min >= 2 * 86400 ? s.slice(0, 10) : s.slice(0, 16);
  }
  function colouring(D, key) {  // per point: a colour index and a legend entry (what a click hides)
    const n = D.x.length, f = (D.fields || []).find((g) => g.name === key);
    let colors, ci = new Uint16Array(n), entry = new Int32Array(n), grey;
    if (!f) {
      colors = D.colors; grey = D.colors.map((c, k) => D.groups[D.group[k]].other);
      for (let i = 0; i < n; i++) { ci[i] = D.label[i]; entry[i] = D.group[D.label[i]]; }
      return {key: "label", colors, ci, entry, grey};
    }
    if (f.scale === "category") {
      colors = [...f.colors, f.other_color, f.missing_color];
      grey = colors.map((c, k) => k >= f.top);
      for (let i = 0; i < n; i++) {
        const c = f.codes[i]; ci[i] = c < 0 ? f.top + 1 : Math.min(c, f.top); entry[i] = ci[i];
      }
      return {key, field: f, colors, ci, entry, grey};
    }
    const bins = 64, stops = f.stops.map(hex), scaled = (v) => (f.log ? Math.log1p(v) : v);
    const low = scaled(f.min), span = scaled(f.max) - low || 1;
    colors = [];
    for (let b = 0; b < bins; b++) {
      const t = (b / (bins - 1)) * (stops.length - 1), k = Math.min(Math.floor(t), stops.length - 2), u = t - k;
      const c = stops[k].map((v, j) => Math.round(v + (stops[k + 1][j] - v) * u));
      colors.push("#" + c.map((v) => v.toString(16).padStart(2, "0")).join(""));
    }
    colors.push(f.missing_color); grey = colors.map((c, k) => k === bins);
    for (let i = 0; i < n; i++) {
      const v = f.values[i];
      ci[i] = v === null ? bins : Math.min(bins - 1, Math.max(0, Math.floor(((scaled(v) - low) / span) * bins)));
      entry[i] = v === null ? 1 : 0;
    }
    return {key, field: f, colors, ci, entry, grey};
  }

  function create(o) {
    const D = o.data, n = D.x.length, X = Float64Array.from(D.x), Y = Float64Array.from(D.y), B = D.view;
    const canvas = o.canvas, ctx = canvas.getContext("2d"), abort = new AbortController();
    const on = (el, ev, fn, opt) => el.addEventListener(ev, fn, {signal: abort.signal, ...opt});
    const fields = D.fields || [], base = shuffled(n), r = Math.max(1.5, Math.min(6, Math.sqrt(40000 / n)));
    if (!document.getElementById("em-css")) {
      const st = document.createElement("style"); st.id = "em-css"; st.textContent = CSS; document.head.appendChild(st);
    }
    const S = {C: null, order: null, rgb: null, hidden: new Uint8Array(0), poly: null, kind: "", sel: null,
      idx: new Int32Array(0), mode: "pan", clamp: true, home: true, cx: 0, cy: 0, s: 1, W: 1, H: 1, img: null,
      drag: null, timings: {}, rowOf: null};
    const api = {timings: S.timings};
    const outside = (i) => X[i] < B.x0 || X[i] > B.x1 || Y[i] < B.y0 || Y[i] > B.y1;
    const sx = (x) => S.W / 2 + (x - S.cx) * S.s, sy = (y) => S.H / 2 - (y - S.cy) * S.s;
    const dataX = (px) => S.cx + (px - S.W / 2) / S.s, dataY = (py) => S.cy - (py - S.H / 2) / S.s;
    const px = (i) => sx(S.clamp ? Math.min(Math.max(X[i], B.x0), B.x1) : X[i]);
    const py = (i) => sy(S.clamp ? Math.min(Math.max(Y[i], B.y0), B.y1) : Y[i]);
    const shown = (i) => !S.hidden[S.C.entry[i]];

    function fit() {  // one scale for both axes: the map keeps its shape
      let b = B;
      if (!S.clamp) {
        b = {x0: Infinity, x1: -Infinity, y0: Infinity, y1: -Infinity};
        for (let i = 0; i < n; i++) {
          b.x0 = Math.min(b.x0, X[i]); b.x1 = Math.max(b.x1, X[i]); b.y0 = Math.min(b.y0, Y[i]); b.y1 = Math.max(b.y1, Y[i]);
        }
      }
      S.cx = (b.x0 + b.x1) / 2; S.cy = (b.y0 + b.y1) / 2;
      S.s = Math.min((S.W - 28) / (b.x1 - b.x0 || 1), (S.H - 28) / (b.y1 - b.y0 || 1));
    }
    function render() {  // every point into an image (blended by hand: fast at 100k points), then overlays
      S.W = canvas.clientWidth || 1; S.H = canvas.clientHeight || 1;
      const dpr = window.devicePixelRatio || 1, cw = Math.round(S.W * dpr), ch = Math.round(S.H * dpr);
      if (canvas.width !== cw || canvas.height !== ch) { canvas.width = cw; canvas.height = ch; }
      if (S.home) fit();
      const img = ctx.createImageData(cw, ch), d = img.data, size = Math.max(1, Math.round(r * dpr));
      d.fill(255);
      const base_a = n > 5000 ? 0.55 : 0.85, sel = S.sel, rgb = S.rgb, grey = S.C.grey, ci = S.C.ci;
      for (let k = 0; k < n; k++) {
        const i = S.order[k];
        if (!shown(i) || (S.clamp && outside(i))) continue;
        const x0 = Math.round(sx(X[i]) * dpr - size / 2), y0 = Math.round(sy(Y[i]) * dpr - size / 2);
        if (x0 >= cw || y0 >= ch || x0 + size <= 0 || y0 + size <= 0) continue;
        const c = ci[i], R = rgb[3 * c], G = rgb[3 * c + 1], Bl = rgb[3 * c + 2];
        const a = (grey[c] ? 0.8 : base_a) * (sel && !sel[i] ? 0.25 : 1);
        for (let y = Math.max(y0, 0), ye = Math.min(y0 + size, ch); y < ye; y++) {
          for (let p = (y * cw + Math.max(x0, 0)) * 4, pe = (y * cw + Math.min(x0 + size, cw)) * 4; p < pe; p += 4) {
            d[p] += (R - d[p]) * a; d[p + 1] += (G - d[p + 1]) * a; d[p + 2] += (Bl - d[p + 2]) * a;
          }
        }
      }
      S.img = img; paint(); saveState();
    }
    let saving = 0;  // the hash follows the view a moment later: panning does not flood the history
    const saveState = () => { clearTimeout(saving); saving = setTimeout(writeState, 150); };
    let pending = 0;
    const schedule = () => { if (!pending) pending = requestAnimationFrame(() => { pending = 0; render(); }); };
    function diamond(x, y, k) {
      ctx.beginPath(); ctx.moveTo(x, y - k); ctx.lineTo(x + k, y); ctx.lineTo(x, y + k); ctx.lineTo(x - k, y);
      ctx.closePath(); ctx.fill(); ctx.stroke();
    }
    function paint() {  // the cached points, then the edge, the selection and the page's marks on top
      const dpr = window.devicePixelRatio || 1;
      ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.putImageData(S.img, 0, 0); ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      if (D.outside && S.clamp) {
        ctx.strokeStyle = "#ccc"; ctx.setLineDash([4, 4]); ctx.lineWidth = 1;
        ctx.strokeRect(sx(B.x0), sy(B.y1), (B.x1 - B.x0) * S.s, (B.y1 - B.y0) * S.s);
        ctx.setLineDash([]); ctx.strokeStyle = "#333"; ctx.lineWidth = 0.8;
        for (let i = 0; i < n; i++) {
          if (!outside(i) || !shown(i)) continue;
          ctx.fillStyle = S.C.colors[S.C.ci[i]]; diamond(px(i), py(i), r / 2 + 2.5);
        }
      }
      const path = S.drag && S.drag.select ? S.drag.path : S.poly && S.poly.map(([x, y]) => [sx(x), sy(y)]);
      if (path && path.length > 1) {
        ctx.beginPath(); path.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y))); ctx.closePath();
        ctx.fillStyle = "rgba(9,105,218,0.07)"; ctx.fill();
        ctx.strokeStyle = "#0969da"; ctx.lineWidth = 1.5; ctx.setLineDash([5, 3]); ctx.stroke(); ctx.setLineDash([]);
      }
      const marks = o.marks ? o.marks() : null;
      if (!marks) return;
      for (const row of marks.hits || []) {
        const i = rowIndex(row);
        if (i === undefined) continue;
        ctx.beginPath(); ctx.arc(px(i), py(i), 6, 0, 2 * Math.PI);
        ctx.fillStyle = "#d1242f"; ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.fill(); ctx.stroke();
      }
      const f = marks.focus === null || marks.focus === undefined ? undefined : rowIndex(marks.focus);
      if (f !== undefined) {
        ctx.beginPath(); ctx.arc(px(f), py(f), 9, 0, 2 * Math.PI);
        ctx.fillStyle = "#24292f"; ctx.strokeStyle = "#fff"; ctx.lineWidth = 3; ctx.fill(); ctx.stroke();
      }
    }
    function rowIndex(row) {
      if (!S.rowOf) { S.rowOf = new Map(); for (let i = 0; i < n; i++) S.rowOf.set(D.row_id[i], i); }
      return S.rowOf.get(row);
    }
    function colourBy(key, hidden) {
      S.C = colouring(D, key);
      S.rgb = new Uint8Array(S.C.colors.flatMap(hex));
      const greyFirst = [], rest = [];
      for (const i of base) (S.C.grey[S.C.ci[i]] ? greyFirst : rest).push(i);
      S.order = Uint32Array.from(greyFirst.concat(rest));
      S.hidden = new Uint8Array(S.C.colors.length + D.groups.length + 2);
      const continuous = S.C.field && S.C.field.scale !== "category";  // its legend hides "missing" only
      for (const k of hidden || []) if (k >= (continuous ? 1 : 0) && k < S.hidden.length) S.hidden[k] = 1;
      if (o.colourSelect) o.colourSelect.value = S.C.key;
      legend();
    }
    const item = (sw, text, title, off, click) => {
      const d = document.createElement("div");
      d.className = "em-item" + (off ? " em-off" : ""); d.innerHTML = sw; d.appendChild(document.createTextNode(text));
      if (title) d.title = title;
      d.onclick = click; return d;
    };
    const swatch = (c) => '<span class="em-sw" style="background:' + c + '"></span>';
    function toggle(k) { S.hidden[k] = S.hidden[k] ? 0 : 1; legend(); reselect(); }
    function legend() {
      const el = o.legend, C = S.C, f = C.field;
      el.innerHTML = '<div class="em-count">' + n.toLocaleString("en") + " tweets on the map</div>";
      const head = document.createElement("div"); head.className = "em-head"; el.appendChild(head);
      if (!f) {
        head.textContent = D.head;
        D.groups.forEach((g, k) => el.appendChild(item(swatch(g.color), g.name, g.title, S.hidden[k], () => toggle(k))));
      } else if (f.scale === "category") {
        const rest = f.values.length - f.top;
        head.textContent = rest > 0 ? `${f.name}: ${f.top} most frequent of ${f.values.length.toLocaleString("en")} values` : f.name;
        f.values.slice(0, f.top).forEach((v, k) => el.appendChild(item(swatch(f.colors[k]),
          `${v} (${f.counts[k].toLocaleString("en")})`, "", S.hidden[k], () => toggle(k))));
        if (rest > 0) el.appendChild(item(swatch(f.other_color), `other: ${rest.toLocaleString("en")} values (${f.other.toLocaleString("en")})`,
          f.values.slice(f.top, f.top + 200).join(", "), S.hidden[f.top], () => toggle(f.top)));
      } else {
        head.textContent = f.name + (f.kind === "timestamp" ? " (UTC)" : f.log ? " (log scale)" : "");
        if (f.min !== null) {
          const bar = document.createElement("div"); bar.className = "em-bar";
          bar.style.background = "linear-gradient(to right," + f.stops.join(",") + ")"; el.appendChild(bar);
          const ticks = document.createElement("div"); ticks.className = "em-ticks";
          const half = f.log ? Math.expm1((Math.log1p(f.min) + Math.log1p(f.max)) / 2) : (f.min + f.max) / 2;
          const mid = f.kind === "integer" ? Math.round(half) : half;
          ticks.innerHTML = [f.min, mid, f.max].map((v) => "<span>" + esc(tick(f, v)) + "</span>").join("");
          el.appendChild(ticks);
        }
      }
      if (f && f.missing) {
        const k = f.scale === "category" ? f.top + 1 : 1;
        el.appendChild(item(swatch(f.missing_color), `missing (${f.missing.toLocaleString("en")})`, "", S.hidden[k], () => toggle(k)));
      }
      if (!D.outside) return;
      const t = D.note + (S.clamp ? " (click to show where they lie)" : " (click to draw them at the edge again)");
      const d = item('<span class="em-dia"></span>', t, "", false, () => { S.clamp = !S.clamp; S.home = true; legend(); render(); });
      d.className += " em-note"; el.appendChild(d);
    }
    function inside(poly) {  // one pass over the typed arrays: the shown points inside the polygon
      const m = poly.length, PX = Float64Array.from(poly, (p) => p[0]), PY = Float64Array.from(poly, (p) => p[1]);
      const bx0 = Math.min(...PX), bx1 = Math.max(...PX), by0 = Math.min(...PY), by1 = Math.max(...PY);
      const sel = new Uint8Array(n), hid = S.hidden, entry = S.C.entry;
      let count = 0;
      for (let i = 0; i < n; i++) {
        const x = X[i], y = Y[i];
        if (x < bx0 || x > bx1 || y < by0 || y > by1 || hid[entry[i]]) continue;
        let c = false;
        for (let j = 0, k = m - 1; j < m; k = j++) {
          const yj = PY[j], yk = PY[k];
          if (yj > y !== yk > y && x < ((PX[k] - PX[j]) * (y - yj)) / (yk - yj) + PX[j]) c = !c;
        }
        if (c) { sel[i] = 1; count++; }
      }
      const idx = new Int32Array(count);
      for (let i = 0, k = 0; i < n; i++) if (sel[i]) idx[k++] = i;
      return {sel, idx};
    }
    function select(kind, poly) {
      const t0 = performance.now();
      S.kind = poly && poly.length > 2 ? kind : ""; S.poly = S.kind ? poly : null;
      const got = S.poly ? inside(S.poly) : {sel: null, idx: new Int32Array(0)};
      S.sel = got.sel; S.idx = got.idx;
      const t1 = performance.now();
      list.show();
      const t2 = performance.now();
      Object.assign(S.timings, {points: n, selected: S.idx.length, select_ms: t1 - t0, list_ms: t2 - t0});
      requestAnimationFrame(() => requestAnimationFrame(() => { S.timings.painted_ms = performance.now() - t0; }));
      render();
      if (o.onChange) o.onChange(api);
    }
    const reselect = () => select(S.kind, S.poly);
    const list = makeList();
    function rowsText(idx) {  // texts of the given points: an array, or a promise of one (the serve page)
      return o.texts ? o.texts(idx) : Array.from(idx, () => "");
    }
    function makeList() {
      const root = o.list;
      root.innerHTML = '<div class="em-selhead"><b class="em-selcount"></b><button class="em-csv">CSV</button>' +
        '<button class="em-clear">clear</button><span class="em-hint em-time"></span></div>' +
        '<div class="em-scroll"><div class="em-spacer"></div></div>';
      const scroll = root.querySelector(".em-scroll"), spacer = root.querySelector(".em-spacer");
      let queued = 0, ticket = 0;
      const meta = (i) => {
        const parts = ["row " + D.row_id[i], D.labels[D.label[i]]];
        for (const f of fields) { const v = fieldText(f, i); if (v !== "") parts.push(f.name + ": " + v); }
        return parts.join(" · ");
      };
      function rows() {
        queued = 0;
        const idx = S.idx, first = Math.max(0, Math.floor(scroll.scrollTop / ROW_H) - 4);
        const last = Math.min(idx.length, Math.ceil((scroll.scrollTop + scroll.clientHeight) / ROW_H) + 4);
        const part = idx.subarray(first, last), got = rowsText(part), mine = ++ticket;
        const draw = (texts) => {
          if (mine !== ticket) return;
          let html = "";
          for (let k = 0; k < part.length; k++) {
            const i = part[k];
            html += `<div class="em-row" data-row="${D.row_id[i]}" style="top:${(first + k) * ROW_H}px">` +
              `<div class="em-meta">${esc(meta(i))}</div><div class="em-text" title="${esc(texts[k])}">${esc(texts[k])}</div></div>`;
          }
          spacer.innerHTML = html;
        };
        if (Array.isArray(got)) draw(got);
        else { draw(Array.from(part, () => "…")); got.then(draw, () => {}); }
      }
      scroll.addEventListener("scroll", () => { if (!queued) queued = requestAnimationFrame(rows); }, {signal: abort.signal});
      root.querySelector(".em-csv").onclick = () => api.download();
      root.querySelector(".em-clear").onclick = () => select("", null);
      return {
        show() {
          const count = S.idx.length;
          root.querySelector(".em-selcount").textContent = S.poly
            ? `${count.toLocaleString("en")} selected` : "Box, Lasso or shift-drag to select tweets";
          root.querySelector(".em-csv").disabled = !count;
          spacer.style.height = count * ROW_H + "px"; scroll.scrollTop = 0; rows();
        },
        timing(ms) { root.querySelector(".em-time").textContent = ms; },
      };
    }
    function csvText(idx, texts) {
      const ids = D.id || null;  // the tweets' own ids, where the page has them
      const head = ["row_id", ...(ids ? ["id"] : []), "label", "text", ...fields.map((f) => f.name)];
      const values = D.label_values || D.labels, lines = [head.map(csvCell).join(",")];
      for (let k = 0; k < idx.length; k++) {
        const i = idx[k], id = ids ? [ids[i] === null ? "" : ids[i]] : [];
        lines.push([D.row_id[i], ...id, values[D.label[i]], texts[k], ...fields.map((f) => fieldText(f, i))].map(csvCell).join(","));
      }
      return lines.join("\r\n") + "\r\n";
    }
    api.csv = async () => csvText(S.idx, await Promise.resolve(rowsText(S.idx)));
    api.download = async () => {
      const text = await api.csv(), a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([text], {type: "text/csv;charset=utf-8"}));
      a.download = (o.name || "selection") + ".csv"; document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 5000);
    };
    function writeState() {
      if (o.hash === false) return;
      const h = readHash(), hidden = [];
      S.hidden.forEach((v, k) => v && hidden.push(k));
      h.set("color", S.C.key === "label" ? "" : S.C.key); h.set("hide", hidden.join(","));
      h.set("box", S.kind === "box" ? [S.poly[0][0], S.poly[0][1], S.poly[2][0], S.poly[2][1]].join(",") : "");
      h.set("lasso", S.kind === "lasso" ? S.poly.flat().join(",") : "");
      h.set("at", S.home ? "" : [S.cx, S.cy, Math.min(S.W, S.H) / S.s].map(round6).join(","));
      writeHash(h);
    }
    function applyHash() {
      const h = readHash(), nums = (k) => (h.get(k) || "").split(",").filter((v) => v !== "").map(Number);
      const hide = nums("hide"), at = nums("at"), box = nums("box"), lasso = nums("lasso");
      colourBy(fields.some((f) => f.name === h.get("color")) ? h.get("color") : "label", hide);
      if (at.length === 3 && at.every(Number.isFinite) && at[2] > 0) {
        S.W = canvas.clientWidth || 1; S.H = canvas.clientHeight || 1;
        S.home = false; S.cx = at[0]; S.cy = at[1]; S.s = Math.min(S.W, S.H) / at[2];
      } else S.home = true;
      if (box.length === 4 && box.every(Number.isFinite)) {
        const [a, b, c, e] = box; select("box", [[a, b], [c, b], [c, e], [a, e]]);
      } else if (lasso.length >= 6 && lasso.length % 2 === 0 && lasso.every(Number.isFinite)) {
        select("lasso", Array.from({length: lasso.length / 2}, (_, k) => [lasso[2 * k], lasso[2 * k + 1]]));
      } else select("", null);
    }
    function nearest(mx, my) {
      let best = -1, bd = NEAR_PX * NEAR_PX;
      for (let k = n - 1; k >= 0; k--) {  // the last drawn, on top, wins a tie
        const i = S.order[k];
        if (!shown(i)) continue;
        const dx = px(i) - mx, dy = py(i) - my, dd = dx * dx + dy * dy;
        if (dd < bd) { bd = dd; best = i; }
      }
      return best;
    }
    function tip(i, mx, my) {
      const el = o.tip;
      if (!el) return;
      if (i < 0) { el.style.display = "none"; return; }
      const head = D.labels[D.label[i]] + "  ·  row " + D.row_id[i] + (S.clamp && outside(i) ? "  ·  outside the view" : "");
      const extra = fields.map((f) => [f.name, fieldText(f, i)]).filter(([, v]) => v !== "").map(([k, v]) => k + ": " + v);
      const show = (t) => { el.textContent = [head, ...extra, t].join("\n"); };
      const got = rowsText(Int32Array.of(i));
      if (Array.isArray(got)) show(got[0]);
      else { show("…"); got.then((t) => { if (S.tipAt === i) show(t[0]); }, () => {}); }
      S.tipAt = i; el.style.display = "block";
      el.style.left = Math.min(mx + 12, S.W - 370) + "px"; el.style.top = my + 12 + "px";
    }
    const at = (e) => { const b = canvas.getBoundingClientRect(); return [e.clientX - b.left, e.clientY - b.top]; };
    on(canvas, "mousedown", (e) => {
      if (e.button !== 0) return;
      const [mx, my] = at(e), select = e.shiftKey ? "lasso" : S.mode === "pan" ? "" : S.mode;
      S.drag = {x: mx, y: my, x0: mx, y0: my, select, path: [[mx, my]], moved: false};
      e.preventDefault();
    });
    on(window, "mousemove", (e) => {
      const [mx, my] = at(e), g = S.drag;
      if (!g) {
        if (e.target === canvas) tip(nearest(mx, my), mx, my);
        return;
      }
      g.moved = g.moved || Math.abs(mx - g.x0) + Math.abs(my - g.y0) > CLICK_PX;
      if (!g.select) {
        S.cx -= (mx - g.x) / S.s; S.cy += (my - g.y) / S.s; g.x = mx; g.y = my; S.home = false; schedule(); return;
      }
      if (g.select === "box") g.path = [[g.x0, g.y0], [mx, g.y0], [mx, my], [g.x0, my]];
      else { const [lx, ly] = g.path[g.path.length - 1]; if (Math.abs(mx - lx) + Math.abs(my - ly) >= 2) g.path.push([mx, my]); }
      paint();
    });
    on(window, "mouseup", (e) => {
      const g = S.drag;
      if (!g) return;
      S.drag = null;
      const [mx, my] = at(e);
      if (!g.moved) {
        paint();
        const i = nearest(mx, my);
        if (i >= 0 && o.onPick) o.onPick(D.row_id[i], i);
        return;
      }
      if (!g.select) return;
      if (g.select === "box") {
        const xs = [dataX(g.x0), dataX(mx)].map(round6).sort((a, b) => a - b);
        const ys = [dataY(g.y0), dataY(my)].map(round6).sort((a, b) => a - b);
        select("box", [[xs[0], ys[0]], [xs[1], ys[0]], [xs[1], ys[1]], [xs[0], ys[1]]]);
      } else select("lasso", g.path.map(([x, y]) => [round6(dataX(x)), round6(dataY(y))]));
    });
    on(canvas, "mouseleave", () => { if (o.tip) o.tip.style.display = "none"; S.tipAt = -1; });
    on(canvas, "dblclick", () => { S.home = true; render(); });
    on(canvas, "wheel", (e) => {  // zoom about the pointer
      e.preventDefault();
      const [mx0, my0] = at(e), mx = mx0 - S.W / 2, my = my0 - S.H / 2, x = S.cx + mx / S.s, y = S.cy - my / S.s;
      S.s *= e.deltaY > 0 ? 1 / 1.2 : 1.2; S.cx = x - mx / S.s; S.cy = y + my / S.s; S.home = false; schedule();
    }, {passive: false});
    on(window, "resize", schedule);
    on(window, "hashchange", applyHash);
    function tools() {
      const el = o.tools;
      const options = ['<option value="label">label</option>', ...fields.map((f) =>
        `<option value="${esc(f.name)}">${esc(f.name)} (${f.kind === "timestamp" ? "time" : f.kind})</option>`)];
      el.className += " em-tools";
      el.innerHTML = '<label>colour by <select class="em-colour">' + options.join("") + "</select></label>" +
        ["pan", "box", "lasso"].map((m) => `<button data-mode="${m}">${m[0].toUpperCase() + m.slice(1)}</button>`).join("") +
        '<span class="em-hint">shift-drag: lasso · scroll: zoom · double-click: whole map</span>';
      o.colourSelect = el.querySelector(".em-colour");
      o.colourSelect.onchange = () => { colourBy(o.colourSelect.value, []); reselect(); };
      el.querySelectorAll("button[data-mode]").forEach((b) => { b.onclick = () => api.mode(b.dataset.mode); });
    }
    api.mode = (m) => {
      S.mode = m; canvas.style.cursor = m === "pan" ? "grab" : "crosshair";
      o.tools.querySelectorAll("button[data-mode]").forEach((b) => b.classList.toggle("on", b.dataset.mode === m));
    };
    api.select = select;
    api.colourBy = (key) => { colourBy(key, []); reselect(); };
    api.selected = () => S.idx;
    api.selectedRows = () => Array.from(S.idx, (i) => D.row_id[i]);
    api.state = () => ({colour: S.C.key, kind: S.kind, poly: S.poly, count: S.idx.length, mode: S.mode,
      view: {cx: S.cx, cy: S.cy, s: S.s, W: S.W, H: S.H}});
    api.redraw = () => { if (S.img) paint(); };
    api.render = render;
    api.destroy = () => { abort.abort(); clearTimeout(saving); if (pending) cancelAnimationFrame(pending); };
    tools(); api.mode("pan"); applyHash();
    return api;
  }
  return {create, csvCell, readHash, writeHash};
})();
