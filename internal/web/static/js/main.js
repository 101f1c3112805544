// The console: a router over a few pages, each built from the REST API and kept current by the live
// stream. Client routes: /login, / (overview), /hosts, /hosts/{id}, /checks, /checks/{id}, /explore,
// /alerts, /silences, /channels, /settings.
import { api, login, logout, resume, session, switchTenant, ApiError } from "./api.js";
import { h } from "./dom.js";
import { pageOverview, pageHosts, pageHost, pageChecks, pageCheck, pageSettings } from "./pages.js";
import { pageAlerts, pageSilences, pageChannels } from "./alerting.js";
import { pageExplore } from "./explore.js";

const main = document.getElementById("main");
const header = document.querySelector("header.top");
let cleanups = [];
let tenantName = null;
let myTenants = null; // the user's tenants (GET /api/v1/auth/tenants), read once per session

const routes = [
  { re: /^\/login$/, page: pageLogin, public: true, title: "Log in" },
  { re: /^\/$/, page: pageOverview, nav: "overview", title: "Overview" },
  { re: /^\/hosts$/, page: pageHosts, nav: "hosts", title: "Hosts" },
  { re: /^\/hosts\/(\d+)$/, page: pageHost, nav: "hosts", title: "Host" },
  { re: /^\/checks$/, page: pageChecks, nav: "checks", title: "Checks" },
  { re: /^\/checks\/(\d+)$/, page: pageCheck, nav: "checks", title: "Check" },
  { re: /^\/explore$/, page: pageExplore, nav: "explore", title: "Metrics explorer" },
  { re: /^\/alerts$/, page: pageAlerts, nav: "alerts", title: "Alerts" },
  { re: /^\/silences$/, page: pageSilences, nav: "silences", title: "Silences" },
  { re: /^\/channels$/, page: pageChannels, nav: "channels", title: "Channels" },
  { re: /^\/settings$/, page: pageSettings, nav: "settings", title: "Settings" },
];

export function navigate(path, replace = false) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

/** ctx is what a page gets: cleanup registration, navigation, the announcer. */
const ctx = {
  onCleanup: (fn) => cleanups.push(fn),
  navigate,
  announce: (text) => { document.getElementById("announce").textContent = text; },
};

async function render() {
  for (const fn of cleanups) { try { fn(); } catch { /* a page's cleanup never stops the next page */ } }
  cleanups = [];
  const path = location.pathname;
  let route = null;
  let match = null;
  for (const r of routes) {
    match = path.match(r.re);
    if (match) { route = r; break; }
  }
  if (route && !route.public && !(await resume())) {
    navigate("/login?next=" + encodeURIComponent(path + location.search), true);
    return;
  }
  header.hidden = !route || !!route.public;
  for (const a of header.querySelectorAll("[data-nav]")) {
    if (route && a.dataset.nav === route.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (route && !route.public) await showWho();
  document.title = (route ? route.title : "Not found") + " · infrawatch";
  main.replaceChildren();
  if (!route) {
    main.append(h("h1", {}, "Not found"), h("p", {}, "There is no such page. ", h("a", { href: "/", "data-link": true }, "Go to the overview")));
    return;
  }
  try {
    await route.page(main, match, ctx);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      navigate("/login?next=" + encodeURIComponent(path), true);
      return;
    }
    main.append(h("div", { class: "notice", role: "alert" },
      h("p", { class: "error" }, "This page could not be loaded: " + e.message),
      h("p", {}, e.status === 0 ? "Is the server running? Reload the page to try again." : "Reload the page to try again.")));
  }
  // Screen readers and keyboards start at the new page, unless the page put the focus somewhere (a form).
  window.scrollTo(0, 0);
  if (!main.contains(document.activeElement) || document.activeElement === document.body) main.focus({ preventScroll: true });
}

// showWho shows the tenant and role in the header; a member of several tenants gets the switcher instead
// of the tenant's name.
async function showWho() {
  const s = session();
  if (!tenantName) {
    try { tenantName = (await api("/api/v1/tenant")).name; } catch { tenantName = ""; }
  }
  if (!myTenants) {
    try { myTenants = (await api("/api/v1/auth/tenants")).items; } catch { myTenants = []; }
  }
  const form = document.getElementById("tenant-switch-form");
  const select = document.getElementById("tenant-switch");
  const several = myTenants.length > 1;
  form.hidden = !several;
  if (several && select.options.length !== myTenants.length) {
    // By name; the slug too where two of the user's tenants share a name.
    const shared = (t) => myTenants.some((o) => o !== t && o.name === t.name);
    select.replaceChildren(...myTenants.map((t) => h("option", { value: t.id, selected: t.current },
      shared(t) ? `${t.name} (${t.slug})` : t.name)));
  }
  if (several && s) select.value = s.tenant; // a choice not submitted is undone by the next page
  document.getElementById("who").textContent = several ? (s ? s.role : "") : `${tenantName || "tenant"} · ${s ? s.role : ""}`;
}

// The switcher: a new session in the chosen tenant, the old one logged out, then the console loads afresh
// at the overview, so nothing of the old tenant survives (its streams, pages and cached names go with the
// page; ids in the old URL would be the old tenant's).
document.getElementById("tenant-switch-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = document.getElementById("tenant-switch").value;
  const s = session();
  if (!id || (s && s.tenant === id)) return;
  const button = document.getElementById("tenant-switch-go");
  button.disabled = true;
  document.getElementById("switch-error")?.remove();
  ctx.announce("Switching tenant…");
  try {
    await switchTenant(id);
  } catch (e) {
    button.disabled = false;
    ctx.announce("");
    main.prepend(h("p", { class: "error", role: "alert", id: "switch-error" }, "Could not switch tenant: " + e.message));
    return;
  }
  for (const fn of cleanups) { try { fn(); } catch { /* the page is going anyway */ } }
  cleanups = [];
  main.replaceChildren();
  location.assign("/");
});

async function pageLogin(root) {
  const next = new URLSearchParams(location.search).get("next") || "/";
  const error = h("p", { class: "error", role: "alert", id: "login-error" });
  const tenantSelect = h("select", { name: "tenant_id", id: "login-tenant" });
  const tenantField = h("label", { hidden: true }, "Tenant", tenantSelect);
  const form = h("form", { class: "stack", id: "login-form", novalidate: true },
    h("label", {}, "Email", h("input", { type: "email", name: "email", id: "login-email", autocomplete: "username", required: true })),
    h("label", {}, "Password", h("input", { type: "password", name: "password", id: "login-password", autocomplete: "current-password", required: true })),
    tenantField,
    h("button", { type: "submit", id: "login-submit" }, "Log in"),
    error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const f = new FormData(form);
    try {
      await login(f.get("email"), f.get("password"), f.get("tenant_id") || undefined);
      tenantName = null;
      myTenants = null;
      navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/", true);
    } catch (e) {
      const fields = (e.problem && e.problem.errors) || [];
      if (fields.some((x) => x.field === "tenant_id")) {
        const tenants = e.problem.tenants || [];
        tenantSelect.replaceChildren(...tenants.map((t) => h("option", { value: t.id }, `${t.name} (${t.slug}) · ${t.role}`)));
        tenantField.hidden = false;
        error.textContent = tenants.length ? "You belong to several tenants: choose one, then log in."
          : "None of your tenants is active; contact the operator.";
        tenantSelect.focus();
      } else if (e.status === 401) {
        error.textContent = "Wrong email or password.";
      } else {
        error.textContent = e.message;
      }
    }
  });
  root.append(h("div", { class: "login panel" }, h("h1", {}, "Log in to infrawatch"), form));
  form.querySelector("input").focus();
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-link]");
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", render);
document.getElementById("logout").addEventListener("click", async () => {
  await logout();
  tenantName = null;
  myTenants = null;
  navigate("/login", true);
});
window.addEventListener("infrawatch:logged-out", () => {
  tenantName = null;
  myTenants = null;
  navigate("/login", true);
});

render();

