package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// browserGuard bounds each wait on the page: a hang guard, never an expected duration.
const browserGuard = 30 * time.Second

// consoleServer is `serve` (api and ingest roles, the console on) over a test database. Without the
// poller, checks run only when someone runs them now, so what the console shows is what the test did.
type consoleServer struct {
	t    *testing.T
	base string
}

func startConsoleServer(t *testing.T, dbURL string) *consoleServer {
	t.Helper()
	cfg := defaultServeConfig()
	cfg.Listen, cfg.Roles, cfg.DB.URL, cfg.Secrets.Keys = "127.0.0.1:0", parseRoles("api,ingest"), dbURL, dbtest.SecretKey
	cfg.AllowPrivateTargets = true // the test's check probes a listener on loopback
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := db.Open(ctx, cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, pool, slog.New(slog.NewTextHandler(io.Discard, nil)), func(a string) { addr <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		pool.Close()
	})
	select {
	case a := <-addr:
		return &consoleServer{t: t, base: "http://" + a}
	case err := <-done:
		t.Fatalf("serve ended before it listened: %v", err)
	case <-time.After(browserGuard):
		t.Fatal("serve did not listen")
	}
	return nil
}

// call sends a JSON request and decodes the answer into out (when not nil); it answers the status.
func (s *consoleServer) call(method, path, credential string, body, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	if resp.StatusCode >= 300 && out != nil {
		s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

func (s *consoleServer) login(email, password string) string {
	s.t.Helper()
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	s.call("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password}, &pair)
	return pair.AccessToken
}

// push stores points ([ms, value]) of metric for host with an ingest key.
func (s *consoleServer) push(key, host, metric string, labels map[string]string, points ...[2]float64) {
	s.t.Helper()
	var out struct {
		Accepted int `json:"accepted"`
	}
	s.call("POST", "/api/v1/ingest", key, map[string]any{"host": map[string]any{"name": host},
		"metrics": []map[string]any{{"name": metric, "labels": labels, "points": points}}}, &out)
	if out.Accepted != len(points) {
		s.t.Fatalf("push of %s: %d accepted, want %d", metric, out.Accepted, len(points))
	}
}

// browser starts a headless Chromium of its own (a fresh profile, nothing reaching beyond loopback).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium): the console's browser tests are skipped")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs browser steps under the hang guard.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, browserGuard)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, browserGuard)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, browserGuard)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true on the page.
func waitJS(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, browserGuard)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](js, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(browserGuard))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
		t.Fatalf("%s: %v\npage: %s", what, err, body)
	}
}

// waitJSAcrossLoad is waitJS for a condition that a page load brings: a poll cut short by the load is
// started again in the new page, within the one hang guard.
func waitJSAcrossLoad(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, browserGuard)
	defer cancel()
	for {
		_, err := chromedp.Run(c, chromedp.Poll[bool](js, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(browserGuard)))
		if err == nil {
			return
		}
		if c.Err() != nil || !(strings.Contains(err.Error(), "navigated or closed") || strings.Contains(err.Error(), "context was destroyed") ||
			strings.Contains(err.Error(), "Cannot find context")) {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
			t.Fatalf("%s: %v\npage: %s", what, err, body)
		}
	}
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, browserGuard)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func loginInBrowser(t *testing.T, ctx context.Context, base, email, password string) {
	t.Helper()
	do(t, ctx, "log in as "+email,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#login-email"),
		chromedp.SendKeys("#login-email", email),
		chromedp.SendKeys("#login-password", password),
		chromedp.Click("#login-submit"),
		chromedp.WaitVisible("#overview"))
}

// The web console in a real Chromium against `serve` with pushed data: an admin logs in, sees the
// overview counts the API answers, opens a host whose chart has the pushed points, sees a new push arrive
// through the live stream, runs a check now, creates and revokes an API key, and logs out; a viewer sees
// no admin action; tenant B's console never shows A's hosts. The page breaks no Content-Security-Policy
// and throws nothing. Screenshots go to $TEST_ARTIFACTS (or a temporary directory the test prints).
func TestConsoleInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test drives Chromium against serve on PostgreSQL")
	}
	ctx := browser(t)
	// One flavor: the console reads only the API, whose storage is tested on both flavors.
	d := dbtest.New(t, dbtest.Flavors(t)[0])
	srv := startConsoleServer(t, d.URL)
	artifacts := os.Getenv("TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	artifacts = filepath.Join(artifacts, "console")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", artifacts)

	// Messages the page writes: exceptions and CSP violations fail the test.
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()

	// Tenant A: an admin (the owner), a viewer, an ingest key, a host with metrics, a check that is up.
	bg := context.Background()
	_, err := tenant.Create(bg, d.System(), tenant.NewTenant{Name: "Acme", AdminEmail: "admin@acme.example", AdminPassword: "acme-admin-password"})
	if err != nil {
		t.Fatal(err)
	}
	admin := srv.login("admin@acme.example", "acme-admin-password")
	var invite struct {
		Token string `json:"invite_token"`
	}
	srv.call("POST", "/api/v1/users", admin, map[string]string{"email": "viewer@acme.example", "role": "viewer"}, &invite)
	srv.call("POST", "/api/v1/auth/accept-invite", "", map[string]string{"token": invite.Token, "password": "acme-viewer-password"}, &struct{}{})
	var key struct {
		Key string `json:"key"`
	}
	srv.call("POST", "/api/v1/api-keys", admin, map[string]any{"name": "agents", "scopes": []string{"ingest"}}, &key)
	now := time.Now().Truncate(time.Second)
	ms := func(t time.Time) float64 { return float64(t.UnixMilli()) }
	srv.push(key.Key, "web-1", "cpu.usage_pct", map[string]string{"cpu": "total"},
		[2]float64{ms(now.Add(-3 * time.Minute)), 12}, [2]float64{ms(now.Add(-2 * time.Minute)), 35}, [2]float64{ms(now.Add(-time.Minute)), 20})
	srv.push(key.Key, "web-1", "mem.used_bytes", nil, [2]float64{ms(now.Add(-2 * time.Minute)), 3 << 30}, [2]float64{ms(now.Add(-time.Minute)), 3.2 * (1 << 30)})
	srv.push(key.Key, "web-1", "load.load1", nil, [2]float64{ms(now.Add(-2 * time.Minute)), 0.5}, [2]float64{ms(now.Add(-time.Minute)), 0.7})
	srv.push(key.Key, "web-1", "net.rx_bytes_per_s", map[string]string{"interface": "eth0"},
		[2]float64{ms(now.Add(-2 * time.Minute)), 125000}, [2]float64{ms(now.Add(-time.Minute)), 250000})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var check struct {
		ID int64 `json:"id"`
	}
	srv.call("POST", "/api/v1/checks", admin, map[string]any{"name": "api port", "kind": "tcp", "target": ln.Addr().String()}, &check)
	var hosts struct {
		Items []struct {
			ID int64 `json:"id"`
		} `json:"items"`
	}
	srv.call("GET", "/api/v1/hosts", admin, nil, &hosts)
	if len(hosts.Items) != 1 {
		t.Fatalf("A has %d hosts, want 1", len(hosts.Items))
	}
	hostA := strconv.FormatInt(hosts.Items[0].ID, 10)

	// A firing alert of a rule, as the alerter would have raised it (the alerter is tested on its own).
	var rule struct {
		ID int64 `json:"id"`
	}
	srv.call("POST", "/api/v1/alert-rules", admin, map[string]any{"name": "cpu high", "kind": "threshold",
		"settings": map[string]any{"metric": "cpu.usage_pct", "comparator": ">", "threshold": 80}}, &rule)
	if _, err := d.Pool.Exec(bg, `INSERT INTO app.alerts (tenant_id, rule_id, fingerprint, state, severity, labels, summary, started_at)
		SELECT tenant_id, id, 'console', 'firing', 'critical', '{"host": "web-1"}', 'CPU above 80 % on web-1', now()
		  FROM app.alert_rules WHERE id = $1`, rule.ID); err != nil {
		t.Fatal(err)
	}

	// Tenant B, with a host of its own.
	if _, err := tenant.Create(bg, d.System(), tenant.NewTenant{Name: "Bravo", AdminEmail: "owner@bravo.example", AdminPassword: "bravo-owner-password"}); err != nil {
		t.Fatal(err)
	}
	bOwner := srv.login("owner@bravo.example", "bravo-owner-password")
	var bKey struct {
		Key string `json:"key"`
	}
	srv.call("POST", "/api/v1/api-keys", bOwner, map[string]any{"name": "agents", "scopes": []string{"ingest"}}, &bKey)
	srv.push(bKey.Key, "bravo-secret-db", "cpu.usage_pct", nil, [2]float64{ms(now.Add(-time.Minute)), 50})

	t.Run("admin", func(t *testing.T) {
		loginInBrowser(t, ctx, srv.base, "admin@acme.example", "acme-admin-password")
		var ov struct {
			Hosts  struct{ Total, Reporting int }
			Checks struct{ Total, Up, Down, Unknown, Disabled int }
			Series int
		}
		srv.call("GET", "/api/v1/overview", admin, nil, &ov)
		for sel, want := range map[string]int{"#ov-hosts-reporting": ov.Hosts.Reporting, "#ov-checks-up": ov.Checks.Up,
			"#ov-checks-down": ov.Checks.Down, "#ov-checks-unknown": ov.Checks.Unknown, "#ov-checks-disabled": ov.Checks.Disabled,
			"#ov-series": ov.Series} {
			if got := text(t, ctx, sel); got != strconv.Itoa(want) {
				t.Errorf("overview %s shows %q, the API answers %d", sel, got, want)
			}
		}
		if got := text(t, ctx, "#ov-alerts-firing"); got != "1" {
			t.Errorf("overview shows %q alerts firing, want 1", got)
		}
		if ov.Hosts.Total != 1 || ov.Checks.Unknown != 1 {
			t.Errorf("the API's overview %+v: want A's one host and one check not run yet", ov)
		}
		if got := eval[string](t, ctx, `document.getElementById("overview").dataset.hostsTotal`); got != "1" {
			t.Errorf("overview hosts total %q, want 1", got)
		}
		screenshot(t, ctx, artifacts, "overview.png")

		// Hosts, then the host page: the CPU chart has the three pushed points.
		do(t, ctx, "open the host", chromedp.Click(`a[data-nav="hosts"]`), chromedp.WaitVisible(`tr[data-host="web-1"] a`),
			chromedp.Click(`tr[data-host="web-1"] a`), chromedp.WaitVisible(`figure[data-chart="cpu"][data-points="3"] canvas`),
			chromedp.WaitVisible(`figure[data-chart="memory"][data-points="2"] canvas`),
			chromedp.WaitVisible(`figure[data-chart="network"][data-points="2"] canvas`))
		if got := text(t, ctx, `figure[data-chart="cpu"] .latest`); !strings.Contains(got, "20 %") {
			t.Errorf("CPU chart's latest value %q, want 20 %%", got)
		}
		if got := text(t, ctx, `figure[data-chart="network"] .latest`); !strings.Contains(got, "2.00 Mbit/s") {
			t.Errorf("network chart's latest value %q, want 2.00 Mbit/s (250,000 bytes/s)", got)
		}
		screenshot(t, ctx, artifacts, "host.png")
		// A new push reaches the chart through the live stream, without a reload.
		srv.push(key.Key, "web-1", "cpu.usage_pct", map[string]string{"cpu": "total"}, [2]float64{ms(time.Now()), 87.5})
		waitJS(t, ctx, "the pushed sample on the CPU chart",
			`document.querySelector('figure[data-chart="cpu"]').dataset.points === "4" && document.querySelector('figure[data-chart="cpu"] .latest').textContent.includes("88 %")`)
		// Phone width.
		do(t, ctx, "narrow", chromedp.EmulateViewport(390, 844))
		waitJS(t, ctx, "the page fits the phone width, charts included",
			`[...document.querySelectorAll("figure.chart")].every((f) => f.getBoundingClientRect().right <= 390) && document.documentElement.scrollWidth <= 390`)
		screenshot(t, ctx, artifacts, "host-390px.png")
		do(t, ctx, "wide", chromedp.EmulateViewport(1280, 800))

		// The check page: run it now.
		do(t, ctx, "run the check now", chromedp.Click(`a[data-nav="checks"]`), chromedp.WaitVisible(`tr[data-check="api port"] a`),
			chromedp.Click(`tr[data-check="api port"] a`), chromedp.WaitVisible("#run-now"), chromedp.Click("#run-now"))
		waitJS(t, ctx, "the run's outcome", `document.getElementById("run-outcome").textContent.startsWith("Ran now: up")`)
		waitJS(t, ctx, "the latency chart", `document.querySelector('figure[data-chart="latency"] canvas') !== null`)
		screenshot(t, ctx, artifacts, "check.png")

		// The metrics explorer: the pushed series as a chart and a table.
		do(t, ctx, "explore", chromedp.Click(`a[data-nav="explore"]`), chromedp.WaitVisible("#explore-form"))
		do(t, ctx, "explore the CPU", chromedp.Navigate(srv.base+"/explore?metric=cpu.usage_pct&host=web-1&labels=cpu%3Dtotal&range=1h"),
			chromedp.WaitVisible(`figure[data-chart="explore"] canvas`), chromedp.WaitVisible("#explore-table tbody tr"))
		if got := text(t, ctx, "#explore-table tbody tr"); !strings.Contains(got, "web-1 cpu=total") || !strings.Contains(got, "88 %") {
			t.Errorf("explorer row %q: want web-1's cpu=total series, newest 88 %%", got)
		}

		// Alerts: acknowledged from the page.
		do(t, ctx, "acknowledge the alert", chromedp.Click(`a[data-nav="alerts"]`), chromedp.WaitVisible("#alerts-table"),
			chromedp.Click("button[data-ack]"))
		waitJS(t, ctx, "the alert acknowledged", `document.querySelector(".ack-state").textContent.startsWith("by ")`)
		screenshot(t, ctx, artifacts, "alerts.png")
		var alert struct {
			Items []struct {
				Ack *struct{ By string } `json:"ack"`
			} `json:"items"`
		}
		srv.call("GET", "/api/v1/alerts?state=firing", admin, nil, &alert)
		if len(alert.Items) != 1 || alert.Items[0].Ack == nil {
			t.Errorf("the API's firing alerts after the acknowledgement: %+v", alert.Items)
		}

		// Settings: an API key is shown once, works, and stops working when revoked.
		do(t, ctx, "create a key", chromedp.Click(`a[data-nav="settings"]`), chromedp.WaitVisible("#key-name"),
			chromedp.SendKeys("#key-name", "wallboard"), chromedp.SetValue("#key-scope", "read"), chromedp.Click("#key-create"),
			chromedp.WaitVisible("#new-key-value"), chromedp.WaitVisible(`tr[data-key="wallboard"]`))
		newKey := text(t, ctx, "#new-key-value")
		screenshot(t, ctx, artifacts, "settings.png")
		if !strings.HasPrefix(newKey, "iwk_") || srv.call("GET", "/api/v1/hosts", newKey, nil, nil) != http.StatusOK {
			t.Fatalf("the key the console showed (%q) does not read hosts", newKey)
		}
		do(t, ctx, "revoke it", chromedp.Click(`button[data-revoke="wallboard"]`), chromedp.Click(`button[data-revoke="wallboard"]`))
		waitJS(t, ctx, "the key revoked", `document.querySelector('tr[data-key="wallboard"] .key-state').textContent === "revoked"`)
		if got := srv.call("GET", "/api/v1/hosts", newKey, nil, nil); got != http.StatusUnauthorized {
			t.Fatalf("the revoked key answers %d, want 401", got)
		}

		// Members: an invitation made on the page (its token shown once), accepted, and the new member's role
		// changed from the page.
		do(t, ctx, "invite", chromedp.SendKeys("#invite-email", "ed@acme.example"), chromedp.SetValue("#invite-role", "editor"),
			chromedp.Click(`#invite-form button[type="submit"]`), chromedp.WaitVisible("#invite-token"))
		srv.call("POST", "/api/v1/auth/accept-invite", "", map[string]string{"token": text(t, ctx, "#invite-token"),
			"password": "ed-own-password"}, &struct{}{})
		do(t, ctx, "settings again", chromedp.Navigate(srv.base+"/settings"), chromedp.WaitVisible(`select[data-role-of="ed@acme.example"]`))
		if got := eval[string](t, ctx, `document.querySelector('select[data-role-of="ed@acme.example"]').value`); got != "editor" {
			t.Errorf("the new member's role shows %q, want editor", got)
		}
		eval[bool](t, ctx, `(() => { const s = document.querySelector('select[data-role-of="ed@acme.example"]');
			s.value = "viewer"; s.dispatchEvent(new Event("change")); return true; })()`)
		waitJS(t, ctx, "the role changed", `document.getElementById("member-status").textContent === "ed@acme.example is now viewer."`)
		var members struct {
			Items []struct{ Email, Role string } `json:"items"`
		}
		srv.call("GET", "/api/v1/users", admin, nil, &members)
		for _, m := range members.Items {
			if m.Email == "ed@acme.example" && m.Role != "viewer" {
				t.Errorf("the API says ed is %s after the page made them a viewer", m.Role)
			}
		}

		// Logging out forgets the session here and ends it on the server.
		refresh := eval[string](t, ctx, `sessionStorage.getItem("infrawatch.refresh_token") || ""`)
		do(t, ctx, "log out", chromedp.Click("#logout"), chromedp.WaitVisible("#login-form"))
		if left := eval[float64](t, ctx, "sessionStorage.length"); left != 0 {
			t.Errorf("after logout sessionStorage holds %v items", left)
		}
		if got := srv.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}, nil); got != http.StatusUnauthorized {
			t.Errorf("the logged-out refresh token answers %d, want 401", got)
		}
		if eval[bool](t, ctx, `localStorage.length > 0`) {
			t.Error("the console wrote to localStorage")
		}
		do(t, ctx, "back to a page needs a login", chromedp.Navigate(srv.base+"/hosts"), chromedp.WaitVisible("#login-form"))
	})

	t.Run("viewer", func(t *testing.T) {
		// By keyboard alone: the login form has the focus, Tab moves to the password, Enter submits.
		do(t, ctx, "log in by keyboard", chromedp.Navigate(srv.base+"/"), chromedp.WaitVisible("#login-email"),
			chromedp.KeyEvent("viewer@acme.example"), chromedp.KeyEvent("\t"), chromedp.KeyEvent("acme-viewer-password"),
			chromedp.KeyEvent("\r"), chromedp.WaitVisible("#overview"))
		do(t, ctx, "the check page", chromedp.Navigate(srv.base+"/checks/"+strconv.FormatInt(check.ID, 10)),
			chromedp.WaitVisible(`figure[data-chart="latency"]`))
		if eval[bool](t, ctx, `document.getElementById("run-now") !== null`) {
			t.Error("a viewer sees Run now")
		}
		do(t, ctx, "alerts", chromedp.Navigate(srv.base+"/alerts"), chromedp.WaitVisible("#alerts-table"))
		if eval[bool](t, ctx, `document.querySelector("[data-ack]") !== null`) {
			t.Error("a viewer sees Acknowledge")
		}
		do(t, ctx, "settings", chromedp.Navigate(srv.base+"/settings"), chromedp.WaitVisible("#keys-not-allowed"))
		if eval[bool](t, ctx, `document.getElementById("key-form") !== null || document.querySelector("[data-revoke]") !== null`) {
			t.Error("a viewer sees API key actions")
		}
		if eval[bool](t, ctx, `document.getElementById("invite-form") !== null || document.querySelector("select[data-role-of]") !== null`) {
			t.Error("a viewer sees member actions")
		}
		do(t, ctx, "log out", chromedp.Click("#logout"), chromedp.WaitVisible("#login-form"))
	})

	// A member of A and B: picks A from the login form's list, sees A's host, switches to B in the header,
	// and from then on sees B's host and never A's.
	var tenantA, tenantB struct {
		ID string `json:"id"`
	}
	srv.call("GET", "/api/v1/tenant", admin, nil, &tenantA)
	srv.call("GET", "/api/v1/tenant", bOwner, nil, &tenantB)
	for _, inviter := range []string{admin, bOwner} {
		var inv struct {
			Token string `json:"invite_token"`
		}
		srv.call("POST", "/api/v1/users", inviter, map[string]string{"email": "both@example.com", "role": "viewer"}, &inv)
		srv.call("POST", "/api/v1/auth/accept-invite", "", map[string]string{"token": inv.Token, "password": "both-own-password"}, &struct{}{})
	}
	t.Run("member of two tenants", func(t *testing.T) {
		do(t, ctx, "log in without a tenant", chromedp.Navigate(srv.base+"/"), chromedp.WaitVisible("#login-email"),
			chromedp.SendKeys("#login-email", "both@example.com"), chromedp.SendKeys("#login-password", "both-own-password"),
			chromedp.Click("#login-submit"), chromedp.WaitVisible("#login-tenant"))
		offered := eval[[]string](t, ctx, `[...document.querySelectorAll("#login-tenant option")].map((o) => o.value + " " + o.textContent)`)
		if len(offered) != 2 || !strings.HasPrefix(offered[0], tenantA.ID+" Acme") || !strings.HasPrefix(offered[1], tenantB.ID+" Bravo") {
			t.Fatalf("the login form offers %q, want Acme then Bravo by their ids\n%s", offered, eval[string](t, ctx, "document.body.innerText"))
		}
		if !eval[bool](t, ctx, `document.activeElement === document.getElementById("login-tenant")`) {
			t.Error("the tenant picker does not have the focus")
		}
		screenshot(t, ctx, artifacts, "login-tenant-picker.png")
		do(t, ctx, "pick A", chromedp.SetValue("#login-tenant", tenantA.ID), chromedp.Click("#login-submit"),
			chromedp.WaitVisible("#overview"), chromedp.WaitVisible("#tenant-switch"))
		if got := eval[string](t, ctx, `document.getElementById("tenant-switch").value`); got != tenantA.ID {
			t.Fatalf("the switcher shows %s, want A (%s)", got, tenantA.ID)
		}
		do(t, ctx, "A's host, its stream open", chromedp.Click(`a[data-nav="hosts"]`), chromedp.WaitVisible(`tr[data-host="web-1"] a`),
			chromedp.Click(`tr[data-host="web-1"] a`), chromedp.WaitVisible(`figure[data-chart="cpu"] canvas`))
		screenshot(t, ctx, artifacts, "tenant-switcher.png")
		oldRefresh := eval[string](t, ctx, `sessionStorage.getItem("infrawatch.refresh_token") || ""`)
		eval[bool](t, ctx, `window.beforeTheSwitch = true`)

		// By keyboard: the choice in the select, then Enter on the Switch button.
		do(t, ctx, "switch to B", chromedp.SetValue("#tenant-switch", tenantB.ID), chromedp.Focus("#tenant-switch-go"),
			chromedp.KeyEvent("\r"))
		waitJSAcrossLoad(t, ctx, "B's overview, loaded afresh", `window.beforeTheSwitch === undefined && location.pathname === "/" &&
			document.getElementById("overview") !== null && document.getElementById("tenant-switch").value === "`+tenantB.ID+`"`)
		if got := srv.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": oldRefresh}, nil); got != http.StatusUnauthorized {
			t.Errorf("A's session after the switch: refresh answers %d, want 401 (logged out)", got)
		}
		do(t, ctx, "B's hosts", chromedp.Click(`a[data-nav="hosts"]`), chromedp.WaitVisible(`tr[data-host="bravo-secret-db"]`))
		screenshot(t, ctx, artifacts, "tenant-switched.png")
		do(t, ctx, "narrow", chromedp.EmulateViewport(390, 844))
		waitJS(t, ctx, "the header with the switcher fits the phone width",
			`document.documentElement.scrollWidth <= 390 && document.getElementById("tenant-switch-go").getBoundingClientRect().right <= 390`)
		screenshot(t, ctx, artifacts, "tenant-switched-390px.png")
		do(t, ctx, "wide", chromedp.EmulateViewport(1280, 800))
		// A new sample of A's host, which A's closed stream would have brought, then every page of B.
		srv.push(key.Key, "web-1", "cpu.usage_pct", map[string]string{"cpu": "total"}, [2]float64{ms(time.Now()), 42})
		for _, page := range []string{"/hosts", "/", "/checks", "/alerts", "/explore?metric=cpu.usage_pct"} {
			do(t, ctx, "B's "+page, chromedp.Navigate(srv.base+page), chromedp.WaitVisible("main h1"))
			waitJS(t, ctx, "B's "+page+" loaded", `document.querySelector("main").textContent.includes("Loading") === false`)
			if body := eval[string](t, ctx, "document.body.innerText"); strings.Contains(body, "web-1") || strings.Contains(body, "api port") ||
				strings.Contains(body, "CPU above 80") || strings.Contains(body, "Acme ·") {
				t.Errorf("after the switch to B, %s shows A's things:\n%s", page, body)
			}
		}
		do(t, ctx, "A's host by id", chromedp.Navigate(srv.base+"/hosts/"+hostA), chromedp.WaitVisible("main [role=alert]"))
		if body := eval[string](t, ctx, "document.body.innerText"); strings.Contains(body, "web-1") {
			t.Errorf("after the switch to B, A's host opens by its id:\n%s", body)
		}
		do(t, ctx, "log out", chromedp.Click("#logout"), chromedp.WaitVisible("#login-form"))
	})

	t.Run("tenant B", func(t *testing.T) {
		loginInBrowser(t, ctx, srv.base, "owner@bravo.example", "bravo-owner-password")
		do(t, ctx, "B's hosts", chromedp.Click(`a[data-nav="hosts"]`), chromedp.WaitVisible(`tr[data-host="bravo-secret-db"]`))
		for _, page := range []string{"/hosts", "/checks", "/", "/alerts", "/explore?metric=cpu.usage_pct"} {
			do(t, ctx, "B's "+page, chromedp.Navigate(srv.base+page), chromedp.WaitVisible("main h1"))
			waitJS(t, ctx, "B's "+page+" loaded", `document.querySelector("main").textContent.includes("Loading") === false`)
			if body := eval[string](t, ctx, "document.body.innerText"); strings.Contains(body, "web-1") || strings.Contains(body, "api port") ||
				strings.Contains(body, "CPU above 80") {
				t.Errorf("tenant B's %s shows A's host or check:\n%s", page, body)
			}
		}
		do(t, ctx, "A's host by id", chromedp.Navigate(srv.base+"/hosts/"+hostA), chromedp.WaitVisible("main [role=alert]"))
		if body := eval[string](t, ctx, "document.body.innerText"); strings.Contains(body, "web-1") {
			t.Errorf("tenant B's console shows A's host by its id:\n%s", body)
		}
	})

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the page reported:\n%s", strings.Join(problems, "\n"))
	}
	fmt.Fprintf(os.Stderr, "console screenshots: %s\n", artifacts)
}
