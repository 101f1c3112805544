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
