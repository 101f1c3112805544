package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/api"
)

// A process serves the routes of its roles: the REST API with the api role, the push routes with the
// ingest role; a route of a role it does not run answers 404 problem+json before asking for a
// credential, and stores nothing. Health, readiness, metrics and the OpenAPI document always answer.
func TestRolesDecideTheRoutes(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.ingestKey(t, w.a)
	viewer, owner := w.a.tokens["viewer"], w.a.tokens["owner"]
	login := map[string]any{"email": w.a.emails["owner"], "password": w.a.pass["owner"]}
	ctx := context.Background()

	type request struct {
		method, path, credential string
		body                     any
		ok                       int // the status when the process runs the route's role
	}
	rest := []request{
		{"GET", "/api/v1/tenant", viewer, nil, http.StatusOK},
		{"GET", "/api/v1/tenant", "", nil, http.StatusUnauthorized},
		{"GET", "/api/v1/hosts", viewer, nil, http.StatusOK},
		{"GET", "/api/v1/logs", viewer, nil, http.StatusOK},
		{"GET", "/api/v1/query/latest?metric=roles.m", viewer, nil, http.StatusOK},
		{"POST", "/api/v1/hosts", owner, map[string]any{"name": "made-by-role-test"}, http.StatusCreated},
		{"POST", "/api/v1/auth/login", "", login, http.StatusOK},
		{"POST", "/oauth/token", "", "grant_type=client_credentials", http.StatusBadRequest}, // JSON, not a form
		{"GET", "/api/v1/operator/tenants", operatorToken, nil, http.StatusOK},
	}
	push := []request{
		{"POST", "/api/v1/ingest", key, `{"metrics":[{"name":"roles.m","points":[[` + ms(time.Now().Add(-time.Minute)) + `,1]]}]}`, http.StatusOK},
		{"POST", "/api/v1/logs", key, `{"host":{"name":"roles-host"},"entries":[{"time":` + ms(time.Now()) + `,"message":"hello"}]}`, http.StatusOK},
		{"POST", "/api/v2/write", key, "roles_m value=1", http.StatusNoContent},
	}
	always := []request{
		{"GET", "/healthz", "", nil, http.StatusOK},
		{"GET", "/readyz", "", nil, http.StatusOK},
		{"GET", "/metrics", "", nil, http.StatusOK},
		{"GET", "/openapi.json", "", nil, http.StatusOK},
	}
	stored := func() (samples, logs, hosts int) {
		t.Helper()
		if err := w.d.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ts.samples), (SELECT count(*) FROM ts.logs),
		                                         (SELECT count(*) FROM app.hosts WHERE name = 'made-by-role-test')`).Scan(&samples, &logs, &hosts); err != nil {
			t.Fatal(err)
		}
		return samples, logs, hosts
	}

	for _, roles := range []struct {
		name             string
		serveAPI, ingest bool
	}{{"poller", false, false}, {"ingest", false, true}, {"api", true, false}, {"api,ingest", true, true}} {
		d := w.deps
		d.ServeAPI, d.Registry = roles.serveAPI, api.NewRegistry()
		if !roles.ingest {
			d.Ingest = nil
		}
		process := *w
		process.srv = httptest.NewServer(api.NewHandler(d))
		samplesBefore, logsBefore, hostsBefore := stored()
		check := func(reqs []request, serving bool) {
			for _, r := range reqs {
				got := process.call(t, r.method, r.path, r.credential, r.body)
				switch {
				case serving && got.status != r.ok:
					t.Errorf("roles %s: %s %s = %d, want %d: %s", roles.name, r.method, r.path, got.status, r.ok, got.raw)
				case !serving && (got.status != http.StatusNotFound || !strings.HasPrefix(got.header.Get("Content-Type"), "application/problem+json")):
					t.Errorf("roles %s: %s %s = %d %s, want a 404 problem: %s", roles.name, r.method, r.path, got.status,
						got.header.Get("Content-Type"), got.raw)
				}
			}
		}
		check(rest, roles.serveAPI)
		check(push, roles.ingest)
		check(always, true)
		process.srv.Close()

		samples, logs, hosts := stored()
		if got, want := samples > samplesBefore && logs > logsBefore, roles.ingest; got != want {
			t.Errorf("roles %s: samples %d → %d, log lines %d → %d: stored %v, want %v", roles.name, samplesBefore, samples,
				logsBefore, logs, got, want)
		}
		if got, want := hosts > hostsBefore, roles.serveAPI; got != want {
			t.Errorf("roles %s: POST /api/v1/hosts created a host: %v, want %v", roles.name, got, want)
		}
		if roles.serveAPI { // the next process creates it again
			if _, err := w.d.Pool.Exec(ctx, "DELETE FROM app.hosts WHERE name = 'made-by-role-test'"); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Without the api role the live stream is not there either, whatever its hub.
	d := w.deps
	d.ServeAPI, d.Ingest, d.Registry = false, nil, api.NewRegistry()
	srv := httptest.NewServer(api.NewHandler(d))
	defer srv.Close()
	guarded, cancel := context.WithTimeout(ctx, 30*time.Second) // a hang guard: a stream that opened would never end
	defer cancel()
	req, _ := http.NewRequestWithContext(guarded, "GET", srv.URL+"/api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+viewer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "does not run the api role") {
		t.Errorf("GET /api/v1/stream without the api role = %d %s, want 404 naming the role", resp.StatusCode, body)
	}
}
