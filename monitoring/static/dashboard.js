// sagewalk dashboard: polls /api/picture and draws each chart as inline SVG.
// No libraries and no network beyond the dashboard itself, so it works on an
// air-gapped training host.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
                 "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
const W = 460, H = 190, PAD = {left: 46, right: 10, top: 8, bottom: 22};

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
                                      : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "—";
  const a = Math.abs(value);
  if (a >= 1e9) return (value / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (value / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (value / 1e3).toFixed(1) + "k";
  if (Number.isInteger(value)) return String(value);
  if (a >= 100) return value.toFixed(0);
  if (a >= 0.001) return String(Number(value.toPrecision(3)));
  return value.toExponential(1);
}

// Tiles carry their unit in the label: "(bytes)", "(s)", "progress".
function fmtTile(label, value) {
  if (value === null || value === undefined) return "—";
  if (label.includes("progress")) return (value * 100).toFixed(0) + "%";
  if (label.includes("(bytes)")) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    return value.toFixed(i ? 1 : 0) + " " + units[i];
  }
  if (label.includes("(s)")) return value < 120 ? value.toFixed(0) + " s"
                                                 : (value / 60).toFixed(0) + " min";
  return fmt(value);
}

// A round step (1, 2 or 5 times a power of ten) giving about four grid lines.
function niceStep(span) {
  const raw = span / 4, power = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / power;
  return power * (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10);
}

// history: [{time, charts: {key: {line: value}}}] -> {line: [[t, v], ...]}
function seriesOf(history, key) {
  const series = {};
  for (const p of history) {
    for (const [line, value] of Object.entries(p.charts[key] || {})) {
      if (!(line in series)) series[line] = [];
      if (value !== null) series[line].push([p.time, value]);
    }
  }
  return series;
}

function drawChart(spec, history) {
  const series = seriesOf(history, spec.key);
  const lines = Object.keys(series);
  const points = lines.reduce((n, l) => n + series[l].length, 0);
  const box = el("div", {class: "chart", id: "chart-" + spec.key});
  const title = el("h2", {}, spec.title + " ");
  title.appendChild(el("span", {class: "unit"}, spec.unit));
  box.appendChild(title);
  const svg = el("svg:svg", {viewBox: `0 0 ${W} ${H}`, "data-chart": spec.key,
                             "data-points": String(points), role: "img",
                             "aria-label": spec.title});
  box.appendChild(svg);
  if (points === 0) {
    svg.appendChild(el("svg:text", {x: W / 2, y: H / 2, "text-anchor": "middle",
                                    class: "empty"}, "no data yet"));
    return box;
  }
  const all = lines.flatMap(l => series[l]);
  const t0 = Math.min(...all.map(p => p[0])), t1 = Math.max(...all.map(p => p[0]));
  let lo = Math.min(0, ...all.map(p => p[1])), hi = Math.max(...all.map(p => p[1]));
  if (hi <= lo) hi = lo + 1;
  const step = niceStep(hi - lo);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi * 1.02 / step) * step;
  const x = t => PAD.left + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * (W - PAD.left - PAD.right);
  const y = v => H - PAD.bottom - (v - lo) / (hi - lo) * (H - PAD.top - PAD.bottom);
  drawAxes(svg, lo, hi, step, y, t1 - t0);
  const legend = el("div", {class: "legend"});
  lines.forEach((line, i) => {
    const colour = COLOURS[i % COLOURS.length], pts = series[line];
    if (pts.length > 1) {
      svg.appendChild(el("svg:polyline", {
        points: pts.map(p => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "),
        fill: "none", stroke: colour, "stroke-width": 1.8, "data-line": line}));
    }
    const last = pts[pts.length - 1];
    if (last) {
      svg.appendChild(el("svg:circle", {cx: x(last[0]).toFixed(1), cy: y(last[1]).toFixed(1),
                                        r: 2.8, fill: colour, "data-line": line}));
    }
    const item = el("span", {});
    item.appendChild(el("span", {class: "swatch", style: `background:${colour}`}));
    item.appendChild(document.createTextNode(`${line} ${fmt(last ? last[1] : null)}`));
    legend.appendChild(item);
  });
  box.appendChild(legend);
  return box;
}

function drawAxes(svg, lo, hi, step, y, span) {
  for (let i = 0; lo + i * step <= hi + step / 1e6; i++) {
    const v = Number((lo + i * step).toPrecision(6)), yy = y(v).toFixed(1);
    svg.appendChild(el("svg:line", {x1: PAD.left, x2: W - PAD.right, y1: yy, y2: yy,
                                    class: "axis", "stroke-opacity": i ? 0.4 : 1}));
    svg.appendChild(el("svg:text", {x: PAD.left - 4, y: Number(yy) + 3, "text-anchor": "end",
                                    class: "tick"}, fmt(v)));
  }
  svg.appendChild(el("svg:text", {x: W - PAD.right, y: H - 6, "text-anchor": "end",
                                  class: "tick"}, `last ${Math.round(span)} s`));
}

function drawHeader(state) {
  const latest = state.history[state.history.length - 1];
  const error = document.getElementById("error");
  error.hidden = !state.error;
  error.textContent = state.error ? "refresh failed: " + state.error : "";
  if (!latest) return;
  document.getElementById("source").textContent = latest.source;
  document.getElementById("updated").textContent =
      "updated " + new Date(latest.time * 1000).toLocaleTimeString();
  const targets = document.getElementById("targets");
  targets.replaceChildren(...latest.targets.map(t => el("span", {
      class: "target " + (t.up ? "up" : "down"), title: t.error || "up"},
      `${t.role} ${t.address} ${t.up ? "up" : "down"}`)));
  const tiles = document.getElementById("tiles");
  tiles.replaceChildren(...Object.entries(latest.tiles).map(([label, value]) => {
    const tile = el("div", {class: "tile"});
    tile.appendChild(el("div", {class: "label"}, label));
    tile.appendChild(el("div", {class: "value"}, fmtTile(label, value)));
    return tile;
  }));
}

async function refresh() {
  let delay = 2000;
  try {
    const reply = await fetch("/api/picture", {cache: "no-store"});
    const state = await reply.json();
    delay = Math.max(500, state.interval * 1000);
    drawHeader(state);
    document.getElementById("charts").replaceChildren(
        ...state.charts.map(spec => drawChart(spec, state.history)));
    document.body.dataset.refreshed = String(state.history.length);
  } catch (err) {
    const error = document.getElementById("error");
    error.hidden = false;
    error.textContent = "dashboard unreachable: " + err;
  }
  setTimeout(refresh, delay);
}

refresh();
