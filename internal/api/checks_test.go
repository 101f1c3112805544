package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/checks"
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
		{map[string]any{"name": "long", "kind": "http", "target": "https://shop.example/" + strings.Repeat("p", 2048)}, "target"},
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

// storedCheck reads a check's target and settings as stored, as the owner.
func (w *world) storedCheck(t *testing.T, id string) (target string, settings map[string]any) {
	t.Helper()
	var raw, sealed []byte
	var tenant uuid.UUID
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT target, settings, secrets, tenant_id FROM app.checks WHERE id = $1`, id).
		Scan(&target, &raw, &sealed, &tenant); err != nil {
		t.Fatal(err)
	}
	// The secrets are sealed apart from the settings, which hold the mask in their place.
	raw, err := checks.OpenSecrets(w.deps.Secrets, tenant, raw, sealed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &settings); err != nil {
		t.Fatal(err)
	}
	return target, settings
}

// namesFields fails unless r is a 400 naming every field of fields with a message containing say.
func namesFields(t *testing.T, r response, say string, fields ...string) {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Errorf("status %d, want 400 naming %v: %s", r.status, fields, r.raw)
		return
	}
	errs, _ := r.json["errors"].([]any)
	for _, f := range fields {
		found := false
		for _, e := range errs {
			e, _ := e.(map[string]any)
			if e["field"] == f && strings.Contains(fmt.Sprint(e["message"]), say) {
				found = true
			}
		}
		if !found {
			t.Errorf("the answer does not name %s (%q): %s", f, say, r.raw)
		}
	}
}

// An SNMP check's stored secrets are sent only where they were set for: a PATCH that points the check
// elsewhere (target, port or SNMP version) while sending the mask — or no settings at all — is refused
// naming each secret, and changes nothing; with the secret sent again it is taken.
func TestSNMPSecretsMustBeSentAgainWhenTheTargetChanges(t *testing.T) {
	w := newWorld(t, testLimits)
	editor := w.a.tokens["editor"]
	id := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "core switch", "kind": "snmp", "target": "192.0.2.10:161",
		"settings": map[string]any{"version": "2c", "community": "s3cret-community"}}).must(t, http.StatusCreated).id(t)
	masked := map[string]any{"version": "2c", "community": "********"}
	for _, body := range []map[string]any{
		{"target": "203.0.113.66:161", "settings": masked}, // the attacker's host
		{"target": "203.0.113.66:161"},                     // settings left as stored
		{"target": "192.0.2.10:1161", "settings": masked},  // another port
		{"settings": map[string]any{"version": "1", "community": "********"}},
	} {
		namesFields(t, w.call(t, "PATCH", "/api/v1/checks/"+id, editor, body), "send the secret again", "settings.community")
		if target, settings := w.storedCheck(t, id); target != "192.0.2.10:161" || settings["community"] != "s3cret-community" ||
			settings["version"] != "2c" {
			t.Fatalf("after a refused PATCH %v the check is %s %v", body, target, settings)
		}
	}
	// The mask where nothing is stored is refused too, on create and on update.
	namesFields(t, w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "x", "kind": "snmp", "target": "192.0.2.10:161",
		"settings": masked}), "no stored secret", "settings.community")

	// With the secret sent again the new target is taken; the mask then keeps the new secret.
	moved := w.call(t, "PATCH", "/api/v1/checks/"+id, editor, map[string]any{"target": "203.0.113.66:161",
		"settings": map[string]any{"version": "2c", "community": "new-community"}}).must(t, http.StatusOK)
	if strings.Contains(moved.raw, "new-community") {
		t.Errorf("the new community came back: %s", moved.raw)
	}
	w.call(t, "PATCH", "/api/v1/checks/"+id, editor, map[string]any{"name": "renamed", "settings": masked}).must(t, http.StatusOK)
	if target, settings := w.storedCheck(t, id); target != "203.0.113.66:161" || settings["community"] != "new-community" {
		t.Fatalf("after moving with the secret: %s %v", target, settings)
	}

	// SNMPv3: both passwords.
	v3 := map[string]any{"version": "3", "username": "monitor", "security_level": "authPriv", "auth_protocol": "SHA",
		"auth_password": "auth-secret-1", "priv_protocol": "AES", "priv_password": "priv-secret-1"}
	id3 := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "edge", "kind": "snmp", "target": "192.0.2.11:161",
		"settings": v3}).must(t, http.StatusCreated).id(t)
	v3["auth_password"], v3["priv_password"] = "********", "********"
	namesFields(t, w.call(t, "PATCH", "/api/v1/checks/"+id3, editor, map[string]any{"target": "203.0.113.66:161", "settings": v3}),
		"send the secret again", "settings.auth_password", "settings.priv_password")
	w.call(t, "PATCH", "/api/v1/checks/"+id3, editor, map[string]any{"interval_seconds": 120, "settings": v3}).must(t, http.StatusOK)
	if target, settings := w.storedCheck(t, id3); target != "192.0.2.11:161" || settings["auth_password"] != "auth-secret-1" ||
		settings["priv_password"] != "priv-secret-1" {
		t.Fatalf("v3 check after the PATCHes: %s %v", target, settings)
	}
}

// An HTTP check's header values and request body carry credentials: every answer that shows the check,
// to every reader, masks them, and nothing else that leaves the server (results, runs, the audit log,
// the live stream) carries them. The stored values keep being sent to the target, and follow the check
// to another target only when sent again.
func TestHTTPCheckSecretsAreMaskedForEveryReader(t *testing.T) {
	w := newWorld(t, testLimits)
	editor, viewer, admin := w.a.tokens["editor"], w.a.tokens["viewer"], w.a.tokens["admin"]
	readKey := w.call(t, "POST", "/api/v1/api-keys", admin, map[string]any{"name": "dashboard", "scopes": []string{"read"}}).
		must(t, http.StatusCreated).str("key")
	type request struct{ authorization, apiKey, body string }
	sent := make(chan request, 10)
	site := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sent <- request{r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), string(body)}
		rw.Write([]byte("ok"))
	}))
	defer site.Close()
	secrets := []string{"tok-123", "key-456", "hunter2", "text/plain"}
	leaks := func(where, raw string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(raw, s) {
				t.Errorf("%s shows %q: %.400s", where, s, raw)
			}
		}
	}
	settings := map[string]any{"method": "POST", "headers": map[string]string{"Authorization": "Bearer tok-123", "X-Api-Key": "key-456",
		"Accept": "text/plain"}, "body": `{"password":"hunter2"}`}
	created := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "shop", "kind": "http", "target": site.URL + "/health",
		"settings": settings}).must(t, http.StatusCreated)
	id := created.id(t)
	leaks("the create answer", created.raw)
	var row string
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT settings::text || encode(coalesce(secrets, ''), 'escape')
	                                                    FROM app.checks WHERE id = $1`, id).Scan(&row); err != nil {
		t.Fatal(err)
	}
	leaks("the stored row (secrets are sealed)", row)
	answered, _ := created.json["settings"].(map[string]any)
	headers, _ := answered["headers"].(map[string]any)
	if answered["body"] != "********" || headers["Authorization"] != "********" || headers["X-Api-Key"] != "********" ||
		headers["Accept"] != "********" || answered["method"] != "POST" {
		t.Errorf("settings answered %v, want every header value and the body masked, the rest shown", answered)
	}
	for name, credential := range map[string]string{"viewer": viewer, "read key": readKey, "editor": editor} {
		leaks(name+"'s GET", w.call(t, "GET", "/api/v1/checks/"+id, credential, nil).must(t, http.StatusOK).raw)
		leaks(name+"'s list", w.call(t, "GET", "/api/v1/checks", credential, nil).must(t, http.StatusOK).raw)
	}

	// The answered settings sent back unchanged keep the stored secrets, which the run then sends.
	w.waitHub(t)
	live := w.openStream(t, viewer, "check="+id, nil)
	leaks("the update answer", w.call(t, "PATCH", "/api/v1/checks/"+id, editor, map[string]any{"name": "shop 2", "settings": answered}).
		must(t, http.StatusOK).raw)
	run := w.call(t, "POST", "/api/v1/checks/"+id+"/run", editor, nil).must(t, http.StatusOK)
	leaks("the run answer", run.raw)
	if got := <-sent; got != (request{"Bearer tok-123", "key-456", `{"password":"hunter2"}`}) {
		t.Errorf("the target received %+v, want the stored secrets", got)
	}
	for ev := live.next(t); ; ev = live.next(t) {
		leaks("the live stream", ev.Data)
		if ev.Event == "check.result" {
			break
		}
	}
	leaks("the results", w.call(t, "GET", "/api/v1/checks/"+id+"/results", viewer, nil).must(t, http.StatusOK).raw)
	leaks("the audit log", w.call(t, "GET", "/api/v1/audit", admin, nil).must(t, http.StatusOK).raw)

	// Another target needs the secrets again, every one of them; a mask with nothing stored is refused.
	allSecrets := []string{"settings.body", "settings.headers.Accept", "settings.headers.Authorization", "settings.headers.X-Api-Key"}
	elsewhere := "http://127.0.0.2:1/collect"
	namesFields(t, w.call(t, "PATCH", "/api/v1/checks/"+id, editor, map[string]any{"target": elsewhere, "settings": answered}),
		"send the secret again", allSecrets...)
	namesFields(t, w.call(t, "PATCH", "/api/v1/checks/"+id, editor, map[string]any{"target": elsewhere}),
		"send the secret again", allSecrets...)
	namesFields(t, w.call(t, "PATCH", "/api/v1/checks/"+id, editor, map[string]any{"settings": map[string]any{
		"headers": map[string]string{"X-New": "********"}}}), "no stored secret", "settings.headers.X-New")
	if target, stored := w.storedCheck(t, id); target != site.URL+"/health" || stored["body"] != `{"password":"hunter2"}` ||
		fmt.Sprint(stored["headers"]) != "map[Accept:text/plain Authorization:Bearer tok-123 X-Api-Key:key-456]" {
		t.Fatalf("after the refused PATCHes: %s %v", target, stored)
	}
	w.call(t, "PATCH", "/api/v1/checks/"+id, editor, map[string]any{"target": elsewhere, "settings": map[string]any{
		"headers": map[string]string{"Authorization": "Bearer other"}}}).must(t, http.StatusOK)
	if target, stored := w.storedCheck(t, id); target != elsewhere || fmt.Sprint(stored["headers"]) != "map[Authorization:Bearer other]" ||
		stored["body"] != nil {
		t.Fatalf("after moving with new settings: %s %v", target, stored)
	}
}
