// The console's pages. Each reads the REST API, draws, and subscribes to the live stream for what changes.
import { api, all, can, ApiError } from "./api.js";
import { h, timeAgo, localTime, statusBadge, labelTags } from "./dom.js";
import { lineChart, resizeWith, formatValue } from "./charts.js";
import { LiveStream } from "./stream.js";

const link = (href, text) => h("a", { href, "data-link": true }, text);

function table(caption, head, rows, attrs = {}) {
  return h("div", { class: "table-wrap" }, h("table", attrs,
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col", class: c.cls }, c.text || c)))),
    h("tbody", {}, rows)));
}

const agentHint = () => h("div", { class: "notice", id: "no-hosts" },
  h("p", {}, h("strong", {}, "No agent has pushed yet."), " Make an ingest key (Settings → API keys, scope ingest) and run on each host:"),
  h("code", { class: "secret" }, `infrawatch-agent --server ${location.origin} --api-key iwk_…`),
  h("p", {}, "Hosts appear here with their first push; `make run` does this for the machine it runs on."));

function live(ctx, params, handlers) {
  const s = new LiveStream(params, handlers);
  s.start();
  ctx.onCleanup(() => s.stop());
  return s;
}

// Overview ---------------------------------------------------------------------------------------------

export async function pageOverview(root, _m, ctx) {
  root.append(h("h1", {}, "Overview"));
  const cards = h("div", { class: "cards", id: "overview" }, h("p", { class: "muted" }, "Loading…"));
  const extra = h("div");
  root.append(cards, extra);
  const card = (id, value, label) => h("div", { class: "card" }, h("div", { class: "value", id }, value), h("div", { class: "label" }, label));
  async function draw() {
    const ov = await api("/api/v1/overview");
    let firing = null;
    try {
      const page = await api("/api/v1/alerts?state=firing&limit=500");
      firing = page.items.length + (page.next_cursor ? "+" : "");
    } catch (e) {
      if (!(e instanceof ApiError) || e.status === 0) throw e; // alerting not available: no card
    }
    cards.replaceChildren(
      card("ov-hosts-reporting", ov.hosts.reporting, `of ${ov.hosts.total} hosts reporting (a sample in the last 10 minutes)`),
      card("ov-checks-up", ov.checks.up, "checks up"),
      card("ov-checks-down", ov.checks.down, "checks down"),
      card("ov-checks-unknown", ov.checks.unknown, "checks not run yet"),
      card("ov-checks-disabled", ov.checks.disabled, "checks disabled"),
      firing === null ? null : card("ov-alerts-firing", firing, "alerts firing"),
      card("ov-series", ov.series, "series stored"),
    );
    cards.dataset.hostsTotal = ov.hosts.total;
    cards.dataset.checksTotal = ov.checks.total;
    extra.replaceChildren(ov.hosts.total === 0 ? agentHint() : "",
      ov.checks.total === 0 ? h("p", { class: "empty" }, "No checks yet: an editor adds them under Checks (or POST /api/v1/checks).") : "");
  }
  await draw();
  let pending = null;
  const redraw = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; draw().catch(() => {}); }, 500);
  };
  ctx.onCleanup(() => clearTimeout(pending));
  live(ctx, new URLSearchParams(), { "check.status": redraw, "alert.firing": redraw, "alert.resolved": redraw });
}

// Hosts ------------------------------------------------------------------------------------------------

export async function pageHosts(root) {
  root.append(h("h1", {}, "Hosts"));
  const hosts = await all("/api/v1/hosts");
  if (!hosts.length) {
    root.append(agentHint());
    return;
  }
  root.append(table("Hosts", ["Name", "Labels", { text: "Monitored by", cls: "hide-narrow" }, "Last seen"],
    hosts.map((x) => h("tr", { "data-host": x.name },
      h("td", {}, link(`/hosts/${x.id}`, x.name)),
      h("td", {}, labelTags(x.labels)),
      h("td", { class: "hide-narrow" }, x.monitored_by || "—"),
      h("td", {}, timeAgo(x.last_seen_at)))), { id: "hosts" }));
}

const HOST_CHARTS = [
  { key: "cpu", title: "CPU used", unit: "pct", metrics: ["cpu.usage_pct"] },
  { key: "memory", title: "Memory used", unit: "bytes", metrics: ["mem.used_bytes"] },
  { key: "disk", title: "Disk used", unit: "pct", metrics: ["disk.used_pct"] },
  { key: "network", title: "Network", unit: "bits", metrics: ["net.rx_bytes_per_s", "net.tx_bytes_per_s"] },
  { key: "load", title: "Load", unit: "plain", metrics: ["load.load1", "load.load5", "load.load15"] },
];

const RANGES = [["1h", 3600e3], ["6h", 6 * 3600e3], ["24h", 86400e3], ["7d", 7 * 86400e3], ["30d", 30 * 86400e3]];

function seriesLabel(s) {
  const rest = Object.entries(s.labels || {}).filter(([k]) => k !== "host").map(([k, v]) => `${k}=${v}`);
  return s.name + (rest.length ? ` {${rest.join(", ")}}` : "");
}

/** rangeControls draws the range buttons and the custom range, and calls pick({from, to, live}). */
function rangeControls(pick) {
  const buttons = RANGES.map(([name, ms]) => h("button", { type: "button", "aria-pressed": name === "1h" ? "true" : "false",
    "data-range": name, onclick: (ev) => {
      for (const b of buttons) b.setAttribute("aria-pressed", b === ev.currentTarget ? "true" : "false");
      pick({ from: Date.now() - ms, to: null });
    } }, name));
  const fromIn = h("input", { type: "datetime-local", id: "range-from" });
  const toIn = h("input", { type: "datetime-local", id: "range-to" });
  const custom = h("form", { class: "inline", onsubmit: (ev) => {
    ev.preventDefault();
    const from = new Date(fromIn.value).getTime();
    const to = toIn.value ? new Date(toIn.value).getTime() : null;
    if (Number.isNaN(from)) return;
    for (const b of buttons) b.setAttribute("aria-pressed", "false");
    pick({ from, to });
  } }, h("label", {}, "From", fromIn), h("label", {}, "To (empty: now)", toIn), h("button", { type: "submit", class: "secondary" }, "Show"));
  return h("div", { class: "ranges", role: "group", "aria-label": "Time range" }, buttons, custom);
}

export async function pageHost(root, m, ctx) {
  const host = await api(`/api/v1/hosts/${m[1]}`);
  root.append(h("h1", {}, host.name),
    h("dl", { class: "facts panel" },
      h("dt", {}, "Labels"), h("dd", {}, labelTags(host.labels)),
      h("dt", {}, "Last seen"), h("dd", {}, timeAgo(host.last_seen_at))));
  const charts = h("div", { class: "charts", id: "host-charts" });
  let stream = null;
  let state = []; // per chart: {spec, series: [{id, label, points}], plot, fig}
  let generation = 0; // the newest load: an older one that finishes later draws nothing
  async function load(range) {
    const mine = ++generation;
    if (stream) stream.stop();
    stream = null;
    for (const c of state) c.plot && c.plot.destroy();
    state = [];
    charts.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    const q = new URLSearchParams({ host: host.name, from: String(Math.round(range.from)) });
    if (range.to) q.set("to", String(Math.round(range.to)));
    const loaded = await Promise.all(HOST_CHARTS.map(async (spec) => {
      const series = [];
      for (const metric of spec.metrics) {
        q.set("metric", metric);
        const res = await api("/api/v1/query/range?" + q.toString());
        for (const s of res.series) series.push({ id: s.id, label: seriesLabel(s), points: s.points });
      }
      return { spec, series };
    }));
    if (mine !== generation || !root.isConnected) return;
    state = loaded;
    charts.replaceChildren();
    for (const c of state) {
      const latest = h("span", { class: "latest", "aria-live": "polite" });
      const plotEl = h("div", { class: "plot" });
      c.fig = h("figure", { class: "chart", "data-chart": c.spec.key }, h("figcaption", {}, h("span", {}, c.spec.title), latest), plotEl);
      c.latest = latest;
      charts.append(c.fig);
      if (!c.series.length) {
        plotEl.append(h("p", { class: "empty" }, `No ${c.spec.metrics.join(" or ")} for this host in this range: ` +
          "is infrawatch-agent running on it? Pick a longer range if it stopped."));
        c.fig.dataset.points = "0";
        continue;
      }
      c.plot = lineChart(plotEl, { unit: c.spec.unit, series: c.series });
      ctx.onCleanup(() => c.plot.destroy());
      const ro = resizeWith(c.plot, plotEl);
      ctx.onCleanup(() => ro.disconnect());
      describe(c);
    }
    const ids = state.flatMap((c) => c.series.map((s) => s.id));
    if (!range.to && ids.length) {
      const params = new URLSearchParams();
      for (const id of ids) params.append("series", id);
      stream = live(ctx, params, { samples: (d) => onSamples(d.series) });
    }
  }
  function describe(c) {
    const n = c.series.reduce((a, s) => a + s.points.length, 0);
    c.fig.dataset.points = String(n);
    c.latest.textContent = c.series.map((s) => {
      const last = s.points[s.points.length - 1];
      return last ? `${s.label}: ${formatValue(c.spec.unit, last[1])}` : "";
    }).filter(Boolean).slice(0, 3).join(" · ");
  }
  function onSamples(samples) {
    for (const c of state) {
      let changed = false;
      for (const smp of samples) {
        const s = c.series.find((x) => x.id === smp.id);
        if (!s) continue;
        const last = s.points[s.points.length - 1];
        if (last && last[0] >= smp.time) continue; // already drawn (the stream's first message repeats the newest)
        s.points.push([smp.time, smp.value]);
        changed = true;
      }
      if (changed && c.plot) {
        c.plot.setData(alignData(c));
        describe(c);
      }
    }
  }
  const alignData = (c) => {
    // lineChart's alignment, for new points
    const times = [...new Set(c.series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
    const idx = new Map(times.map((t, i) => [t, i]));
    return [times.map((t) => t / 1000), ...c.series.map((s) => {
      const col = new Array(times.length).fill(null);
      for (const [t, v] of s.points) col[idx.get(t)] = v;
      return col;
    })];
  };
  root.append(rangeControls((r) => load(r).catch((e) => ctx.announce("Could not load the charts: " + e.message))), charts);
  await load({ from: Date.now() - 3600e3, to: null });
}

// Checks -----------------------------------------------------------------------------------------------

export async function pageChecks(root, _m, ctx) {
  root.append(h("h1", {}, "Checks"));
  const list = await all("/api/v1/checks");
  if (!list.length) {
    root.append(h("p", { class: "empty" }, can("inventory")
      ? "No checks yet. Add one with POST /api/v1/checks (ICMP, TCP, HTTP, DNS or SNMP); see the README's Checks section."
      : "No checks yet. An editor adds them."));
    return;
  }
  const cells = new Map();
  const rows = list.map((c) => {
    const status = h("td", {}, statusBadge(c.status, c.enabled));
    const spark = h("td", { class: "hide-narrow" }, h("div", { class: "spark", "aria-hidden": "true" }));
    cells.set(c.id, { status, spark, check: c });
    return h("tr", { "data-check": c.name },
      h("td", {}, link(`/checks/${c.id}`, c.name)),
      h("td", {}, c.kind), h("td", { class: "hide-narrow" }, c.target), status, spark,
      h("td", {}, timeAgo(c.last_run_at)));
  });
  root.append(table("Checks", ["Name", "Kind", { text: "Target", cls: "hide-narrow" }, "Status",
    { text: "Latency (last 30)", cls: "hide-narrow" }, "Last run"], rows, { id: "checks" }));
  live(ctx, new URLSearchParams({ alerts: "false" }), {
    "check.status": (d) => {
      const c = cells.get(d.check_id);
      if (c) c.status.replaceChildren(statusBadge(d.status, c.check.enabled));
    },
  });
  // Sparklines one check at a time: result lists are heavy reads, limited per tenant.
  for (const c of list) {
    if (!cells.has(c.id)) continue;
    try {
      const page = await api(`/api/v1/checks/${c.id}/results?limit=30`);
      const pts = page.items.filter((r) => r.latency_ms !== null).map((r) => [Date.parse(r.time), r.latency_ms]).reverse();
      const el = cells.get(c.id).spark.firstChild;
      if (pts.length > 1 && el.isConnected) lineChart(el, { unit: "ms", series: [{ label: "latency", points: pts }], height: 28, spark: true });
    } catch {
      break;
    }
    if (!root.isConnected) break;
  }
}

export async function pageCheck(root, m, ctx) {
  const check = await api(`/api/v1/checks/${m[1]}`);
  const status = h("span", { id: "check-status" }, statusBadge(check.status, check.enabled));
  root.append(h("h1", {}, check.name),
    h("dl", { class: "facts panel" },
      h("dt", {}, "Status"), h("dd", {}, status, check.status_reason ? " — " + check.status_reason : ""),
      h("dt", {}, "Kind"), h("dd", {}, check.kind),
      h("dt", {}, "Target"), h("dd", {}, check.target),
      h("dt", {}, "Every"), h("dd", {}, `${check.interval_seconds} s (timeout ${check.timeout_seconds} s)`),
      h("dt", {}, "Last run"), h("dd", { id: "check-last-run" }, timeAgo(check.last_run_at))));
  const page = await api(`/api/v1/checks/${check.id}/results?limit=500`);
  const results = page.items; // newest first
  const chartEl = h("div", { class: "plot" });
  const fig = h("figure", { class: "chart", "data-chart": "latency" }, h("figcaption", {}, "Latency (the newest 500 runs)"), chartEl);
  const tbody = h("tbody");
  const availability = h("div");
  const outcome = h("p", { role: "status", id: "run-outcome" });
  if (can("inventory")) {
    const btn = h("button", { type: "button", id: "run-now" }, "Run now");
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      outcome.textContent = "Running…";
      try {
        const r = await api(`/api/v1/checks/${check.id}/run`, { method: "POST" });
        outcome.textContent = `Ran now: ${r.status}` + (r.latency_ms !== null ? ` in ${formatValue("ms", r.latency_ms)}` : "") +
          (r.reason ? ` (${r.reason})` : "");
        addResult({ time: r.time, status: r.status, latency_ms: r.latency_ms });
      } catch (e) {
        outcome.textContent = "Could not run it: " + e.message;
      } finally {
        btn.disabled = false;
      }
    });
    root.append(h("div", { class: "panel" }, btn, outcome));
  }
  root.append(fig, h("h2", {}, "Availability per day"), availability, h("h2", {}, "Results"),
    h("div", { class: "table-wrap" }, h("table", { id: "results" }, h("caption", { class: "visually-hidden" }, "Results, newest first"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Latency"))),
      tbody)));
  let plot = null;
  function drawChart() {
    const pts = results.filter((r) => r.latency_ms !== null).map((r) => [Date.parse(r.time), r.latency_ms]).reverse();
    fig.dataset.points = String(pts.length);
    if (!pts.length) {
      chartEl.replaceChildren(h("p", { class: "empty" }, "No latency measured yet: the check has not run, or its target never answered."));
      return;
    }
    const data = [pts.map((p) => p[0] / 1000), pts.map((p) => p[1])];
    if (plot) plot.setData(data);
    else {
      chartEl.replaceChildren();
      plot = lineChart(chartEl, { unit: "ms", series: [{ label: "latency", points: pts }] });
      const ro = resizeWith(plot, chartEl);
      ctx.onCleanup(() => { ro.disconnect(); plot.destroy(); });
    }
  }
  function drawAvailability() {
    const days = new Map();
    for (const r of results) {
      const d = new Date(r.time).toLocaleDateString();
      const x = days.get(d) || { up: 0, all: 0 };
      x.all++;
      if (r.status === "up") x.up++;
      days.set(d, x);
    }
    availability.replaceChildren(days.size ? table("Availability per day", ["Day", "Availability", "Runs"],
      [...days].map(([d, x]) => h("tr", {}, h("td", {}, d), h("td", {}, (100 * x.up / x.all).toFixed(2) + " %"), h("td", {}, x.all))))
      : h("p", { class: "empty" }, "No runs yet."));
  }
  const row = (r) => h("tr", {}, h("td", {}, new Date(r.time).toLocaleString()), h("td", {}, statusBadge(r.status)),
    h("td", {}, formatValue("ms", r.latency_ms)));
  function addResult(r) {
    if (results.length && Date.parse(results[0].time) >= Date.parse(r.time)) return; // the stream brought it already
    results.unshift(r);
    tbody.prepend(row(r));
    document.getElementById("check-last-run")?.replaceChildren(timeAgo(r.time));
    drawChart();
    drawAvailability();
  }
  tbody.append(...results.slice(0, 100).map(row));
  drawChart();
  drawAvailability();
  live(ctx, new URLSearchParams({ check: String(check.id), alerts: "false" }), {
    "check.result": (d) => addResult({ time: new Date(d.time).toISOString(), status: d.status, latency_ms: d.latency_ms }),
    "check.status": (d) => status.replaceChildren(statusBadge(d.status, check.enabled)),
  });
}

// Settings ---------------------------------------------------------------------------------------------

export async function pageSettings(root) {
  root.append(h("h1", {}, "Settings"));
  const members = h("div");
  const memberError = h("p", { class: "error", role: "alert" });
  const memberStatus = h("p", { role: "status", id: "member-status" });
  const ROLES = ["viewer", "editor", "admin", "owner"];
  async function drawMembers() {
    const users = await all("/api/v1/users");
    members.replaceChildren(table("Members", ["Email", { text: "Name", cls: "hide-narrow" }, "Role", "State"],
      users.map((u) => {
        let role = u.role;
        // Admins change roles (owners only by owners; the server says no otherwise).
        if (can("access") && (u.role !== "owner" || can("tenant"))) {
          const select = h("select", { "aria-label": `Role of ${u.email}`, "data-role-of": u.email },
            ROLES.filter((r) => r !== "owner" || can("tenant")).map((r) => h("option", { value: r, selected: r === u.role }, r)));
          select.addEventListener("change", async () => {
            memberError.textContent = "";
            try {
              await api(`/api/v1/users/${u.id}`, { method: "PATCH", body: { role: select.value } });
              await drawMembers();
              memberStatus.textContent = `${u.email} is now ${select.value}.`;
            } catch (e) {
              memberError.textContent = e.message;
              select.value = u.role;
            }
          });
          role = select;
        }
        return h("tr", { "data-member": u.email }, h("td", {}, u.email), h("td", { class: "hide-narrow" }, u.name || "—"),
          h("td", {}, role), h("td", {}, u.disabled ? "disabled" : "active"));
      }), { id: "members" }));
  }
  root.append(h("h2", {}, "Members"), memberError, memberStatus, members);
  await drawMembers();
  if (can("access")) {
    const email = h("input", { type: "email", id: "invite-email", required: true, autocomplete: "off" });
    const role = h("select", { id: "invite-role" }, ROLES.filter((r) => r !== "owner" || can("tenant")).map((r) => h("option", { value: r }, r)));
    const shown = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "inline", id: "invite-form" }, h("label", {}, "Invite by email", email), h("label", {}, "Role", role),
      h("button", { type: "submit" }, "Invite"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      memberError.textContent = "";
      try {
        const inv = await api("/api/v1/users", { method: "POST", body: { email: email.value, role: role.value } });
        shown.replaceChildren(h("div", { class: "notice", id: "invitation" }, inv.emailed
          ? h("p", {}, `Invitation emailed to ${inv.email}.`)
          : [h("p", {}, h("strong", {}, `Invitation for ${inv.email} made.`), " Pass this token on (shown once, valid 7 days); " +
              "they accept it with POST /api/v1/auth/accept-invite:"), h("code", { class: "secret", id: "invite-token" }, inv.invite_token)]));
        email.value = "";
      } catch (e) {
        memberError.textContent = e.message;
      }
    });
    root.append(h("div", { class: "panel" }, form, shown));
  }
  root.append(h("p", { class: "muted" }, "Roles: viewers read; editors also push and manage hosts, checks and alerting; " +
    "admins also manage members, API keys and channels; owners also the tenant."));
  root.append(h("h2", {}, "API keys"));
  if (!can("access")) {
    root.append(h("p", { class: "muted", id: "keys-not-allowed" }, "Only admins and owners manage API keys."));
    return;
  }
  const shown = h("div", { "aria-live": "polite" });
  const listEl = h("div");
  const nameIn = h("input", { name: "name", id: "key-name", required: true, maxlength: "200" });
  const scopeIn = h("select", { name: "scope", id: "key-scope" }, ["ingest", "read", "write", "admin"].map((s) => h("option", { value: s }, s)));
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "inline", id: "key-form" },
    h("label", {}, "Name", nameIn), h("label", {}, "Scope", scopeIn), h("button", { type: "submit", id: "key-create" }, "Create key"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      const k = await api("/api/v1/api-keys", { method: "POST", body: { name: nameIn.value, scopes: [scopeIn.value] } });
      shown.replaceChildren(h("div", { class: "notice", id: "new-key" },
        h("p", {}, h("strong", {}, `Key “${k.name}” created.`), " Copy it now: it is not shown again."),
        h("code", { class: "secret", id: "new-key-value" }, k.key)));
      nameIn.value = "";
      await drawKeys();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  async function drawKeys() {
    const keys = await all("/api/v1/api-keys");
    listEl.replaceChildren(keys.length ? table("API keys", ["Name", "Prefix", "Scopes", { text: "Last used", cls: "hide-narrow" }, "State", ""],
      keys.map((k) => {
        const cell = h("td");
        if (!k.revoked_at) {
          const btn = h("button", { type: "button", class: "danger", "data-revoke": k.name }, "Revoke");
          btn.addEventListener("click", async () => {
            if (btn.dataset.confirm !== "1") { // a second click confirms
              btn.dataset.confirm = "1";
              btn.textContent = `Confirm: revoke ${k.name}`;
              return;
            }
            try {
              await api(`/api/v1/api-keys/${k.id}`, { method: "DELETE" });
              await drawKeys();
            } catch (e) {
              error.textContent = e.message;
            }
          });
          cell.append(btn);
        }
        return h("tr", { "data-key": k.name }, h("td", {}, k.name), h("td", {}, h("code", {}, k.prefix)), h("td", {}, k.scopes.join(", ")),
          h("td", { class: "hide-narrow" }, timeAgo(k.last_used_at)), h("td", { class: "key-state" }, k.revoked_at ? "revoked" : "active"), cell);
      }), { id: "keys" }) : h("p", { class: "empty" }, "No API keys yet."));
  }
  root.append(h("div", { class: "panel" }, form, error, shown), listEl);
  await drawKeys();
}
