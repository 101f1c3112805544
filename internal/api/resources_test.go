package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

func TestValidationNamesEveryBadField(t *testing.T) {
	w := newWorld(t, testLimits)
	editor := w.a.tokens["editor"]
	got := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "", "kind": "http", "target": "ftp://example.com",
		"interval_seconds": 5, "timeout_seconds": 600, "settings": map[string]any{"method": "FETCH", "expected_status": []int{42}}})
	got.must(t, http.StatusBadRequest)
	for _, f := range []string{"name", "target", "interval_seconds", "timeout_seconds", "settings.method", "settings.expected_status"} {
		if !strings.Contains(got.raw, `"field":"`+f+`"`) {
			t.Errorf("the answer does not name %s: %s", f, got.raw)
		}
	}
	if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type %q", ct)
	}

	perKind := []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "p", "kind": "icmp", "target": "10.0.0.1:80"}, "target"},
		{map[string]any{"name": "p", "kind": "icmp", "target": "db", "settings": map[string]any{"count": 99}}, "settings.count"},
		{map[string]any{"name": "t", "kind": "tcp", "target": "db"}, "target"},
		{map[string]any{"name": "t", "kind": "tcp", "target": "db:70000"}, "target"},
		{map[string]any{"name": "d", "kind": "dns", "target": "example.com", "settings": map[string]any{"record_type": "SOA"}}, "settings.record_type"},
		{map[string]any{"name": "s", "kind": "snmp", "target": "switch:161", "settings": map[string]any{"version": "2c"}}, "settings.community"},
		{map[string]any{"name": "s", "kind": "snmp", "target": "switch:161", "settings": map[string]any{"version": "3", "username": "u",
			"auth_protocol": "SHA", "auth_password": "short", "priv_protocol": "AES", "priv_password": "long-enough"}}, "settings.auth_password"},
		{map[string]any{"name": "h", "kind": "http", "target": "https://x.example", "settings": map[string]any{"body_regex": "("}}, "settings.body_regex"},
		{map[string]any{"name": "h", "kind": "http", "target": "https://x.example", "settings": map[string]any{"colour": "red"}}, "settings.colour"},
		{map[string]any{"name": "x", "kind": "smtp", "target": "mail:25"}, "kind"},
		{map[string]any{"name": "x", "kind": "tcp", "target": "db:5432", "host_id": 999999}, "host_id"},
	}
	for _, c := range perKind {
		got := w.call(t, "POST", "/api/v1/checks", editor, c.body)
		if got.status != http.StatusBadRequest || !strings.Contains(got.raw, `"field":"`+c.field+`"`) {
			t.Errorf("%v: %d %s, want 400 naming %s", c.body, got.status, got.raw, c.field)
		}
	}

	// Malformed and oversized bodies.
	if got := w.call(t, "POST", "/api/v1/hosts", editor, `{"name": `); got.status != http.StatusBadRequest || !strings.Contains(got.raw, "malformed JSON") {
		t.Errorf("truncated JSON: %d %s", got.status, got.raw)
	}
	if got := w.call(t, "POST", "/api/v1/hosts", editor, `{"name": 42}`); got.status != http.StatusBadRequest || !strings.Contains(got.raw, `"field":"name"`) {
		t.Errorf("wrong type: %d %s", got.status, got.raw)
	}
	big := `{"name": "` + strings.Repeat("x", api.MaxBodyBytes) + `"}`
	if got := w.call(t, "POST", "/api/v1/hosts", editor, big); got.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", got.status)
	}

	// A valid check of each kind is accepted, and secret settings never come back.
	snmp := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "core switch", "kind": "snmp", "target": "switch:161",
		"settings": map[string]any{"version": "2c", "community": "s3cret-community"}}).must(t, http.StatusCreated)
	if strings.Contains(snmp.raw, "s3cret-community") {
		t.Fatalf("the community string came back: %s", snmp.raw)
	}
	// Sending the mask back keeps the secret; the stored value is intact.
	w.call(t, "PATCH", "/api/v1/checks/"+snmp.id(t), editor, map[string]any{"settings": map[string]any{"version": "2c",
		"community": "********"}, "interval_seconds": 120}).must(t, http.StatusOK)
	if _, settings := w.storedCheck(t, snmp.id(t)); settings["community"] != "s3cret-community" {
		t.Fatalf("stored community = %v", settings["community"])
	}
	for _, body := range []map[string]any{
		{"name": "ping", "kind": "icmp", "target": "192.0.2.1", "settings": map[string]any{"count": 5}},
		{"name": "web", "kind": "http", "target": "https://example.com/health", "settings": map[string]any{"expected_status": []int{200, 204}}},
		{"name": "pg", "kind": "tcp", "target": "db.internal:5432"},
		{"name": "dns", "kind": "dns", "target": "example.com", "settings": map[string]any{"record_type": "AAAA"}},
	} {
		w.call(t, "POST", "/api/v1/checks", editor, body).must(t, http.StatusCreated)
	}
}

func TestPaginationAndLabelFilter(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		editor := w.a.tokens["editor"]
		for i, env := range []string{"prod", "prod", "dev", "prod", "dev"} {
			w.call(t, "POST", "/api/v1/hosts", editor, map[string]any{"name": "host-" + string(rune('a'+i)),
				"labels": map[string]string{"env": env}}).must(t, http.StatusCreated)
		}
		seen := map[string]bool{}
		path := "/api/v1/hosts?limit=2"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			got := w.call(t, "GET", path, editor, nil).must(t, http.StatusOK)
			items, _ := got.json["items"].([]any)
			for _, it := range items {
				name := it.(map[string]any)["name"].(string)
				if seen[name] {
					t.Fatalf("%s on two pages", name)
				}
				seen[name] = true
			}
			next, _ := got.json["next_cursor"].(string)
			if next == "" {
				break
			}
			path = "/api/v1/hosts?limit=2&cursor=" + next
		}
		if len(seen) != 5 {
			t.Fatalf("pages held %d hosts, want 5", len(seen))
		}
		prod := w.call(t, "GET", "/api/v1/hosts?label.env=prod", editor, nil).must(t, http.StatusOK)
		if items := prod.json["items"].([]any); len(items) != 3 {
			t.Errorf("label.env=prod matched %d hosts, want 3", len(items))
		}
		for _, bad := range []string{"limit=0", "limit=1000000", "limit=abc", "cursor=!!!"} {
			got := w.call(t, "GET", "/api/v1/hosts?"+bad, editor, nil)
			if got.status != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", bad, got.status)
			}
		}
		// Tenant B sees none of them.
		if got := w.call(t, "GET", "/api/v1/hosts", w.b.tokens["owner"], nil).must(t, http.StatusOK); len(got.json["items"].([]any)) != 0 {
			t.Errorf("tenant B sees A's hosts: %s", got.raw)
		}
		// Every change is in the audit log, newest first, for admins.
		audit := w.call(t, "GET", "/api/v1/audit?limit=3", w.a.tokens["admin"], nil).must(t, http.StatusOK)
		entries := audit.json["items"].([]any)
		if len(entries) != 3 || entries[0].(map[string]any)["action"] != "host.create" || audit.json["next_cursor"] == nil {
			t.Errorf("audit: %s", audit.raw)
		}
		w.call(t, "GET", "/api/v1/audit", w.a.tokens["editor"], nil).must(t, http.StatusForbidden)
	})
}

func TestRateLimitsAnswer429WithRetryAfter(t *testing.T) {
	w := newWorld(t, api.RateLimits{TenantRate: 0.5, TenantBurst: 3, CredentialRate: 100, CredentialBurst: 100,
		LoginRate: 1.0 / 60, LoginBurst: 2})
	var limited response
	for range 5 {
		if limited = w.call(t, "GET", "/api/v1/hosts", w.a.tokens["viewer"], nil); limited.status == http.StatusTooManyRequests {
			break
		}
	}
	if limited.status != http.StatusTooManyRequests || limited.header.Get("Retry-After") == "" {
		t.Fatalf("no 429 with Retry-After after a burst: %d %v", limited.status, limited.header)
	}
	// Another tenant is not affected.
	w.call(t, "GET", "/api/v1/hosts", w.b.tokens["viewer"], nil).must(t, http.StatusOK)

	// Password guessing is cut short.
	var login response
	for range 4 {
		login = w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": w.a.emails["owner"], "password": "guess-guess-guess"})
	}
	if login.status != http.StatusTooManyRequests || login.header.Get("Retry-After") == "" {
		t.Fatalf("login after 4 failures: %d", login.status)
	}
}

func TestOperatorManagesTenants(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		w.call(t, "GET", "/api/v1/operator/tenants", "", nil).must(t, http.StatusUnauthorized)
		w.call(t, "GET", "/api/v1/operator/tenants", "wrong-token", nil).must(t, http.StatusUnauthorized)
		w.call(t, "GET", "/api/v1/operator/tenants", w.a.tokens["owner"], nil).must(t, http.StatusUnauthorized)

		created := w.call(t, "POST", "/api/v1/operator/tenants", operatorToken, map[string]any{"name": "Charlie Ltd",
			"admin_email": "boss@charlie.example"}).must(t, http.StatusCreated)
		if created.str("slug") != "charlie-ltd" || len(created.str("admin_password")) < 20 {
			t.Fatalf("created %s", created.raw)
		}
		w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": "boss@charlie.example", "password": created.str("admin_password")}).
			must(t, http.StatusOK)
		list := w.call(t, "GET", "/api/v1/operator/tenants", operatorToken, nil).must(t, http.StatusOK)
		if n := len(list.json["items"].([]any)); n != 3 {
			t.Errorf("operator sees %d tenants, want 3", n)
		}

		a := w.a.id.String()
		w.call(t, "POST", "/api/v1/operator/tenants/"+a+"/suspend", operatorToken, nil).must(t, http.StatusOK)
		if got := w.call(t, "GET", "/api/v1/hosts", w.a.tokens["viewer"], nil); got.status != http.StatusForbidden || !strings.Contains(got.raw, "suspended") {
			t.Fatalf("a suspended tenant's token: %d %s", got.status, got.raw)
		}
		w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": w.a.emails["viewer"], "password": w.a.pass["viewer"]}).
			must(t, http.StatusForbidden)
		w.call(t, "POST", "/api/v1/operator/tenants/"+a+"/resume", operatorToken, nil).must(t, http.StatusOK)
		w.call(t, "GET", "/api/v1/hosts", w.a.tokens["viewer"], nil).must(t, http.StatusOK)
		w.call(t, "DELETE", "/api/v1/operator/tenants/"+created.str("tenant_id"), operatorToken, nil).must(t, http.StatusNoContent)
		w.call(t, "DELETE", "/api/v1/operator/tenants/"+created.str("tenant_id"), operatorToken, nil).must(t, http.StatusNotFound)
	})
}

// An owner deletes its tenant: every row of it goes, time series included, and other tenants keep theirs.
func TestTenantDeletion(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		ctx := context.Background()
		for _, tw := range []*tenantWorld{w.a, w.b} {
			host := w.call(t, "POST", "/api/v1/hosts", tw.tokens["owner"], map[string]any{"name": "h"}).must(t, http.StatusCreated)
			_, err := w.d.Pool.Exec(ctx, `
				WITH s AS (INSERT INTO app.series (tenant_id, host_id, name) VALUES ($1, $2, 'cpu') RETURNING id)
				INSERT INTO ts.samples (time, tenant_id, series_id, value) SELECT $3, $1, id, 1 FROM s`, tw.id, host.id(t), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.d.Pool.Exec(ctx, `INSERT INTO ts.logs (time, tenant_id, message) VALUES (now(), $1, 'hi')`, tw.id); err != nil {
				t.Fatal(err)
			}
		}
		w.call(t, "DELETE", "/api/v1/tenant", w.a.tokens["admin"], nil).must(t, http.StatusForbidden)
		w.call(t, "DELETE", "/api/v1/tenant", w.a.tokens["owner"], nil).must(t, http.StatusNoContent)

		count := func(table string, tenantID any) int {
			var n int
			col := "tenant_id"
			if table == "app.tenants" {
				col = "id"
			}
			if err := w.d.Pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE "+col+" = $1", tenantID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for _, table := range []string{"app.tenants", "app.memberships", "app.hosts", "app.series", "app.audit_log", "ts.samples", "ts.logs"} {
			if n := count(table, w.a.id); n != 0 {
				t.Errorf("%s keeps %d rows of the deleted tenant", table, n)
			}
			if table != "app.audit_log" && count(table, w.b.id) == 0 {
				t.Errorf("%s lost tenant B's rows", table)
			}
		}
		w.call(t, "GET", "/api/v1/tenant", w.a.tokens["owner"], nil).must(t, http.StatusUnauthorized)
	})
}
