package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

func TestMain(m *testing.M) {
	// Every test world creates a dozen users; full-strength argon2id under the race detector would take
	// minutes. The hashing itself is tested at full cost in internal/auth.
	auth.PasswordCost = auth.Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1}
	dbtest.Main(m)
}

func newServer(t *testing.T, d *dbtest.DB) (*gin.Engine, *httptest.Server) {
	t.Helper()
	engine := api.NewHandler(api.Deps{
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tenants:  db.NewTenantRunner(d.Pool),
		Health:   db.NewHealth(d.Pool),
		Registry: api.NewRegistry(),
	})
	srv := httptest.NewServer(engine)
	t.Cleanup(srv.Close)
	return engine, srv
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func decodeProblem(t *testing.T, resp *http.Response, body string) api.Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %s)", ct, body)
	}
	var p api.Problem
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	if p.Status != resp.StatusCode || p.Title == "" || p.RequestID == "" {
		t.Errorf("problem = %+v for status %d", p, resp.StatusCode)
	}
	return p
}

func TestProbesAndMetrics(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	_, srv := newServer(t, d)

	if resp, body := get(t, srv.URL+"/healthz"); resp.StatusCode != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz = %d %s", resp.StatusCode, body)
	}
	resp, body := get(t, srv.URL+"/readyz")
	if resp.StatusCode != 200 || !strings.Contains(body, `"flavor":"postgres"`) {
		t.Errorf("/readyz = %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, srv.URL+"/metrics")
	if resp.StatusCode != 200 || !strings.Contains(body, `infrawatch_http_requests_total{code="200",method="GET",route="/readyz"} 1`) ||
		!strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, missing request counter or Go metrics:\n%s", resp.StatusCode, body)
	}
}

func TestReadyzFailsWhenTheSchemaIsBehind(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	_, srv := newServer(t, d)
	if err := db.NewMigrator(d.URL).Down(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, srv.URL+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a schema one version behind = %d %s, want 503", resp.StatusCode, body)
	}
	if p := decodeProblem(t, resp, body); !strings.Contains(p.Detail, "migrate up") {
		t.Errorf("detail %q does not say how to fix it", p.Detail)
	}
}

func TestErrorsAreProblemsAndPanicsStayInside(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	engine, srv := newServer(t, d)
	engine.GET("/boom", func(*gin.Context) { panic("secret-internal-detail") })

	resp, body := get(t, srv.URL+"/boom", api.RequestIDHeader, "trace-me-42")
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "secret-internal-detail") {
		t.Fatalf("panic answered %d %s", resp.StatusCode, body)
	}
	if p := decodeProblem(t, resp, body); p.RequestID != "trace-me-42" {
		t.Errorf("request id = %q, want the caller's", p.RequestID)
	}

	resp, body = get(t, srv.URL+"/no/such/route")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown route = %d", resp.StatusCode)
	}
	decodeProblem(t, resp, body)

	// A request id that could smuggle log lines or headers is replaced, not echoed.
	resp, _ = get(t, srv.URL+"/healthz", api.RequestIDHeader, "evil id with spaces\u2028")
	if id := resp.Header.Get(api.RequestIDHeader); id == "" || strings.Contains(id, " ") {
		t.Errorf("request id = %q, want a generated one", id)
	}
}

// Every role of a process writes, so a database that new connections find read-only (a failed-over
// primary now a standby, or a database an operator or a full disk made read-only) is not ready.
func TestReadyzFailsWhileTheDatabaseIsReadOnly(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	_, srv := newServer(t, d)
	ctx := context.Background()
	// A session opened before the change stays read-write, so it can undo it.
	admin, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	alter := func(value string) {
		t.Helper()
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{d.Name}.Sanitize()+" SET default_transaction_read_only = "+value); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { alter("off") })

	alter("on")
	resp, body := get(t, srv.URL+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a read-only database = %d %s, want 503", resp.StatusCode, body)
	}
	if p := decodeProblem(t, resp, body); !strings.Contains(p.Title+p.Detail, "read-only") {
		t.Errorf("problem %+v does not say the database is read-only", p)
	}
	// Connections the pool opens now are read-only: so is the probe's own, and the answer stays 503.
	d.Pool.Reset()
	if resp, body := get(t, srv.URL+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on a fresh read-only connection = %d %s, want 503", resp.StatusCode, body)
	}

	alter("off")
	d.Pool.Reset()
	if resp, body := get(t, srv.URL+"/readyz"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Fatalf("/readyz once the database is writable again = %d %s, want 200", resp.StatusCode, body)
	}
}
