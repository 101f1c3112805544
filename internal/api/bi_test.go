package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/bi"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// An admin creates a BI credential over HTTP, logs in with the DSN it answers (a real PostgreSQL
// session) and reads the tenant's hosts; lists show no password; rotation answers a new one and ends
// the old session; revocation drops the login. Admins only; another tenant's id is a 404.
func TestBICredentialsOverHTTP(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, testLimits)
	admin := w.a.tokens["admin"]
	w.call(t, "POST", "/api/v1/hosts", admin, map[string]any{"name": "alpha-db"}).must(t, http.StatusCreated)
	w.call(t, "POST", "/api/v1/hosts", w.b.tokens["admin"], map[string]any{"name": "bravo-db"}).must(t, http.StatusCreated)

	created := w.call(t, "POST", "/api/v1/bi/credentials", admin, map[string]any{"name": "grafana"}).must(t, http.StatusCreated)
	id, login, password, dsn := created.id(t), created.str("login"), created.str("password"), created.str("dsn")
	conn, _ := created.json["connection"].(map[string]any)
	if !strings.HasPrefix(login, "bi_") || len(password) < 26 || conn["sslmode"] != "disable" || conn["database"] != w.d.Name ||
		!strings.Contains(dsn, login+":"+password+"@") || created.json["connection_limit"] != float64(5) ||
		created.json["statement_timeout_ms"] != float64(30000) {
		t.Fatalf("created = %s", created.raw)
	}
	session, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("log in with the answered DSN: %v", err)
	}
	defer session.Close(ctx)
	var hosts []string
	rows, err := session.Query(ctx, "SELECT host_name FROM hosts ORDER BY 1") // search_path is bi
	if err == nil {
		hosts, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || strings.Join(hosts, ",") != "alpha-db" {
		t.Errorf("the login reads hosts %v (%v), want alpha's alpha-db only", hosts, err)
	}

	list := w.call(t, "GET", "/api/v1/bi/credentials", admin, nil).must(t, http.StatusOK)
	if strings.Contains(list.raw, password) || !strings.Contains(list.raw, login) || strings.Contains(list.raw, `"password"`) {
		t.Errorf("list = %s, want the login without a password", list.raw)
	}
	got := w.call(t, "GET", "/api/v1/bi/credentials/"+id, admin, nil).must(t, http.StatusOK)
	if got.str("login") != login || strings.Contains(got.raw, password) {
		t.Errorf("get = %s", got.raw)
	}
	if b := w.call(t, "GET", "/api/v1/bi/credentials", w.b.tokens["owner"], nil).must(t, http.StatusOK); strings.Contains(b.raw, login) {
		t.Errorf("bravo lists alpha's login: %s", b.raw)
	}
	for _, role := range []string{"viewer", "editor"} {
		w.call(t, "GET", "/api/v1/bi/credentials", w.a.tokens[role], nil).must(t, http.StatusForbidden)
		w.call(t, "GET", "/api/v1/bi/credentials/"+id, w.a.tokens[role], nil).must(t, http.StatusForbidden)
	}
	w.call(t, "POST", "/api/v1/bi/credentials/"+id+"/rotate", w.b.tokens["owner"], nil).must(t, http.StatusNotFound)

	rotated := w.call(t, "POST", "/api/v1/bi/credentials/"+id+"/rotate", admin, nil).must(t, http.StatusOK)
	if rotated.str("login") != login || rotated.str("password") == password || rotated.json["rotated_at"] == nil {
		t.Errorf("rotated = %s", rotated.raw)
	}
	if _, err := session.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the session of the old password survived the rotation")
	}
	session, err = pgx.Connect(ctx, rotated.str("dsn"))
	if err != nil {
		t.Fatalf("log in with the rotated DSN: %v", err)
	}
	defer session.Close(ctx)

	w.call(t, "DELETE", "/api/v1/bi/credentials/"+id, w.b.tokens["owner"], nil).must(t, http.StatusNotFound)
	w.call(t, "DELETE", "/api/v1/bi/credentials/"+id, admin, nil).must(t, http.StatusNoContent)
	if _, err := session.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("a live session survived the revocation")
	}
	w.call(t, "GET", "/api/v1/bi/credentials/"+id, admin, nil).must(t, http.StatusNotFound)
	w.call(t, "DELETE", "/api/v1/bi/credentials/"+id, admin, nil).must(t, http.StatusNotFound)

	audit := w.call(t, "GET", "/api/v1/audit", admin, nil).must(t, http.StatusOK)
	for _, action := range []string{"bi_credential.create", "bi_credential.rotate", "bi_credential.revoke"} {
		if !strings.Contains(audit.raw, action) {
			t.Errorf("the audit log lacks %s: %s", action, audit.raw)
		}
	}
	if strings.Contains(audit.raw, password) || strings.Contains(audit.raw, rotated.str("password")) {
		t.Error("a password is in the audit log")
	}
}

// Bad input is a 400 naming the field; the tenant's maximum a 409; no login is made for either.
func TestBICredentialRefusals(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, testLimits)
	owner := w.a.tokens["owner"]
	for _, c := range []struct {
		body  any
		field string
	}{
		{map[string]any{}, "name"},
		{map[string]any{"name": ""}, "name"},
		{map[string]any{"name": strings.Repeat("x", 201)}, "name"},
		{map[string]any{"name": "x", "login": "bi_mine"}, "login"},
		{map[string]any{"name": "x", "password": "mine"}, "password"},
		{map[string]any{"name": "x", "tenant_id": w.b.id}, "tenant_id"},
		{map[string]any{"name": 7}, "name"},
	} {
		got := w.call(t, "POST", "/api/v1/bi/credentials", owner, c.body).must(t, http.StatusBadRequest)
		if !strings.Contains(got.raw, `"field":"`+c.field+`"`) {
			t.Errorf("%v: %s, want an error naming %s", c.body, got.raw, c.field)
		}
	}
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.bi_settings SET max_credentials = 1 WHERE tenant_id = $1`, w.a.id); err != nil {
		t.Fatal(err)
	}
	if _, err := w.d.Pool.Exec(ctx, `INSERT INTO app.bi_settings (tenant_id, max_credentials) VALUES ($1, 1) ON CONFLICT DO NOTHING`, w.a.id); err != nil {
		t.Fatal(err)
	}
	w.call(t, "POST", "/api/v1/bi/credentials", owner, map[string]any{"name": "first"}).must(t, http.StatusCreated)
	w.call(t, "POST", "/api/v1/bi/credentials", owner, map[string]any{"name": "second"}).must(t, http.StatusConflict)
	var n int
	if err := w.d.Pool.QueryRow(ctx, `SELECT count(*) FROM app.bi_credentials WHERE tenant_id = $1`, w.a.id).Scan(&n); err != nil || n != 1 {
		t.Errorf("alpha has %d BI credentials (%v), want 1", n, err)
	}
}

// A server without --bi-public-dsn offers no BI access: creating and rotating answer 503 and say why;
// listing still works, with no connection.
func TestBIAccessOff(t *testing.T) {
	// Without a public address the service never reaches the database: it refuses first.
	off, err := bi.NewService(bi.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorldCustom(t, db.FlavorPostgres, testLimits, func(d *api.Deps) { d.BI = off })
	for _, path := range []string{"/api/v1/bi/credentials", "/api/v1/bi/credentials/1/rotate"} {
		got := w.call(t, "POST", path, w.a.tokens["owner"], map[string]any{"name": "grafana"}).must(t, http.StatusServiceUnavailable)
		if !strings.Contains(got.raw, "--bi-public-dsn") {
			t.Errorf("POST %s: %s, want it to name --bi-public-dsn", path, got.raw)
		}
	}
	if got := w.call(t, "GET", "/api/v1/bi/credentials", w.a.tokens["owner"], nil).must(t, http.StatusOK); got.raw != `{"items":[],"next_cursor":null}` {
		t.Errorf("list = %s", got.raw)
	}
}

// Routes are registered without a BI service (tests of the routes alone), and answer 503 then.
func TestBIRoutesWithoutAService(t *testing.T) {
	engine := api.NewHandler(api.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: api.NewRegistry(),
		Auth: &auth.Service{}, Ingest: &ingest.Service{}, Operator: &tenant.Operator{}})
	found := 0
	for _, r := range engine.Routes() {
		if strings.HasPrefix(r.Path, "/api/v1/bi/") {
			found++
		}
	}
	if found != 5 {
		t.Errorf("%d BI routes registered, want 5", found)
	}
}
