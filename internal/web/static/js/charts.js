// Charts (uPlot, vendored under /assets/vendor/uplot) and the units they show. Times are shown in the
// browser's time zone, as uPlot does by default.
import uPlot from "../vendor/uplot/uPlot.esm.js";

const PALETTE = ["#0b57d0", "#b3261e", "#0a6b2e", "#8e24aa", "#e37400", "#00796b", "#5f6368", "#c2185b"];

function scaled(v, steps, unit, base) {
  let i = 0;
  let x = Math.abs(v);
  while (x >= base && i < steps.length - 1) { x /= base; i++; }
  const s = (v < 0 ? -x : x);
  return (Math.abs(s) >= 100 ? s.toFixed(0) : Math.abs(s) >= 10 ? s.toFixed(1) : s.toFixed(2)) + " " + steps[i] + unit;
}

/** Units, each a formatter of one value. */
export const units = {
  pct: (v) => v.toFixed(Math.abs(v) >= 10 ? 0 : 1) + " %",
  bytes: (v) => scaled(v, ["", "Ki", "Mi", "Gi", "Ti", "Pi"], "B", 1024),
  bits: (v) => scaled(v * 8, ["", "k", "M", "G", "T"], "bit/s", 1000), // from bytes per second
  ms: (v) => (v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : v >= 1 ? 2 : 3) + " ms"),
  plain: (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)),
};

export function formatValue(unit, v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return (units[unit] || units.plain)(v);
}

/** decimals is how many digits after the point tell ticks step apart. */
const decimals = (step) => Math.min(6, Math.max(0, Math.ceil(-Math.log10(step || 1) - 1e-9)));

/**
 * axisValues formats an axis's ticks in a unit, with as many decimals as their spacing needs (ticks of
 * 99.2 and 99.4 % must not all read "99 %"), and one prefix for the whole axis.
 */
export function axisValues(unit) {
  return (u, vals) => {
    if (!vals.length) return vals;
    const step = vals.length > 1 ? Math.abs(vals[1] - vals[0]) : Math.abs(vals[0]);
    if (unit === "bytes" || unit === "bits") {
      const [base, k, prefixes, name] = unit === "bytes" ? [1024, 1, ["", "Ki", "Mi", "Gi", "Ti", "Pi"], "B"]
        : [1000, 8, ["", "k", "M", "G", "T"], "bit/s"];
      const max = Math.max(...vals.map((v) => Math.abs(v * k)));
      let i = 0;
      let div = 1;
      while (max / div >= base && i < prefixes.length - 1) { div *= base; i++; }
      const d = decimals((step * k) / div);
      return vals.map((v) => ((v * k) / div).toFixed(d) + " " + prefixes[i] + name);
    }
    const d = decimals(step);
    const suffix = unit === "pct" ? " %" : unit === "ms" ? " ms" : "";
    return vals.map((v) => v.toFixed(d) + suffix);
  };
}

/**
 * align turns series of [ms, value] points into uPlot's columns: shared times in seconds, then one column
 * per series with null where a series has no point at a time.
 */
export function align(pointLists) {
  const times = new Set();
  for (const pts of pointLists) for (const [t] of pts) times.add(t);
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const cols = pointLists.map((pts) => {
    const col = new Array(xs.length).fill(null);
    for (const [t, v] of pts) col[index.get(t)] = v;
    return col;
  });
  return [xs.map((t) => t / 1000), ...cols];
}

/**
 * lineChart draws series (each {label, points}) in el and answers the uPlot instance.
 * @param {HTMLElement} el
 * @param {{unit: string, series: {label: string, points: number[][]}[], height?: number, spark?: boolean}} spec
 */
export function lineChart(el, spec) {
  const width = Math.max(120, el.clientWidth || 300);
  const fmt = (u, v) => formatValue(spec.unit, v);
  const opts = {
    width,
    height: spec.height || 220,
    series: [{}, ...spec.series.map((s, i) => ({
      label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
      value: fmt,
    }))],
    axes: [{}, { values: axisValues(spec.unit), size: 80 }],
    // One point alone makes uPlot's automatic time range span years: show the minutes around it.
    scales: { x: { time: true, range: (u, min, max) => (u.data[0].length === 1 ? [u.data[0][0] - 60, u.data[0][0] + 60] : [min, max]) } },
    legend: { show: !spec.spark },
    cursor: { show: !spec.spark },
  };
  if (spec.spark) {
    opts.axes = [{ show: false }, { show: false }];
    opts.padding = [2, 2, 2, 2];
  }
  return new uPlot(opts, align(spec.series.map((s) => s.points)), el);
}

/** resizeWith keeps a chart as wide as its element. */
export function resizeWith(chart, el) {
  const ro = new ResizeObserver(() => {
    const w = Math.max(120, el.clientWidth);
    if (Math.abs(w - chart.width) > 4) chart.setSize({ width: w, height: chart.height });
  });
  ro.observe(el);
  return ro;
}
