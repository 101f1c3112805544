// Alerting pages: alerts (acknowledge from the page), silences (expire), channels (admins; send a test).
import { api, all, can } from "./api.js";
import { h, timeAgo, labelTags } from "./dom.js";
import { LiveStream } from "./stream.js";

const tableOf = (caption, head, rows, attrs = {}) => h("div", { class: "table-wrap" }, h("table", attrs,
  h("caption", { class: "visually-hidden" }, caption),
  h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows)));

const STATE_FILTERS = [["firing,pending", "Firing and pending"], ["firing", "Firing"], ["resolved", "Resolved"], ["", "All"]];

export async function pageAlerts(root, _m, ctx) {
  root.append(h("h1", {}, "Alerts"));
  const select = h("select", { id: "alert-state" }, STATE_FILTERS.map(([v, t]) => h("option", { value: v }, t)));
  const list = h("div", { id: "alerts" });
  const error = h("p", { class: "error", role: "alert" });
  root.append(h("form", { class: "inline", onsubmit: (e) => e.preventDefault() }, h("label", {}, "Show", select)), error, list);
  async function draw() {
    const q = select.value ? "?state=" + select.value : "";
    const alerts = (await api("/api/v1/alerts" + q + (q ? "&" : "?") + "limit=200")).items;
    if (!alerts.length) {
      list.replaceChildren(h("p", { class: "empty" }, "No alerts in this view. Rules are made with POST /api/v1/alert-rules (README: Alerting)."));
      return;
    }
    list.replaceChildren(tableOf("Alerts", ["Alert", "State", "Severity", "Labels", "Since", "Acknowledged", ""],
      alerts.map((a) => {
        const action = h("td");
        if (can("inventory") && a.state === "firing") {
          const btn = h("button", { type: "button", class: "secondary", "data-ack": a.id }, a.ack ? "Unacknowledge" : "Acknowledge");
          btn.addEventListener("click", async () => {
            error.textContent = "";
            try {
              await api(`/api/v1/alerts/${a.id}/${a.ack ? "unack" : "ack"}`, { method: "POST", body: {} });
              await draw();
            } catch (e) {
              error.textContent = e.message;
            }
          });
          action.append(btn);
        }
        return h("tr", { "data-alert": a.id },
          h("td", {}, h("strong", {}, a.rule_name), h("br"), a.summary || ""),
          h("td", {}, a.state + (a.flapping ? " (flapping)" : "") + (a.suppressed_reason ? ` (${a.suppressed_reason})` : "")),
          h("td", {}, a.severity), h("td", {}, labelTags(a.labels)), h("td", {}, timeAgo(a.started_at || a.created_at)),
          h("td", { class: "ack-state" }, a.ack ? `by ${a.ack.by}` : "no"), action);
      }), { id: "alerts-table" }));
  }
  select.addEventListener("change", () => draw().catch((e) => { error.textContent = e.message; }));
  await draw();
  // No check and no series named: the tenant's checks and alerts; only the alert events matter here.
  const s = new LiveStream(new URLSearchParams(), {
    "alert.firing": () => draw().catch(() => {}),
    "alert.resolved": () => draw().catch(() => {}),
    "alert.acked": () => draw().catch(() => {}),
  });
  s.start();
  ctx.onCleanup(() => s.stop());
}

export async function pageSilences(root) {
  root.append(h("h1", {}, "Silences"));
  const error = h("p", { class: "error", role: "alert" });
  const list = h("div", { id: "silences" });
  root.append(error, list);
  async function draw() {
    const items = await all("/api/v1/silences");
    if (!items.length) {
      list.replaceChildren(h("p", { class: "empty" }, "No silences. Editors make them with POST /api/v1/silences (README: Alerting)."));
      return;
    }
    list.replaceChildren(tableOf("Silences", ["Matchers", "State", "From", "Until", "Comment", ""], items.map((s) => {
      const action = h("td");
      if (can("inventory") && s.state !== "expired") {
        action.append(h("button", { type: "button", class: "danger", onclick: async () => {
          try {
            await api(`/api/v1/silences/${s.id}`, { method: "DELETE" });
            await draw();
          } catch (e) {
            error.textContent = e.message;
          }
        } }, "Expire"));
      }
      return h("tr", {}, h("td", {}, s.matchers.map((m) => h("span", { class: "tag" }, `${m.name}${m.op}${m.value}`))),
        h("td", {}, s.state), h("td", {}, new Date(s.starts_at).toLocaleString()), h("td", {}, new Date(s.ends_at).toLocaleString()),
        h("td", {}, s.comment || ""), action);
    })));
  }
  await draw();
}

export async function pageChannels(root) {
  root.append(h("h1", {}, "Channels"));
  if (!can("access")) {
    root.append(h("p", { class: "muted" }, "Notification channels are managed by admins and owners."));
    return;
  }
  const items = await all("/api/v1/channels");
  const outcome = h("p", { role: "status" });
  if (!items.length) {
    root.append(h("p", { class: "empty" }, "No channels. Admins add them with POST /api/v1/channels (README: Notifications)."));
    return;
  }
  root.append(outcome, tableOf("Channels", ["Name", "Kind", "Enabled", ""], items.map((c) => h("tr", {},
    h("td", {}, c.name), h("td", {}, c.kind), h("td", {}, c.enabled ? "yes" : "no"),
    h("td", {}, h("button", { type: "button", class: "secondary", onclick: async () => {
      outcome.textContent = `Sending a test message to ${c.name}…`;
      try {
        const r = await api(`/api/v1/channels/${c.id}/test`, { method: "POST" });
        outcome.textContent = `Test message to ${c.name}: ${r.status}` + (r.error ? ` (${r.error})` : "");
      } catch (e) {
        outcome.textContent = `Test message to ${c.name} failed: ${e.message}`;
      }
    } }, "Send a test"))))));
}
