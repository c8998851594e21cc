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
  if (a >= 1e3) return (value / 1e3).toFixed(1) + "k";
  if (a >= 10 || value === 0) return value.toFixed(a >= 100 ? 0 : 1);
  if (a >= 0.01) return value.toFixed(3);
  return value.toExponential(1);
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
  hi += (hi - lo) * 0.08;
  const x = t => PAD.left + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * (W - PAD.left - PAD.right);
  const y = v => H - PAD.bottom - (v - lo) / (hi - lo) * (H - PAD.top - PAD.bottom);
  drawAxes(svg, lo, hi, y, t1 - t0);
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

function drawAxes(svg, lo, hi, y, span) {
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4, yy = y(v).toFixed(1);
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
    tile.appendChild(el("div", {class: "value"}, fmt(value)));
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
