package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// objects creates one object of every kind that a route takes by id, in tenant tw, and returns the ids by
// route prefix.
func (w *world) objects(t *testing.T, tw *tenantWorld) map[string]string {
	t.Helper()
	owner := tw.tokens["owner"]
	host := w.call(t, "POST", "/api/v1/hosts", owner, map[string]any{"name": "db-1"}).must(t, http.StatusCreated)
	check := w.call(t, "POST", "/api/v1/checks", owner, map[string]any{"name": "web", "kind": "http", "target": "http://127.0.0.1:1/"}).
		must(t, http.StatusCreated)
	key := w.call(t, "POST", "/api/v1/api-keys", owner, map[string]any{"name": "k", "scopes": []string{"read"}}).must(t, http.StatusCreated)
	client := w.call(t, "POST", "/api/v1/oauth-clients", owner, map[string]any{"name": "c", "scopes": []string{"read"}}).
		must(t, http.StatusCreated)
	channel := w.call(t, "POST", "/api/v1/channels", owner, map[string]any{"name": "hook", "kind": "webhook",
		"settings": map[string]any{"url": "http://127.0.0.1:1/hook"}}).must(t, http.StatusCreated)
	tested := w.call(t, "POST", "/api/v1/channels/"+channel.id(t)+"/test", owner, nil).must(t, http.StatusOK)
	invited := w.invite(t, owner, "target@"+tw.id.String()+".example", "viewer")
	target := w.accept(t, invited.str("invite_token"), "target-password").must(t, http.StatusOK)
	pending := w.invite(t, owner, "pending@"+tw.id.String()+".example", "viewer")
	biCredential := w.call(t, "POST", "/api/v1/bi/credentials", owner, map[string]any{"name": "grafana"}).must(t, http.StatusCreated)
	rule := w.call(t, "POST", "/api/v1/alert-rules", owner, map[string]any{"name": "cpu", "kind": "threshold",
		"settings": map[string]any{"metric": "cpu", "comparator": ">", "threshold": 90}}).must(t, http.StatusCreated)
	alert := w.firingAlert(t, tw, rule.id(t))
	silence := w.call(t, "POST", "/api/v1/silences", owner, map[string]any{"matchers": []map[string]string{{"name": "host",
		"op": "=", "value": "db-1"}}, "ends_at": time.Now().Add(time.Hour).Format(time.RFC3339)}).must(t, http.StatusCreated)
	window := w.call(t, "POST", "/api/v1/maintenance-windows", owner, map[string]any{"name": "patching",
		"starts_at": time.Now().Format(time.RFC3339), "ends_at": time.Now().Add(time.Hour).Format(time.RFC3339)}).
		must(t, http.StatusCreated)
	trapCredential := w.call(t, "POST", "/api/v1/trap-credentials", owner, map[string]any{"name": "switches", "kind": "community",
		"community": "c-" + tw.id.String()}).must(t, http.StatusCreated)
	slo := w.call(t, "POST", "/api/v1/slos", owner, map[string]any{"name": "web 99.9", "target": 99.9, "check_id": check.json["id"]}).
		must(t, http.StatusCreated)
	report := w.call(t, "POST", "/api/v1/reports", owner, map[string]any{"name": "monthly", "period": "monthly",
		"slo_ids": []any{slo.json["id"]}, "recipients": []string{"ops@example.test"}}).must(t, http.StatusCreated)
	return map[string]string{
		"/api/v1/reports/":             report.id(t),
		"/api/v1/slos/":                slo.id(t),
		"/api/v1/bi/credentials/":      biCredential.id(t),
		"/api/v1/hosts/":               host.id(t),
		"/api/v1/checks/":              check.id(t),
		"/api/v1/api-keys/":            key.id(t),
		"/api/v1/oauth-clients/":       client.id(t),
		"/api/v1/users/":               target.str("user_id"),
		"/api/v1/invitations/":         pending.id(t),
		"/api/v1/channels/":            channel.id(t),
		"/api/v1/notifications/":       jsonNumber(tested.json["notification_id"].(float64)),
		"/api/v1/alert-rules/":         rule.id(t),
		"/api/v1/alerts/":              alert,
		"/api/v1/silences/":            silence.id(t),
		"/api/v1/maintenance-windows/": window.id(t),
		"/api/v1/trap-credentials/":    trapCredential.id(t),
	}
}

// withID fills a route's :id from ids, or says the route has no fixture.
func withID(path string, ids map[string]string) (string, bool) {
	i := strings.Index(path, ":id")
	if i < 0 {
		return path, true
	}
	id, ok := ids[path[:i]]
	return path[:i] + id + path[i+3:], ok
}

// Every route that takes an id, called by every role of tenant A with an id of tenant B, answers 404 and
// changes nothing. The routes come from gin's table, so a new route is covered without touching the test.
func TestObjectLevelAuthorization(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		bIDs := w.objects(t, w.b)
		var covered int
		for _, r := range w.engine.Routes() {
			if !strings.Contains(r.Path, ":id") || strings.HasPrefix(r.Path, "/api/v1/operator/") {
				continue // operator routes act across tenants by design, with the operator token only
			}
			path, ok := withID(r.Path, bIDs)
			if !ok {
				t.Errorf("%s %s takes an id but the test has no object for it: add one to world.objects", r.Method, r.Path)
				continue
			}
			for _, role := range auth.Roles {
				got := w.call(t, r.Method, path, w.a.tokens[role], map[string]any{})
				if got.status != http.StatusNotFound {
					t.Errorf("%s %s as A's %s with B's id: %d, want 404: %s", r.Method, r.Path, role, got.status, got.raw)
				}
			}
			covered++
		}
		if covered < 10 {
			t.Fatalf("only %d routes with an id were tried", covered)
		}
		// B's objects are all still there, unchanged.
		for prefix, id := range bIDs {
			if got := w.call(t, "GET", prefix+id, w.b.tokens["owner"], nil); got.status == http.StatusNotFound {
				t.Errorf("B's %s%s is gone", prefix, id)
			} else if got.status == http.StatusOK && strings.Contains(got.raw, `"disabled":true`) {
				t.Errorf("B's %s%s was changed: %s", prefix, id, got.raw)
			}
		}
	})
}

// minimumRole is the RBAC matrix of the README, written out independently of the code: the least role
// that may call each mutating route. Every mutating route must appear here.
var minimumRole = map[string]string{
	"POST /api/v1/auth/password":             "viewer",
	"POST /api/v1/auth/switch":               "viewer",
	"POST /api/v1/stream/ticket":             "viewer",
	"PATCH /api/v1/tenant":                   "admin",
	"DELETE /api/v1/tenant":                  "owner",
	"POST /api/v1/hosts":                     "editor",
	"PATCH /api/v1/hosts/:id":                "editor",
	"DELETE /api/v1/hosts/:id":               "editor",
	"POST /api/v1/checks":                    "editor",
	"PATCH /api/v1/checks/:id":               "editor",
	"DELETE /api/v1/checks/:id":              "editor",
	"POST /api/v1/checks/:id/run":            "editor",
	"POST /api/v1/alert-rules":               "editor",
	"POST /api/v1/alert-rules/backtest":      "editor",
	"PATCH /api/v1/alert-rules/:id":          "editor",
	"DELETE /api/v1/alert-rules/:id":         "editor",
	"POST /api/v1/alerts/:id/ack":            "editor",
	"POST /api/v1/alerts/:id/unack":          "editor",
	"POST /api/v1/silences":                  "editor",
	"PATCH /api/v1/silences/:id":             "editor",
	"DELETE /api/v1/silences/:id":            "editor",
	"POST /api/v1/maintenance-windows":       "editor",
	"PATCH /api/v1/maintenance-windows/:id":  "editor",
	"DELETE /api/v1/maintenance-windows/:id": "editor",
	"POST /api/v1/slos":                      "editor",
	"PATCH /api/v1/slos/:id":                 "editor",
	"DELETE /api/v1/slos/:id":                "editor",
	"POST /api/v1/reports":                   "admin",
	"PATCH /api/v1/reports/:id":              "admin",
	"DELETE /api/v1/reports/:id":             "admin",
	"POST /api/v1/reports/:id/send-now":      "admin",
	"POST /api/v1/users":                     "admin",
	"PATCH /api/v1/users/:id":                "admin",
	"DELETE /api/v1/users/:id":               "admin",
	"DELETE /api/v1/invitations/:id":         "admin",
	"POST /api/v1/api-keys":                  "admin",
	"DELETE /api/v1/api-keys/:id":            "admin",
	"POST /api/v1/oauth-clients":             "admin",
	"DELETE /api/v1/oauth-clients/:id":       "admin",
	"POST /api/v1/bi/credentials":            "admin",
	"POST /api/v1/bi/credentials/:id/rotate": "admin",
	"DELETE /api/v1/bi/credentials/:id":      "admin",
	"POST /api/v1/ingest":                    "editor",
	"POST /api/v1/write":                     "editor",
	"POST /api/v2/write":                     "editor",
	"POST /api/v1/prom/write":                "editor",
	"POST /api/v1/logs":                      "editor",
	"POST /v1/metrics":                       "editor",
	"POST /v1/logs":                          "editor",
	"POST /api/v1/channels":                  "admin",
	"PATCH /api/v1/channels/:id":             "admin",
	"DELETE /api/v1/channels/:id":            "admin",
	"POST /api/v1/channels/:id/test":         "admin",
	"POST /api/v1/trap-credentials":          "admin",
	"PATCH /api/v1/trap-credentials/:id":     "admin",
	"DELETE /api/v1/trap-credentials/:id":    "admin",
	// The Prometheus HTTP API posts its reads as forms (Grafana's default).
	"POST /prometheus/api/v1/query":       "viewer",
	"POST /prometheus/api/v1/query_range": "viewer",
	"POST /prometheus/api/v1/series":      "viewer",
	"POST /prometheus/api/v1/labels":      "viewer",
}

// Each role against each mutating route: forbidden exactly below the route's minimum role.
func TestFunctionLevelAuthorization(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		aIDs := w.objects(t, w.a)
		public := []string{"/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/auth/accept-invite", "/oauth/token"}
		routes := w.engine.Routes()
		// Deletions last, so that every other route finds its object.
		slices.SortStableFunc(routes, func(x, y gin.RouteInfo) int { return boolInt(x.Method == "DELETE") - boolInt(y.Method == "DELETE") })
		for _, r := range routes {
			if r.Method == "GET" || slices.Contains(public, r.Path) || strings.HasPrefix(r.Path, "/api/v1/operator/") {
				continue
			}
			key := r.Method + " " + r.Path
			min, ok := minimumRole[key]
			if !ok {
				t.Errorf("%s is not in the RBAC matrix of this test (and the README): add it", key)
				continue
			}
			path, _ := withID(r.Path, aIDs)
			if got := w.call(t, r.Method, path, "", map[string]any{}); got.status != http.StatusUnauthorized {
				t.Errorf("%s without a credential: %d, want 401", key, got.status)
			}
			// Least powerful first, so that the object still exists when a role is refused.
			for _, role := range auth.Roles {
				if key == "DELETE /api/v1/tenant" && role == "owner" {
					continue // would delete the tenant under the other cases; TestTenantDeletion covers it
				}
				got := w.call(t, r.Method, path, w.a.tokens[role], map[string]any{})
				allowed := slices.Index(auth.Roles, role) >= slices.Index(auth.Roles, min)
				if allowed && (got.status == http.StatusForbidden || got.status == http.StatusUnauthorized) {
					t.Errorf("%s as %s: %d, want it allowed: %s", key, role, got.status, got.raw)
				}
				if !allowed && got.status != http.StatusForbidden {
					t.Errorf("%s as %s: %d, want 403: %s", key, role, got.status, got.raw)
				}
			}
		}
		// Only an owner touches owners, and the last owner stays.
		ownerID := w.a.users["owner"].String()
		w.call(t, "PATCH", "/api/v1/users/"+ownerID, w.a.tokens["admin"], map[string]any{"role": "viewer"}).must(t, http.StatusForbidden)
		w.call(t, "POST", "/api/v1/users", w.a.tokens["admin"], map[string]any{"email": "boss@x.example", "role": "owner"}).
			must(t, http.StatusForbidden)
		w.call(t, "DELETE", "/api/v1/users/"+ownerID, w.a.tokens["owner"], nil).must(t, http.StatusConflict)

		// A demoted or disabled user loses the power at once, token or not.
		editorID := w.a.users["editor"].String()
		w.call(t, "PATCH", "/api/v1/users/"+editorID, w.a.tokens["admin"], map[string]any{"role": "viewer"}).must(t, http.StatusOK)
		w.call(t, "POST", "/api/v1/hosts", w.a.tokens["editor"], map[string]any{"name": "after-demotion"}).must(t, http.StatusForbidden)
		w.call(t, "PATCH", "/api/v1/users/"+editorID, w.a.tokens["admin"], map[string]any{"disabled": true}).must(t, http.StatusOK)
		w.call(t, "GET", "/api/v1/hosts", w.a.tokens["editor"], nil).must(t, http.StatusUnauthorized)
	})
}

// Server-owned fields in bodies are refused by name, and nothing lands anywhere.
func TestServerOwnedFieldsAreRejected(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		ids := w.objects(t, w.a)
		owner := w.a.tokens["owner"]
		cases := []struct {
			method, path string
			body         map[string]any
			fields       []string
		}{
			{"POST", "/api/v1/hosts", map[string]any{"name": "x", "tenant_id": w.b.id, "id": 7}, []string{"tenant_id", "id"}},
			{"PATCH", "/api/v1/hosts/" + ids["/api/v1/hosts/"], map[string]any{"tenant_id": w.b.id, "created_at": time.Now()}, []string{"tenant_id", "created_at"}},
			{"POST", "/api/v1/checks", map[string]any{"name": "c", "kind": "tcp", "target": "db:5432", "lease_owner": "me",
				"next_run_at": time.Now()}, []string{"lease_owner", "next_run_at"}},
			{"PATCH", "/api/v1/users/" + ids["/api/v1/users/"], map[string]any{"tenant_id": w.b.id, "email": "x@y.z"}, []string{"email", "tenant_id"}},
			{"POST", "/api/v1/api-keys", map[string]any{"name": "k", "scopes": []string{"read"}, "prefix": "iwk_mine", "tenant_id": w.b.id},
				[]string{"prefix", "tenant_id"}},
			{"PATCH", "/api/v1/tenant", map[string]any{"status": "active", "max_series": 1e9, "id": w.b.id}, []string{"id", "max_series", "status"}},
		}
		for _, c := range cases {
			got := w.call(t, c.method, c.path, owner, c.body)
			if got.status != http.StatusBadRequest {
				t.Errorf("%s %s with %v: %d, want 400: %s", c.method, c.path, c.fields, got.status, got.raw)
				continue
			}
			for _, f := range c.fields {
				if !strings.Contains(got.raw, `"field":"`+f+`"`) {
					t.Errorf("%s %s: the answer does not name %q: %s", c.method, c.path, f, got.raw)
				}
			}
		}
		var inB int
		if err := w.d.Pool.QueryRow(context.Background(), "SELECT count(*) FROM app.hosts WHERE tenant_id = $1", w.b.id).Scan(&inB); err != nil || inB != 0 {
			t.Fatalf("tenant B has %d hosts (err %v), want 0", inB, err)
		}
	})
}
