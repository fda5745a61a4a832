// failwhale's built-in live dashboard: draws one board of dashboards/panels.yaml.
//
// Plain JavaScript, no build step. The only library is uPlot (static/vendor/uplot), loaded
// before this file. Everything comes from this page's own server: /panels.json for the spec,
// /api/v1/query and /api/v1/query_range for Prometheus's answers.
//
// Tests and the screenshot camera read the DOM: the body's data-board, data-state
// (loading|ready|error) and data-refreshes, every panel's <section class="panel"> with its
// data-* attributes, and #clock-wall, #clock-scenario, #updated and #error. Keep them as they are.

(function () {
  "use strict";

  const FIXED_COLORS = { web: "#1f77b4", app: "#ff7f0e" };
  // Colours for every other series, picked by a hash of its name (so the same name gets the
  // same colour on every refresh). The two fixed colours above are left out on purpose.
  const PALETTE = [
    "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354", "#756bb1",
  ];
  // Background shades for threshold colours given by name; data-color keeps the spec's word.
  const TILE_COLORS = {
    green: "#1e7b34", red: "#c0262d", orange: "#d9670b", yellow: "#e0b000",
    blue: "#1f5fa8", purple: "#6a3d9a", grey: "#6b7280", gray: "#6b7280",
  };
  const FETCH_TIMEOUT_MS = 10000;
  const PLOT_HEIGHT = 210;

  const $ = (id) => document.getElementById(id);
  const body = document.body;

  const S = {
    board: "overview",
    spec: null,          // the answer of /panels.json
    panels: [],          // one state object per panel, in spec order
    clock: [],           // scenario clock samples [[wall s, scenario s], ...], sorted by wall time
    clockStep: 1,
    marks: [],           // annotation runs: {color, text, from, to}
    refreshes: 0,
    lastError: "",
  };

  // ---------------------------------------------------------------- formatting

  const pad2 = (n) => String(n).padStart(2, "0");

  function hhmmss(sec) {
    const d = new Date(sec * 1000);
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }

  function scenarioText(sec) {
    const sign = sec < 0 ? "-" : "+";
    const a = Math.floor(Math.abs(sec) + 1e-6);
    return `T${sign}${pad2(Math.floor(a / 60))}:${pad2(a % 60)}`;
  }

  // A number with at most `sig` significant digits and no trailing zeros.
  function num(v, sig) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    const digits = a >= 10 ** sig ? 0 : Math.max(0, sig - 1 - Math.floor(Math.log10(a)));
    return String(parseFloat(v.toFixed(Math.min(digits, 12))));
  }

  function shortNum(v, sig) {
    const a = Math.abs(v);
    if (a >= 1e9) return num(v / 1e9, sig) + "G";
    if (a >= 1e6) return num(v / 1e6, sig) + "M";
    if (a >= 1e4) return num(v / 1e3, sig) + "K";
    return num(v, sig);
  }

  // A value for text: stat tiles, legends, tables.
  function fmtValue(v, unit) {
    if (v == null) return "–";
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
    switch (unit) {
      case "percentunit":
        return num(v * 100, Math.abs(v) >= 0.1 ? 3 : 2) + "%";
      case "s":
        if (v === 0) return "0 s";
        return Math.abs(v) < 1 ? num(v * 1000, 3) + " ms" : num(v, 3) + " s";
      case "reqps":
        return shortNum(v, 3) + "/s";
      default:
        return shortNum(v, 3);
    }
  }

  // How many decimals a tick increment has (2.5 -> 1, 0.25 -> 2, 20 -> 0).
  function decimals(incr) {
    if (!(incr > 0) || !Number.isFinite(incr)) return 0;
    const s = parseFloat(incr.toPrecision(6)).toFixed(9).replace(/0+$/, "");
    const dot = s.indexOf(".");
    return dot < 0 ? 0 : Math.min(9, s.length - dot - 1);
  }

  // A tick label: as many decimals as the tick increment needs.
  function fmtTick(v, unit, incr) {
    if (v == null) return "";
    if (v === 0) return unit === "percentunit" ? "0%" : "0";
    switch (unit) {
      case "percentunit":
        return (v * 100).toFixed(decimals(incr * 100)) + "%";
      case "s":
        if (Math.abs(v) < 1) return (v * 1000).toFixed(decimals(incr * 1000)) + " ms";
        return v.toFixed(decimals(incr)) + " s";
      case "reqps":
        return tickShort(v, incr) + "/s";
      default:
        return tickShort(v, incr);
    }
  }

  function tickShort(v, incr) {
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(decimals(incr / 1e6)) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(decimals(incr / 1e3)) + "K";
    return v.toFixed(decimals(incr));
  }

  // Grafana-style series names: {{label}} is replaced by that label's value.
  function fillTemplate(template, labels) {
    return template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, k) => (labels[k] ?? ""));
  }

  function seriesName(query, metric) {
    if (query.legend) return fillTemplate(query.legend, metric);
    const { __name__: name = "", ...rest } = metric;
    const inner = Object.keys(rest).sort().map((k) => `${k}="${rest[k]}"`).join(", ");
    return inner ? `${name}{${inner}}` : (name || query.expr);
  }

  function hashString(s) {
    let h = 2166136261;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    return h >>> 0;
  }

  // The colour of a series: fixed for web and app, else from the palette by name. A panel
  // remembers what it gave out, so two of its series do not share a colour while the palette
  // lasts and a series keeps its colour for as long as the page is open.
  function colorFor(panel, name) {
    if (FIXED_COLORS[name]) return FIXED_COLORS[name];
    const memo = panel.colors;
    if (memo.has(name)) return memo.get(name);
    const used = new Set(memo.values());
    const start = hashString(name) % PALETTE.length;
    let color = PALETTE[start];
    for (let i = 0; i < PALETTE.length; i++) {
      const c = PALETTE[(start + i) % PALETTE.length];
      if (!used.has(c)) { color = c; break; }
    }
    memo.set(name, color);
    return color;
  }

  const naturalCompare = (a, b) => a.localeCompare(b, undefined, { numeric: true });

  function parseValue(v) {
    const f = parseFloat(v);
    return Number.isNaN(f) && v !== "NaN" ? null : f;
  }

  // ---------------------------------------------------------------- fetching

  async function getJSON(url) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      let resp;
      try {
        resp = await fetch(url, { signal: ctl.signal, cache: "no-store" });
      } catch (e) {
        if (e && e.name === "AbortError") {
          throw new Error(`the dashboard server did not answer within ${FETCH_TIMEOUT_MS / 1000} s`);
        }
        throw new Error("the dashboard server did not answer");
      }
      let data = null;
      try {
        data = await resp.json();
      } catch (e) {
        data = null;
      }
      if (!resp.ok || data == null || typeof data !== "object" || data.status === "error" || data.error) {
        const msg = data && typeof data === "object" && data.error
          ? String(data.error)
          : `HTTP ${resp.status}${resp.statusText ? " " + resp.statusText : ""} from ${url.split("?")[0]}`;
        const err = new Error(msg);
        err.status = resp.status;
        throw err;
      }
      return data;
    } finally {
      clearTimeout(timer);
    }
  }

  async function promRange(expr, view) {
    const q = new URLSearchParams({ query: expr, start: String(view.start), end: String(view.end), step: String(view.step) });
    const data = await getJSON(`/api/v1/query_range?${q}`);
    return (data.data && data.data.result) || [];
  }

  async function promInstant(expr, time) {
    const q = new URLSearchParams({ query: expr, time: String(time) });
    const data = await getJSON(`/api/v1/query?${q}`);
    const d = data.data || {};
    if (d.resultType === "scalar" || d.resultType === "string") {
      return [{ metric: {}, value: d.result }];
    }
    return d.result || [];
  }

  // ---------------------------------------------------------------- scenario time

  // Scenario seconds at a wall time, interpolated between two neighbouring clock samples;
  // null where the clock has no samples (no scenario played then).
  function scenarioAt(wall) {
    const c = S.clock;
    if (!c.length || wall < c[0][0] || wall > c[c.length - 1][0]) return null;
    let lo = 0;
    let hi = c.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (c[mid][0] <= wall) lo = mid; else hi = mid;
    }
    const [t0, s0] = c[lo];
    const [t1, s1] = c[hi];
    if (wall === t0) return s0;
    if (wall === t1) return s1;
    if (t1 - t0 > S.clockStep * 1.5 + 1e-6 || s1 < s0) return null;
    return s0 + (s1 - s0) * (wall - t0) / (t1 - t0);
  }

  // Contiguous runs of clock samples: one per scenario that played in the window.
  function clockSegments() {
    const segments = [];
    let seg = null;
    for (const sample of S.clock) {
      const prev = seg && seg[seg.length - 1];
      if (prev && sample[0] - prev[0] <= S.clockStep * 1.5 + 1e-6 && sample[1] >= prev[1]) {
        seg.push(sample);
      } else {
        seg = [sample];
        segments.push(seg);
      }
    }
    return segments;
  }

  const SCENARIO_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

  // Where the scenario-time axis has ticks: wall times at round scenario times (every 30 s of
  // scenario time, say), found by interpolating between the clock's samples backwards, so a
  // scenario played faster than real time still gets its ticks. No clock, no ticks.
  function scenarioSplits(u, axisIdx, scaleMin, scaleMax) {
    const splits = [];
    const px = uPlot.pxRatio || 1;
    const pxPerWall = (u.bbox.width / px) / Math.max(1e-9, scaleMax - scaleMin);
    for (const seg of clockSegments()) {
      const [tFirst, sFirst] = seg[0];
      const [tLast, sLast] = seg[seg.length - 1];
      if (tLast < scaleMin || tFirst > scaleMax) continue;
      const rate = tLast > tFirst && sLast > sFirst ? (sLast - sFirst) / (tLast - tFirst) : 1;
      const pxPerScenario = pxPerWall / rate;
      const incr = SCENARIO_INCRS.find((i) => i * pxPerScenario >= 60) || SCENARIO_INCRS[SCENARIO_INCRS.length - 1];
      let found = 0;
      let i = 0;
      for (let target = Math.ceil(sFirst / incr) * incr; target <= sLast; target += incr) {
        while (i < seg.length - 2 && seg[i + 1][1] < target) i++;
        const [t0, s0] = seg[i];
        const [t1, s1] = seg[Math.min(i + 1, seg.length - 1)];
        const wall = s1 > s0 ? t0 + (target - s0) * (t1 - t0) / (s1 - s0) : t0;
        if (wall >= scaleMin && wall <= scaleMax) {
          splits.push(wall);
          found++;
        }
      }
      // A scenario too short for a round tick still gets one, where its clock starts.
      if (!found && tFirst >= scaleMin && tFirst <= scaleMax) splits.push(tFirst);
    }
    return splits;
  }

  function applyClock(result, view) {
    const samples = [];
    for (const r of result) {
      for (const [t, v] of r.values || []) {
        const s = parseValue(v);
        if (s != null && Number.isFinite(s)) samples.push([t, s]);
      }
    }
    samples.sort((a, b) => a[0] - b[0]);
    S.clock = samples;
    S.clockStep = view.step;
    const last = samples[samples.length - 1];
    const fresh = last && last[0] >= view.end - Math.max(3 * view.step, 2 * S.spec.refresh_s);
    $("clock-scenario").textContent = fresh ? scenarioText(last[1]) : "no scenario running";
    body.classList.toggle("scenario-running", !!fresh);
  }

  // ---------------------------------------------------------------- annotations

  function applyAnnotations(answers, view) {
    const marks = [];
    S.spec.annotations.forEach((ann, i) => {
      const result = answers[i];
      if (!result) return;
      for (const r of result) {
        const text = fillTemplate(ann.text, r.metric || {});
        let run = null;
        for (const [t, v] of r.values || []) {
          const f = parseValue(v);
          const on = f != null && f > 0;
          if (on && run && t - run.to <= view.step * 1.5 + 1e-6) {
            run.to = t;
          } else if (on) {
            run = { color: ann.color, text, title: ann.title, from: t, to: t };
            marks.push(run);
          } else {
            run = null;
          }
        }
      }
    });
    marks.sort((a, b) => a.from - b.from);
    return marks;
  }

  function withAlpha(ctx, color, alpha) {
    ctx.globalAlpha = alpha;
    ctx.fillStyle = color;
    ctx.strokeStyle = color;
  }

  // uPlot draw hook: every annotation run as a line (one point) or a band (several), with its
  // text at the top of the plot, on the canvas.
  function drawMarks(u) {
    if (!S.marks.length) return;
    const ctx = u.ctx;
    const px = uPlot.pxRatio || 1;
    const { left, top, width, height } = u.bbox;
    const right = left + width;
    const fontPx = Math.round(10.5 * px);
    const rowH = Math.round(13 * px);
    const placed = [];  // labels drawn: [x0, x1, row, text, color]
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    ctx.font = `600 ${fontPx}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    // First every line and band, then the labels over them.
    const visible = [];
    for (const m of S.marks) {
      const x0 = u.valToPos(m.from, "x", true);
      const x1 = u.valToPos(m.to, "x", true);
      if (x1 < left - 1 || x0 > right + 1) continue;
      visible.push([m, x0]);
      if (m.to > m.from) {
        withAlpha(ctx, m.color, 0.14);
        ctx.fillRect(x0, top, Math.max(x1 - x0, px), height);
      }
      withAlpha(ctx, m.color, 0.85);
      ctx.lineWidth = Math.max(1, Math.round(1.5 * px));
      ctx.setLineDash(m.to > m.from ? [] : [Math.round(4 * px), Math.round(3 * px)]);
      ctx.beginPath();
      ctx.moveTo(Math.round(x0) + 0.5, top);
      ctx.lineTo(Math.round(x0) + 0.5, top + height);
      ctx.stroke();
      ctx.setLineDash([]);
    }

    // A label goes to the right of its mark (to its left near the right edge), on the first
    // row where it overlaps no other label. The same words again right next to their last
    // label (a rollout's waves) are not repeated.
    for (const [m, x0] of visible) {
      const w = ctx.measureText(m.text).width + 6 * px;
      if (placed.some(([a, b, , text, color]) => text === m.text && color === m.color && x0 >= a - w && x0 <= b + w)) continue;
      let lx = x0 + 3 * px;
      if (lx + w > right) lx = Math.max(left, x0 - 3 * px - w);
      let row = 0;
      while (row < 4 && placed.some(([a, b, r]) => r === row && lx < b && lx + w > a)) row++;
      placed.push([lx, lx + w, row, m.text, m.color]);
      const ly = top + 2 * px + row * rowH;
      ctx.globalAlpha = 0.85;
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(lx, ly - 1 * px, w, rowH - 1 * px);
      ctx.globalAlpha = 1;
      ctx.fillStyle = m.color;
      ctx.fillText(m.text, lx + 3 * px, ly);
    }
    ctx.restore();
  }

  // ---------------------------------------------------------------- panels: building

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }

  function buildPanel(spec) {
    const section = el("section", {
      class: `panel panel-${spec.kind}`,
      id: `panel-${spec.id}`,
      "data-panel": spec.id,
      "data-kind": spec.kind,
      "data-series": "0",
    });
    const head = el("header", { class: "panel-head" });
    const h2 = el("h2", { title: spec.description }, spec.title);
    head.append(h2, el("p", { class: "panel-desc", title: spec.description }, spec.description));
    section.append(head);
    const p = { spec, el: section, colors: new Map(), view: null, chart: null, key: null };

    if (spec.kind === "timeseries") {
      section.setAttribute("data-points", "0");
      section.setAttribute("data-last", "{}");
      p.plotEl = el("div", { class: "plot" });
      p.emptyEl = el("div", { class: "plot-empty", hidden: "" }, spec.empty);
      const wrap = el("div", { class: "plot-wrap" });
      wrap.append(p.plotEl, p.emptyEl);
      section.append(wrap);
      if (typeof ResizeObserver === "function") {
        p.resize = new ResizeObserver(() => resizeChart(p));
        p.resize.observe(p.plotEl);
      }
    } else if (spec.kind === "stat") {
      section.setAttribute("data-value", "");
      section.setAttribute("data-color", "");
      section.setAttribute("data-text", "");
      p.valueEl = el("div", { class: "stat-value" }, "…");
      const tile = el("div", { class: "stat-tile" });
      tile.append(p.valueEl);
      p.tileEl = tile;
      section.append(tile);
    } else {
      section.setAttribute("data-rows", "0");
      p.tableEl = el("div", { class: "table-wrap" });
      section.append(p.tableEl);
    }
    return p;
  }

  function renderHeader(data) {
    const board = data.board;
    document.title = board.title;
    $("board-title").textContent = board.title;
    $("board-description").textContent = board.description;
    const nav = $("boards");
    nav.textContent = "";
    for (const b of data.boards || []) {
      const a = el("a", { href: `/?board=${encodeURIComponent(b.id)}`, title: b.description }, b.title.replace(/^failwhale:\s*/, ""));
      if (b.id === board.id) a.setAttribute("aria-current", "page");
      nav.append(a);
    }
  }

  // ---------------------------------------------------------------- panels: timeseries

  function plotWidth(p) {
    return Math.max(240, Math.floor(p.plotEl.clientWidth || p.el.clientWidth - 24 || 480));
  }

  function resizeChart(p) {
    if (!p.chart) return;
    const w = plotWidth(p);
    if (Math.abs(w - p.chart.width) >= 2) p.chart.setSize({ width: w, height: PLOT_HEIGHT });
  }

  function yRange(spec, dmin, dmax) {
    const hasMin = spec.min != null;
    const hasMax = spec.max != null;
    if (hasMin && hasMax) return [spec.min, spec.max];
    let lo = hasMin ? spec.min : dmin;
    let hi = hasMax ? spec.max : dmax;
    if (lo == null || !Number.isFinite(lo)) lo = hasMax ? Math.min(0, spec.max - 1) : 0;
    if (hi == null || !Number.isFinite(hi)) hi = lo + 1;
    if (hi <= lo) hi = lo + (Math.abs(lo) > 0 ? Math.abs(lo) : 1);
    const nice = uPlot.rangeNum(lo, hi, 0.1, true);
    return [hasMin ? spec.min : nice[0], hasMax ? spec.max : nice[1]];
  }

  function makeChart(p, names, data) {
    const spec = p.spec;
    const unit = spec.unit;
    const lastOf = (si) => p.last[si - 1];
    const colors = names.map((name) => colorFor(p, name));
    const opts = {
      width: plotWidth(p),
      height: PLOT_HEIGHT,
      pxAlign: 0,
      scales: {
        x: { time: true, range: () => [p.view.start, p.view.end] },
        y: { range: (u, dmin, dmax) => yRange(spec, dmin, dmax) },
      },
      series: [
        {
          label: "time",
          value: (u, v) => {
            if (v == null) return "now";
            const s = scenarioAt(v);
            return s == null ? hhmmss(v) : `${hhmmss(v)} (${scenarioText(s)})`;
          },
        },
        ...names.map((name) => ({
          label: name,
          stroke: colorFor(p, name),  // the same as colors[i]
          width: 1.75,
          spanGaps: false,
          points: { size: 4 },
          // Without a cursor on the plot, the legend shows each series's latest value.
          value: (u, v, si, idx) => fmtValue(idx == null ? lastOf(si) : v, unit),
        })),
      ],
      axes: [
        {
          scale: "x",
          side: 2,
          space: 75,
          size: 30,
          values: (u, splits) => splits.map((v) => hhmmss(v)),
          grid: { stroke: "#e6e8eb", width: 1 },
          ticks: { stroke: "#c9ced6", width: 1, size: 5 },
        },
        {
          scale: "x",
          side: 0,
          space: 75,
          size: 22,
          stroke: "#6a3d9a",
          splits: scenarioSplits,
          values: (u, splits) => splits.map((v) => {
            const s = scenarioAt(v);
            return s == null ? "" : scenarioText(Math.round(s));
          }),
          grid: { show: false },
          ticks: { stroke: "#c9b6e0", width: 1, size: 4 },
        },
        {
          scale: "y",
          side: 3,
          space: 28,
          values: (u, splits, ai, space, incr) => splits.map((v) => fmtTick(v, unit, incr)),
          size: (u, values) => {
            if (!values) return 48;
            const longest = values.reduce((m, v) => Math.max(m, (v || "").length), 0);
            return Math.max(36, Math.ceil(longest * 6.6 + 16));
          },
          grid: { stroke: "#e6e8eb", width: 1 },
          ticks: { stroke: "#c9ced6", width: 1, size: 4 },
        },
      ],
      legend: {
        show: true,
        live: true,
        markers: { width: 0, fill: (u, si) => (si > 0 ? colors[si - 1] : "transparent") },
      },
      cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
      hooks: { draw: [(u) => { try { drawMarks(u); } catch (e) { console.warn("annotations:", e); } }] },
    };
    return new uPlot(opts, data, p.plotEl);
  }

  function updateTimeseries(p, answers, view) {
    const n = Math.round((view.end - view.start) / view.step) + 1;
    const xs = new Array(n);
    for (let k = 0; k < n; k++) xs[k] = view.start + k * view.step;

    const series = [];
    answers.forEach((result, qi) => {
      const query = p.spec.queries[qi];
      const items = result.map((r) => ({ name: seriesName(query, r.metric || {}), r }));
      items.sort((a, b) => naturalCompare(a.name, b.name));
      for (const { name, r } of items) {
        const ys = new Array(n).fill(null);
        for (const [t, v] of r.values || []) {
          const k = Math.round((t - view.start) / view.step);
          const f = parseValue(v);
          if (k >= 0 && k < n && f != null && Number.isFinite(f)) ys[k] = f;
        }
        series.push({ name, ys });
      }
    });

    // Names are keys (data-last, colours, legend): make repeated ones unique.
    const seen = new Map();
    for (const s of series) {
      const count = (seen.get(s.name) || 0) + 1;
      seen.set(s.name, count);
      if (count > 1) s.name = `${s.name} (${count})`;
    }

    let points = 0;
    const last = {};
    p.last = series.map((s) => {
      let lastVal = null;
      for (const y of s.ys) {
        if (y != null) { points++; lastVal = y; }
      }
      if (lastVal != null) last[s.name] = lastVal;
      return lastVal;
    });

    p.view = view;
    const names = series.map((s) => s.name);
    const data = [xs, ...series.map((s) => s.ys)];
    const key = names.join("\u0000");
    if (!p.chart || p.key !== key) {
      if (p.chart) p.chart.destroy();
      p.plotEl.textContent = "";
      p.chart = makeChart(p, names, data);
      p.key = key;
    } else {
      p.chart.setData(data);
    }

    p.emptyEl.hidden = points > 0;
    p.el.setAttribute("data-series", String(series.length));
    p.el.setAttribute("data-points", String(points));
    p.el.setAttribute("data-last", JSON.stringify(last));
  }

  // ---------------------------------------------------------------- panels: stat and table

  function updateStat(p, answers) {
    const spec = p.spec;
    const all = answers.flat();
    let value = null;
    let text = spec.empty;
    let color = "";
    if (all.length) {
      const raw = all[0].value ? all[0].value[1] : undefined;
      value = parseValue(raw);
    }
    if (value != null) {
      const mapping = spec.mappings.find((m) => m.value === value);
      text = mapping ? mapping.text : fmtValue(value, spec.unit);
      for (const t of spec.thresholds) {
        if (t.value == null || value >= t.value) color = t.color;
      }
    }
    p.el.setAttribute("data-series", String(all.length));
    p.el.setAttribute("data-value", value == null ? "" : String(value));
    p.el.setAttribute("data-color", color);
    p.el.setAttribute("data-text", text);
    p.valueEl.textContent = text;
    p.valueEl.title = value == null ? "" : fmtValue(value, spec.unit);
    p.tileEl.style.backgroundColor = color ? (TILE_COLORS[color.toLowerCase()] || color) : "";
    p.tileEl.classList.toggle("has-color", !!color);
    p.tileEl.classList.toggle("no-data", value == null);
  }

  function updateTable(p, answers) {
    const spec = p.spec;
    const rows = answers.flat().map((r) => ({
      cells: spec.columns.map((c) => (r.metric && r.metric[c]) || ""),
      value: parseValue(r.value ? r.value[1] : undefined),
    }));
    rows.sort((a, b) => {
      for (let i = 0; i < a.cells.length; i++) {
        const c = naturalCompare(a.cells[i], b.cells[i]);
        if (c) return c;
      }
      return 0;
    });
    const showValue = rows.some((r) => r.value !== 1);
    p.el.setAttribute("data-series", String(rows.length));
    p.el.setAttribute("data-rows", String(rows.length));
    const wrap = p.tableEl;
    wrap.textContent = "";
    if (!rows.length) {
      wrap.append(el("p", { class: "empty" }, spec.empty));
      return;
    }
    const table = el("table");
    const thead = el("thead");
    const hr = el("tr");
    for (const c of spec.columns) hr.append(el("th", { scope: "col" }, c));
    if (showValue) hr.append(el("th", { scope: "col", class: "num" }, "value"));
    thead.append(hr);
    const tbody = el("tbody");
    for (const r of rows) {
      const tr = el("tr");
      for (const c of r.cells) tr.append(el("td", {}, c));
      if (showValue) {
        tr.append(el("td", { class: "num" }, fmtValue(r.value, spec.unit)));
        if (r.value === 0) tr.classList.add("zero");
      }
      tbody.append(tr);
    }
    table.append(thead, tbody);
    wrap.append(table);
  }

  // ---------------------------------------------------------------- the refresh loop

  function showError(msg) {
    const e = $("error");
    if (msg) {
      e.textContent = msg;
      e.title = msg;
      e.hidden = false;
    } else {
      e.textContent = "";
      e.title = "";
      e.hidden = true;
    }
    S.lastError = msg || "";
  }

  async function refresh() {
    const spec = S.spec;
    const step = Math.max(1, spec.window_s / 300);
    const now = Date.now() / 1000;
    const end = Math.floor(now / step) * step;
    const view = { start: end - spec.window_s, end, step };
    const errors = [];  // {order, where, message}: shown in the order of the page
    const fail = (order, where) => (e) => {
      errors.push({ order, where, message: (e && e.message) || String(e) });
      return null;
    };

    const clockP = promRange(spec.clock, view).catch(fail(2e6, "scenario clock"));
    const annP = Promise.all(spec.annotations.map((a, i) => promRange(a.expr, view).catch(fail(1e6 + i, a.title))));
    const panelPs = S.panels.map((p, pi) => Promise.all(p.spec.queries.map((q, qi) => (
      p.spec.kind === "timeseries" ? promRange(q.expr, view) : promInstant(q.expr, now)
    ).catch(fail(pi * 100 + qi, p.spec.title)))));

    const [clock, annAnswers, panelAnswers] = await Promise.all([clockP, annP, Promise.all(panelPs)]);

    if (clock) applyClock(clock, view);
    if (annAnswers.some((a) => a)) {
      // An annotation that did not answer keeps its last marks.
      const fresh = applyAnnotations(annAnswers, view);
      const kept = S.marks.filter((m) => spec.annotations.some((a, i) => !annAnswers[i] && a.title === m.title));
      S.marks = [...fresh, ...kept].sort((a, b) => a.from - b.from);
    }

    let panelsOk = true;
    S.panels.forEach((p, i) => {
      const answers = panelAnswers[i];
      const ok = answers.every((a) => a != null);
      p.el.classList.toggle("stale", !ok);
      if (!ok) {
        panelsOk = false;
        if (p.chart) p.chart.redraw(false, true);  // new marks and clock on the last data
        return;
      }
      try {
        if (p.spec.kind === "timeseries") updateTimeseries(p, answers, view);
        else if (p.spec.kind === "stat") updateStat(p, answers);
        else updateTable(p, answers);
      } catch (e) {
        panelsOk = false;
        errors.push({ order: i * 100 + 99, where: p.spec.title, message: `cannot draw: ${(e && e.message) || e}` });
        console.error(`panel ${p.spec.id}:`, e);
      }
    });

    if (errors.length) {
      errors.sort((a, b) => a.order - b.order);
      const first = errors[0];
      const more = errors.length > 1 ? ` and ${errors.length - 1} more ${errors.length > 2 ? "queries" : "query"}` : "";
      showError(`${first.message} (${first.where}${more})`);
    } else {
      showError("");
    }
    if (panelsOk) $("updated").textContent = `updated ${hhmmss(now)}`;
    body.setAttribute("data-state", panelsOk ? "ready" : "error");
    S.refreshes += 1;
    body.setAttribute("data-refreshes", String(S.refreshes));
  }

  async function loop() {
    const started = Date.now();
    try {
      await refresh();
    } catch (e) {
      console.error("refresh:", e);
      showError(`refresh failed: ${(e && e.message) || e}`);
      body.setAttribute("data-state", "error");
    }
    const wait = Math.max(250, S.spec.refresh_s * 1000 - (Date.now() - started));
    setTimeout(loop, wait);
  }

  function tickWallClock() {
    $("clock-wall").textContent = hhmmss(Date.now() / 1000);
    setTimeout(tickWallClock, 1000 - (Date.now() % 1000) + 5);
  }

  async function start() {
    tickWallClock();
    const params = new URLSearchParams(location.search);
    S.board = params.get("board") || "overview";
    body.setAttribute("data-board", S.board);
    if (typeof uPlot !== "function") {
      showError("uPlot did not load (static/vendor/uplot/uPlot.iife.min.js)");
      body.setAttribute("data-state", "error");
      return;
    }
    let data;
    for (;;) {
      try {
        data = await getJSON(`/panels.json?board=${encodeURIComponent(S.board)}`);
        break;
      } catch (e) {
        showError((e && e.message) || String(e));
        body.setAttribute("data-state", "error");
        if (e && e.status === 404) return;  // no such board: nothing to retry
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    // ?window=SECONDS shows another time span than the spec's (a short run fills more of it).
    const windowS = Number(params.get("window"));
    if (Number.isFinite(windowS) && windowS >= 10 && windowS <= 86400) data.window_s = windowS;
    S.spec = data;
    renderHeader(data);
    const grid = $("panels");
    grid.textContent = "";
    S.panels = (data.panels || []).map(buildPanel);
    for (const p of S.panels) grid.append(p.el);
    loop();
  }

  window.addEventListener("unhandledrejection", (ev) => {
    console.error("unhandled:", ev.reason);
    ev.preventDefault();
  });

  start().catch((e) => {
    console.error("start:", e);
    showError(`the dashboard could not start: ${(e && e.message) || e}`);
    body.setAttribute("data-state", "error");
  });
})();
