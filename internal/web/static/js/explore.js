// The metrics explorer: any metric of the tenant, narrowed by host and labels, as a chart and a table.
// The choice lives in the URL (/explore?metric=…&host=…&labels=k=v,…&range=6h), so a view can be shared.
import { api, all } from "./api.js";
import { h, localTime } from "./dom.js";
import { lineChart, resizeWith, formatValue } from "./charts.js";

const RANGES = { "1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };

/** unitOf guesses a metric's unit from its name, as the agent names them. */
export function unitOf(name) {
  if (/_pct$|percent/.test(name)) return "pct";
  if (/_bytes_per_s$/.test(name)) return "bits";
  if (/_bytes$/.test(name)) return "bytes";
  if (/_ms$|latency/.test(name)) return "ms";
  return "plain";
}

export async function pageExplore(root, _m, ctx) {
  root.append(h("h1", {}, "Metrics explorer"));
  const params = new URLSearchParams(location.search);
  const [series, hosts] = await Promise.all([all("/api/v1/series", 5000), all("/api/v1/hosts")]);
  const names = [...new Set(series.map((s) => s.name))].sort();
  if (!names.length) {
    root.append(h("p", { class: "empty" }, "No metrics stored yet: push some (infrawatch-agent, Telegraf or Prometheus; README: Pushing metrics)."));
    return;
  }
  const metricIn = h("input", { id: "explore-metric", name: "metric", list: "explore-metrics", required: true, value: params.get("metric") || names[0] });
  const hostIn = h("select", { id: "explore-host", name: "host" }, h("option", { value: "" }, "any host"),
    hosts.map((x) => h("option", { value: x.name, selected: x.name === params.get("host") }, x.name)));
  const labelsIn = h("input", { id: "explore-labels", name: "labels", placeholder: "cpu=total, env=prod", value: params.get("labels") || "" });
  const rangeIn = h("select", { id: "explore-range", name: "range" },
    Object.keys(RANGES).map((r) => h("option", { value: r, selected: r === (params.get("range") || "1h") }, r)));
  const form = h("form", { class: "inline panel", id: "explore-form" },
    h("label", {}, "Metric", metricIn, h("datalist", { id: "explore-metrics" }, names.map((n) => h("option", { value: n })))),
    h("label", {}, "Host", hostIn), h("label", {}, "Labels", labelsIn), h("label", {}, "Range", rangeIn),
    h("button", { type: "submit" }, "Show"));
  const out = h("div", { id: "explore-result", "aria-live": "polite" });
  root.append(form, out);
  let plot = null;
  async function show() {
    if (plot) { plot.destroy(); plot = null; }
    const q = new URLSearchParams({ metric: metricIn.value.trim(), from: String(Date.now() - RANGES[rangeIn.value]) });
    if (hostIn.value) q.set("host", hostIn.value);
    for (const pair of labelsIn.value.split(",").map((x) => x.trim()).filter(Boolean)) {
      const [k, ...v] = pair.split("=");
      q.set("label." + k.trim(), v.join("=").trim());
    }
    let res;
    try {
      res = await api("/api/v1/query/range?" + q.toString());
    } catch (e) {
      out.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
      return;
    }
    if (!res.series.length) {
      out.replaceChildren(h("p", { class: "empty" }, "No series match in this range: check the metric's name, the host and the labels."));
      return;
    }
    const unit = unitOf(metricIn.value);
    const label = (s) => [s.host, ...Object.entries(s.labels).filter(([k]) => k !== "host").map(([k, v]) => `${k}=${v}`)].filter(Boolean).join(" ");
    const plotEl = h("div", { class: "plot" });
    const fig = h("figure", { class: "chart", "data-chart": "explore" }, h("figcaption", {}, `${metricIn.value} (step ${res.step})`), plotEl);
    out.replaceChildren(fig, h("div", { class: "table-wrap" }, h("table", { id: "explore-table" },
      h("caption", { class: "visually-hidden" }, "Matching series"),
      h("thead", {}, h("tr", {}, ["Series", "Points", "Newest", "Value"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, res.series.map((s) => {
        const last = s.points[s.points.length - 1];
        return h("tr", {}, h("td", {}, label(s) || s.name), h("td", {}, s.points.length),
          h("td", {}, last ? localTime(last[0]) : "—"), h("td", {}, last ? formatValue(unit, last[1]) : "—"));
      })))));
    plot = lineChart(plotEl, { unit, series: res.series.map((s) => ({ label: label(s) || s.name, points: s.points })) });
    const ro = resizeWith(plot, plotEl);
    ctx.onCleanup(() => { ro.disconnect(); if (plot) plot.destroy(); });
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams({ metric: metricIn.value.trim(), range: rangeIn.value });
    if (hostIn.value) p.set("host", hostIn.value);
    if (labelsIn.value.trim()) p.set("labels", labelsIn.value.trim());
    history.replaceState(null, "", "/explore?" + p.toString());
    show();
  });
  await show();
}
