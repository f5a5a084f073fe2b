// app.js - the GC's web view: renders /api/events (Server-Sent Events).
// Every string from the SR goes in with textContent, never as markup.
"use strict";
let status = null;
let history = [];
const SVG = "http://www.w3.org/2000/svg";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function size(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + u[i];
}
function secs(s) {
  if (s === null || s === undefined || s < 0) return "?";
  s = Math.round(s);
  return s >= 3600 ? Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min"
       : s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s";
}
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
function text(id, t) { document.getElementById(id).textContent = t; }

function renderOperation() {
  const op = status.operation;
  const done = document.getElementById("op-done");
  const bar = document.getElementById("op-bar");
  if (!op) {
    text("op-title", "none");
    done.textContent = "";
    done.dataset.bytes = "0";
    bar.style.width = "0";
    return;
  }
  text("op-title", op.kind + " " + op.vhd + (op.into ? " into " + op.into : "") + " (" + op.phase + ")");
  const pct = op.bytes_total > 0 ? Math.min(100, 100 * op.bytes_done / op.bytes_total) : 0;
  bar.style.width = pct.toFixed(1) + "%";
  done.dataset.bytes = String(op.bytes_done);
  done.textContent = size(op.bytes_done) + " of " + size(op.bytes_total) + " (" + pct.toFixed(1) +
    " %), " + size(op.rate) + "/s, ETA " + secs(op.eta);
}

function renderTotals() {
  const t = status.totals, ops = t.operations;
  const parts = ["merged " + size(t.bytes_coalesced)];
  for (const k of Object.keys(ops))
    parts.push(k + ": " + ops[k].ok + " ok, " + ops[k].error + " failed, " + ops[k].cancelled + " cancelled");
  parts.push("scans " + status.scans, "pid " + status.pid,
             "rate limit " + (status.rate_limit ? size(status.rate_limit) + "/s" : "none"));
  text("totals", parts.join(" · "));
}

function renderChains() {
  const box = clear(document.getElementById("chains"));
  const warn = status.depth_warning, limit = status.depth_limit;
  text("depth-warning", warn);
  text("depth-limit", limit);
  const leaves = status.leaves.slice().sort((a, b) => b.depth - a.depth);
  for (const l of leaves) {
    const row = el("div", "chain");
    row.appendChild(el("span", "name", l.vhd));
    const bar = el("div", "depthbar");
    const fill = el("div", "fill" + (l.depth > limit ? " over" : l.depth >= warn ? " warn" : ""));
    fill.style.width = Math.min(100, 100 * l.depth / limit) + "%";
    bar.appendChild(fill);
    const mark = el("div", "mark");
    mark.style.left = (100 * warn / limit) + "%";
    mark.title = "warning level " + warn;
    bar.appendChild(mark);
    row.appendChild(bar);
    row.appendChild(el("span", "depth", l.depth));
    box.appendChild(row);
  }
  if (!leaves.length) box.appendChild(el("p", null, "no visible leaf"));
}

function nodeItem(n, kids, ops, broken) {
  const op = status.operation;
  const li = el("li");
  const row = el("div", "node" + (n.hidden ? " is-hidden" : "") +
                 (op && (op.vhd === n.vhd || op.into === n.vhd) ? " is-current" : ""));
  row.dataset.vhd = n.vhd;
  row.appendChild(el("span", "name", n.vhd));
  row.appendChild(document.createTextNode(" "));
  row.appendChild(el("span", "badge " + (n.hidden ? "hidden" : "visible"), n.hidden ? "hidden" : "visible"));
  if (n.in_use) row.appendChild(el("span", "badge inuse", "in use"));
  row.appendChild(el("span", "facts", " " + (n.type || "unreadable") + ", virtual " + size(n.virtual_size) +
                     ", file " + size(n.file_size) + ", depth " + n.depth));
  if (broken[n.vhd]) {
    row.appendChild(el("span", "badge broken", "broken"));
    row.appendChild(el("span", "defect", " " + broken[n.vhd]));
  }
  if (op && op.vhd === n.vhd)
    row.appendChild(el("span", "badge current", op.kind + " running"));
  for (const q of ops[n.vhd] || [])
    row.appendChild(el("span", "badge waits", q.kind + (q.into ? " into " + q.into : "") +
                       (q.waits ? ": waits: " + q.waits : ": queued")));
  li.appendChild(row);
  const mine = kids[n.vhd] || [];
  if (mine.length) {
    const ul = el("ul");
    for (const c of mine) ul.appendChild(nodeItem(c, kids, ops, broken));
    li.appendChild(ul);
  }
  return li;
}

function renderForest() {
  const ul = clear(document.getElementById("forest"));
  const kids = Object.create(null), ops = Object.create(null), broken = Object.create(null);
  const names = new Set(status.forest.map(n => n.vhd));
  const roots = [];
  for (const n of status.forest) {
    if (n.parent !== null && names.has(n.parent) && n.parent !== n.vhd)
      (kids[n.parent] = kids[n.parent] || []).push(n);
    else
      roots.push(n);
  }
  for (const q of status.queue) (ops[q.vhd] = ops[q.vhd] || []).push(q);
  for (const b of status.broken) broken[b.vhd] = b.defect;
  for (const r of roots) ul.appendChild(nodeItem(r, kids, ops, broken));
}

function renderQueue() {
  const body = clear(document.querySelector("#queue tbody"));
  for (const q of status.queue) {
    const tr = el("tr");
    tr.appendChild(el("td", null, q.kind));
    tr.appendChild(el("td", "vhd", q.vhd));
    tr.appendChild(el("td", "vhd", q.into || ""));
    tr.appendChild(el("td", null, size(q.bytes)));
    tr.appendChild(el("td", null, q.chain_depth));
    tr.appendChild(el("td", null, q.waits || ""));
    body.appendChild(tr);
  }
  text("queue-bytes", status.queue.length + " operation(s), " + size(status.queue_bytes) + " to move");
}

function renderErrors() {
  const ul = clear(document.getElementById("errors"));
  for (const e of status.errors.slice().reverse())
    ul.appendChild(el("li", null, new Date(e.time * 1000).toISOString() + " " + e.message));
  if (!status.errors.length) ul.appendChild(el("li", "none", "none"));
}

function svg(tag, attrs, content) {
  const e = document.createElementNS(SVG, tag);
  for (const k of Object.keys(attrs)) e.setAttribute(k, attrs[k]);
  if (content !== undefined) e.textContent = content;
  return e;
}

function renderChart() {
  const c = clear(document.getElementById("chart"));
  const W = 800, H = 200, L = 70, R = 70, T = 10, B = 25;
  const now = Date.now() / 1000, t0 = now - 3600;
  const pts = history.filter(s => s.time >= t0);
  c.appendChild(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  c.appendChild(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  c.appendChild(svg("line", { x1: W - R, y1: T, x2: W - R, y2: H - B, class: "axis" }));
  c.appendChild(svg("text", { x: L, y: H - 5 }, "-60 min"));
  c.appendChild(svg("text", { x: W - R - 20, y: H - 5 }, "now"));
  if (pts.length < 1) return;
  const base = pts[0].bytes;
  const maxB = Math.max(1, ...pts.map(s => s.bytes - base));
  const maxR = Math.max(1, ...pts.map(s => s.rate));
  const x = t => L + (W - L - R) * (t - t0) / 3600;
  const yb = b => H - B - (H - B - T) * b / maxB;
  const yr = r => H - B - (H - B - T) * r / maxR;
  c.appendChild(svg("polyline", { class: "bytes", points: pts.map(s => x(s.time) + "," + yb(s.bytes - base)).join(" ") }));
  c.appendChild(svg("polyline", { class: "rate", points: pts.map(s => x(s.time) + "," + yr(s.rate)).join(" ") }));
  c.appendChild(svg("text", { x: 2, y: T + 10 }, size(maxB)));
  c.appendChild(svg("text", { x: W - R + 4, y: T + 10 }, size(maxR) + "/s"));
}

function renderAll() {
  text("sr", status.sr);
  document.title = "vhd gc " + status.sr;
  const st = document.getElementById("state");
  st.textContent = status.state;
  text("note", status.note);
  renderOperation();
  renderChains();
  renderForest();
  renderQueue();
  renderErrors();
  renderTotals();
}

function opKey(op) { return op ? op.kind + "\u0000" + op.vhd : ""; }

function connect() {
  const live = document.getElementById("live");
  const es = new EventSource("/api/events");
  es.onopen = () => { live.textContent = "live"; live.className = "badge on"; };
  es.onerror = () => { live.textContent = "disconnected"; live.className = "badge off"; };
  es.addEventListener("status", ev => { status = JSON.parse(ev.data); renderAll(); });
  es.addEventListener("progress", ev => {
    if (!status) return;
    const p = JSON.parse(ev.data);
    const moved = opKey(p.operation) !== opKey(status.operation);
    Object.assign(status, p);
    if (moved) renderAll(); else { renderOperation(); renderTotals(); }
  });
  es.addEventListener("history", ev => { history = JSON.parse(ev.data); renderChart(); });
  es.addEventListener("sample", ev => {
    history.push(JSON.parse(ev.data));
    if (history.length > 720) history.shift();
    renderChart();
  });
}

document.addEventListener("DOMContentLoaded", connect);
