package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// A check run through the API is stored like a scheduled run: its result is listed, newest first, and
// the check shows its status.
func TestRunCheckAndListItsResults(t *testing.T) {
	w := newWorld(t, testLimits)
	editor, viewer := w.a.tokens["editor"], w.a.tokens["viewer"]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	id := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "db port", "kind": "tcp",
		"target": ln.Addr().String()}).must(t, http.StatusCreated).id(t)

	up := w.call(t, "POST", "/api/v1/checks/"+id+"/run", editor, nil).must(t, http.StatusOK)
	if up.str("status") != "up" || up.json["latency_ms"] == nil {
		t.Fatalf("run = %s, want up with a latency", up.raw)
	}
	ln.Close()
	again := w.call(t, "POST", "/api/v1/checks/"+id+"/run", editor, nil).must(t, http.StatusTooManyRequests)
	if again.header.Get("Retry-After") == "" {
		t.Errorf("a run asked for moments after the last one: 429 without Retry-After")
	}
	if _, err := w.d.Pool.Exec(context.Background(), `UPDATE app.checks SET last_run_at = last_run_at - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	down := w.call(t, "POST", "/api/v1/checks/"+id+"/run", editor, nil).must(t, http.StatusOK)
	if down.str("status") != "down" || !strings.Contains(down.str("reason"), "refused") {
		t.Fatalf("run against a closed port = %s, want down, connection refused", down.raw)
	}

	check := w.call(t, "GET", "/api/v1/checks/"+id, viewer, nil).must(t, http.StatusOK)
	if check.str("status") != "down" || check.str("status_reason") != down.str("reason") || check.json["last_run_at"] == nil {
		t.Errorf("check after the runs = %s", check.raw)
	}
	page := w.call(t, "GET", "/api/v1/checks/"+id+"/results?limit=1", viewer, nil).must(t, http.StatusOK)
	items, _ := page.json["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["status"] != "down" || page.json["next_cursor"] == nil {
		t.Fatalf("first page = %s, want the down result and a cursor", page.raw)
	}
	next := w.call(t, "GET", fmt.Sprintf("/api/v1/checks/%s/results?limit=1&cursor=%s", id, page.json["next_cursor"]), viewer, nil).
		must(t, http.StatusOK)
	items, _ = next.json["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["status"] != "up" {
		t.Fatalf("second page = %s, want the up result", next.raw)
	}

	// Tenant B sees neither the check's results nor can run it.
	w.call(t, "GET", "/api/v1/checks/"+id+"/results", w.b.tokens["owner"], nil).must(t, http.StatusNotFound)
	w.call(t, "POST", "/api/v1/checks/"+id+"/run", w.b.tokens["owner"], nil).must(t, http.StatusNotFound)
}

// In SaaS mode a check whose target resolves to loopback, private or metadata addresses is refused when
// it is saved, naming the field.
func TestSaaSModeRefusesPrivateTargetsOnSave(t *testing.T) {
	w := newWorld(t, testLimits)
	w.guard.AllowPrivate = false
	editor := w.a.tokens["editor"]
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "x", "kind": "http", "target": "http://169.254.169.254/latest/meta-data/"}, "target"},
		{map[string]any{"name": "x", "kind": "http", "target": "http://2130706433/"}, "target"},
		{map[string]any{"name": "x", "kind": "tcp", "target": "localhost:5432"}, "target"},
		{map[string]any{"name": "x", "kind": "icmp", "target": "10.0.0.1"}, "target"},
		{map[string]any{"name": "x", "kind": "snmp", "target": "[::1]:161",
			"settings": map[string]any{"version": "2c", "community": "public"}}, "target"},
		{map[string]any{"name": "x", "kind": "dns", "target": "example.test",
			"settings": map[string]any{"server": "127.0.0.1:53"}}, "settings.server"},
	} {
		got := w.call(t, "POST", "/api/v1/checks", editor, tc.body).must(t, http.StatusBadRequest)
		if !strings.Contains(got.raw, `"field":"`+tc.field+`"`) || !strings.Contains(got.raw, "not allowed") {
			t.Errorf("%v: %s, want %s refused as not allowed", tc.body, got.raw, tc.field)
		}
	}
	// An existing check cannot be pointed at a private address either.
	w.guard.AllowPrivate = true
	id := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "x", "kind": "tcp", "target": "127.0.0.1:1"}).
		must(t, http.StatusCreated).id(t)
	w.guard.AllowPrivate = false
	w.call(t, "PATCH", "/api/v1/checks/"+id, editor, map[string]any{"target": "192.168.0.1:22"}).must(t, http.StatusBadRequest)
	// And running it is refused at connect time, sending nothing.
	run := w.call(t, "POST", "/api/v1/checks/"+id+"/run", editor, nil).must(t, http.StatusOK)
	if run.str("status") != "down" || !strings.Contains(run.str("reason"), "not allowed") {
		t.Errorf("run of a loopback target in SaaS mode = %s, want down: not allowed", run.raw)
	}
}

// Settings are bounded when a check is saved, field by field and as a whole, so that nothing a tenant
// writes there can grow a reason, a payload or a run without bound; each refusal names the field and
// stores nothing.
func TestCheckSettingsAreBounded(t *testing.T) {
	w := newWorld(t, testLimits)
	editor := w.a.tokens["editor"]
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	headers := map[string]string{}
	for i := range 33 {
		headers[fmt.Sprintf("X-H%d", i)] = "v"
	}
	bigHeaders := map[string]string{}
	for i := range 5 {
		bigHeaders[fmt.Sprintf("X-Big%d", i)] = strings.Repeat("v", 4000)
	}
	http1 := func(settings map[string]any) map[string]any {
		return map[string]any{"name": "h", "kind": "http", "target": "https://shop.example/health", "settings": settings}
	}
	snmp := func(settings map[string]any) map[string]any {
		settings["version"] = "2c"
		if settings["community"] == nil {
			settings["community"] = "public"
		}
		return map[string]any{"name": "s", "kind": "snmp", "target": "192.0.2.1:161", "settings": settings}
	}
	for i, tc := range []struct {
		body  map[string]any
		field string
	}{
		{http1(map[string]any{"body_contains": strings.Repeat("x", 9000)}), "settings.body_contains"},
		{http1(map[string]any{"body_regex": strings.Repeat("x", 1025)}), "settings.body_regex"},
		{http1(map[string]any{"body": strings.Repeat("x", 8193)}), "settings.body"},
		{http1(map[string]any{"headers": headers}), "settings.headers"},
		{http1(map[string]any{"headers": map[string]string{strings.Repeat("X", 257): "v"}}), "settings.headers"},
		{http1(map[string]any{"headers": map[string]string{"Authorization": strings.Repeat("v", 4097)}}), "settings.headers.Authorization"},
		{http1(map[string]any{"headers": map[string]string{"X-Evil": "a\r\nHost: elsewhere"}}), "settings.headers.X-Evil"},
		{http1(map[string]any{"headers": bigHeaders}), "settings"},
		{map[string]any{"name": "d", "kind": "dns", "target": "example.com",
			"settings": map[string]any{"expected": many(33, func(i int) string { return fmt.Sprintf("192.0.2.%d", i) })}}, "settings.expected"},
		{snmp(map[string]any{"oids": many(129, func(i int) string { return fmt.Sprintf("1.3.6.1.2.1.1.%d.0", i) })}), "settings.oids"},
		{snmp(map[string]any{"walk": many(33, func(i int) string { return fmt.Sprintf("1.3.6.1.2.1.%d", i) })}), "settings.walk"},
		{snmp(map[string]any{"walk": []string{"1.3.6.x"}}), "settings.walk"},
		{snmp(map[string]any{"community": strings.Repeat("c", 257)}), "settings.community"},
	} {
		got := w.call(t, "POST", "/api/v1/checks", editor, tc.body)
		if got.status != http.StatusBadRequest || !strings.Contains(got.raw, `"field":"`+tc.field+`"`) {
			t.Errorf("case %d: %d %.300s, want 400 naming %s", i, got.status, got.raw, tc.field)
		}
	}
	statuses := make([]int, 21)
	for i := range statuses {
		statuses[i] = 200 + i
	}
	if got := w.call(t, "POST", "/api/v1/checks", editor, http1(map[string]any{"expected_status": statuses})); got.status != http.StatusBadRequest ||
		!strings.Contains(got.raw, `"field":"settings.expected_status"`) {
		t.Errorf("21 expected statuses: %d %s, want 400 naming settings.expected_status", got.status, got.raw)
	}
	var n int
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM app.checks WHERE tenant_id = $1`, w.a.id).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d checks stored (%v), want none", n, err)
	}

	// At the limits a check is accepted; a PATCH past them is refused and changes nothing.
	atLimit := http1(map[string]any{"body_contains": strings.Repeat("x", 1024), "body": strings.Repeat("b", 8192),
		"headers": map[string]string{"Authorization": strings.Repeat("v", 4096)}})
	id := w.call(t, "POST", "/api/v1/checks", editor, atLimit).must(t, http.StatusCreated).id(t)
	got := w.call(t, "PATCH", "/api/v1/checks/"+id, editor, map[string]any{"settings": map[string]any{
		"body_contains": strings.Repeat("x", 1025)}}).must(t, http.StatusBadRequest)
	if !strings.Contains(got.raw, `"field":"settings.body_contains"`) {
		t.Errorf("PATCH past the limit: %s, want settings.body_contains named", got.raw)
	}
	var contains string
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT settings->>'body_contains' FROM app.checks WHERE id = $1`, id).
		Scan(&contains); err != nil || len(contains) != 1024 {
		t.Errorf("stored body_contains of %d bytes (%v), want the 1,024 saved", len(contains), err)
	}
}
