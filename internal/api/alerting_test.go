package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/alerting"
	"github.com/infrawatch/infrawatch/internal/db"
)

// firingAlert stores a firing alert of rule (an id of tenant tw), as the alerter would, and returns its id.
func (w *world) firingAlert(t *testing.T, tw *tenantWorld, rule string) string {
	t.Helper()
	var id int64
	if err := w.d.Pool.QueryRow(context.Background(), `INSERT INTO app.alerts (tenant_id, rule_id, fingerprint, state, severity, labels, started_at)
		VALUES ($1, $2, 'fixture', 'firing', 'warning', '{"host": "db-1"}', now()) RETURNING id`, tw.id, rule).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(id, 10)
}

// cpuSeries stores host web-1 of tw with a cpu series valued v for the last ten minutes, every 10 s.
func (w *world) cpuSeries(t *testing.T, tw *tenantWorld, host string, v float64) int64 {
	t.Helper()
	ctx := context.Background()
	var hostID, series int64
	if err := w.d.Pool.QueryRow(ctx, `INSERT INTO app.hosts (tenant_id, name) VALUES ($1, $2)
		ON CONFLICT (tenant_id, name) DO UPDATE SET name = excluded.name RETURNING id`, tw.id, host).Scan(&hostID); err != nil {
		t.Fatal(err)
	}
	if err := w.d.Pool.QueryRow(ctx, `INSERT INTO app.series (tenant_id, host_id, name, labels) VALUES ($1, $2, 'cpu', $3)
		ON CONFLICT (tenant_id, name, labels) DO UPDATE SET name = excluded.name RETURNING id`,
		tw.id, hostID, fmt.Sprintf(`{"host": %q}`, host)).Scan(&series); err != nil {
		t.Fatal(err)
	}
	w.samplesNow(t, tw, series, v)
	return series
}

// samplesNow stores v for series every 10 s over the last ten minutes, replacing what is there.
func (w *world) samplesNow(t *testing.T, tw *tenantWorld, series int64, v float64) {
	t.Helper()
	if _, err := w.d.Pool.Exec(context.Background(), `INSERT INTO ts.samples (time, tenant_id, series_id, value)
		SELECT g, $1, $2, $3 FROM generate_series(date_trunc('second', now()) - interval '10 minutes', now(), interval '10 seconds') g
		ON CONFLICT (series_id, time) DO NOTHING`, tw.id, series, v); err != nil {
		t.Fatal(err)
	}
	// Newer samples decide: drop those of the last minute and store v again.
	if _, err := w.d.Pool.Exec(context.Background(), `DELETE FROM ts.samples WHERE series_id = $1 AND time > now() - interval '2 minutes'`,
		series); err != nil {
		t.Fatal(err)
	}
	if _, err := w.d.Pool.Exec(context.Background(), `INSERT INTO ts.samples (time, tenant_id, series_id, value)
		SELECT g, $1, $2, $3 FROM generate_series(date_trunc('second', now()) - interval '110 seconds', now(), interval '10 seconds') g`,
		tw.id, series, v); err != nil {
		t.Fatal(err)
	}
}

// evaluate makes every rule due and runs an alerter until nothing is due.
func (w *world) evaluate(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.alert_rules SET next_eval_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	e := alerting.New(alerting.Config{Owner: "api-test"}, db.NewSystem(w.d.Pool), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	for {
		n, err := e.RunOnce(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func (w *world) channel(t *testing.T, tw *tenantWorld, name string) int64 {
	t.Helper()
	var id int64
	if err := w.d.Pool.QueryRow(context.Background(), `INSERT INTO app.channels (tenant_id, name, kind) VALUES ($1, $2, 'webhook') RETURNING id`,
		tw.id, name).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func fieldsOf(r response) []string {
	var out []string
	errs, _ := r.json["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["field"].(string))
	}
	slices.Sort(out)
	return out
}

func mustFields(t *testing.T, r response, want ...string) {
	t.Helper()
	slices.Sort(want)
	if r.status != http.StatusBadRequest || !slices.Equal(fieldsOf(r), want) {
		t.Fatalf("status %d, fields %q, want 400 naming %q: %s", r.status, fieldsOf(r), want, r.raw)
	}
}

// Rules are created, read, listed, changed and deleted by editors; every bad field is named, a channel
// that is not the tenant's included; a name is unique in a tenant.
func TestAlertRulesAPI(t *testing.T) {
	w := newWorld(t, testLimits)
	editor, viewer := w.a.tokens["editor"], w.a.tokens["viewer"]
	ch := w.channel(t, w.a, "ops")
	chB := w.channel(t, w.b, "theirs")
	created := w.call(t, "POST", "/api/v1/alert-rules", editor, map[string]any{"name": "cpu high", "kind": "threshold",
		"severity": "critical", "labels": map[string]string{"team": "web"}, "for": "5m", "channels": []int64{ch},
		"escalation": []map[string]any{{"after": "15m", "channels": []int64{ch}}},
		"summary":    "{{.Host}} cpu {{.Value}}",
		"settings": map[string]any{"metric": "cpu.usage_pct", "matchers": []map[string]string{{"name": "cpu", "op": "=", "value": "total"}},
			"comparator": ">", "threshold": 90}}).must(t, http.StatusCreated)
	id := created.id(t)
	for k, want := range map[string]string{"interval": "1m", "repeat_interval": "4h", "for": "5m", "severity": "critical"} {
		if got := created.str(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(created.raw, `"window":"5m"`) || !strings.Contains(created.raw, `"agg":"avg"`) ||
		!strings.Contains(created.raw, `"flapping":{"changes":6,"window":"1h"}`) {
		t.Fatalf("defaults not shown: %s", created.raw)
	}
	// Every bad field, named.
	mustFields(t, w.call(t, "POST", "/api/v1/alert-rules", editor, map[string]any{"name": "", "kind": "threshold", "for": "soon",
		"summary": "{{.Value", "channels": []int64{ch, chB, 999999}, "settings": map[string]any{"metric": "", "comparator": "?",
			"threshold": 1, "window": "1y"}}),
		"for", "name", "summary", "settings.comparator", "settings.metric", "settings.window")
	mustFields(t, w.call(t, "POST", "/api/v1/alert-rules", editor, map[string]any{"name": "x", "kind": "threshold",
		"channels": []int64{ch, chB, 999999}, "settings": map[string]any{"metric": "m", "comparator": ">", "threshold": 1}}),
		"channels[1]", "channels[2]")
	mustFields(t, w.call(t, "POST", "/api/v1/alert-rules", editor, map[string]any{"name": "x", "kind": "threshold", "id": 3,
		"next_eval_at": "now", "settings": map[string]any{}}), "id", "next_eval_at")
	w.call(t, "POST", "/api/v1/alert-rules", editor, map[string]any{"name": "cpu high", "kind": "log",
		"settings": map[string]any{"comparator": ">", "threshold": 1}}).must(t, http.StatusConflict)
	w.call(t, "POST", "/api/v1/alert-rules", viewer, map[string]any{"name": "v"}).must(t, http.StatusForbidden)

	// One of each other kind, as the README writes them.
	for _, body := range []map[string]any{
		{"name": "web-1 silent", "kind": "absent", "settings": map[string]any{"host": "web-1", "silent_for": "5m"}},
		{"name": "shop down", "kind": "check", "settings": map[string]any{"host_labels": map[string]string{"env": "prod"}, "check_kind": "http",
			"down_count": 3}},
		{"name": "timeouts", "kind": "log", "settings": map[string]any{"severity": "error", "pattern": "upstream .* timed out",
			"window": "5m", "comparator": ">", "threshold": 10}},
	} {
		w.call(t, "POST", "/api/v1/alert-rules", editor, body).must(t, http.StatusCreated)
	}
	page := w.call(t, "GET", "/api/v1/alert-rules?kind=log", viewer, nil).must(t, http.StatusOK)
	if items := page.json["items"].([]any); len(items) != 1 {
		t.Fatalf("rules of kind log: %s", page.raw)
	}
	w.call(t, "GET", "/api/v1/alert-rules?kind=magic", viewer, nil).must(t, http.StatusBadRequest)

	// A change keeps what it does not name; the kind stays.
	patched := w.call(t, "PATCH", "/api/v1/alert-rules/"+id, editor, map[string]any{"enabled": false, "interval": "30s"}).
		must(t, http.StatusOK)
	if patched.json["enabled"] != false || patched.str("interval") != "30s" || patched.str("for") != "5m" {
		t.Fatalf("patched: %s", patched.raw)
	}
	mustFields(t, w.call(t, "PATCH", "/api/v1/alert-rules/"+id, editor, map[string]any{"kind": "log"}), "kind")
	mustFields(t, w.call(t, "PATCH", "/api/v1/alert-rules/"+id, editor, map[string]any{"settings": map[string]any{"metric": "x",
		"comparator": ">", "threshold": 1, "recover_threshold": 2}}), "settings.recover_threshold")
	w.call(t, "GET", "/api/v1/alert-rules/"+id, w.b.tokens["owner"], nil).must(t, http.StatusNotFound)
	w.call(t, "DELETE", "/api/v1/alert-rules/"+id, editor, nil).must(t, http.StatusNoContent)
	w.call(t, "GET", "/api/v1/alert-rules/"+id, editor, nil).must(t, http.StatusNotFound)
	audit := w.call(t, "GET", "/api/v1/audit", w.a.tokens["admin"], nil).must(t, http.StatusOK)
	for _, action := range []string{"alert_rule.create", "alert_rule.update", "alert_rule.delete"} {
		if !strings.Contains(audit.raw, action) {
			t.Errorf("the audit log lacks %s", action)
		}
	}
}

// Alerts raised by the alerter are listed with filters, shown with their timeline (transitions with the
// value, acknowledgements, notifications), acknowledged by editors, and streamed; the other tenant sees
// none of them.
func TestAlertsAPI(t *testing.T) {
	w := newWorld(t, testLimits)
	w.waitHub(t)
	editor, viewer := w.a.tokens["editor"], w.a.tokens["viewer"]
	ch := w.channel(t, w.a, "ops")
	series := w.cpuSeries(t, w.a, "web-1", 97)
	w.cpuSeries(t, w.b, "web-1", 97) // the other tenant's twin
	rule := w.call(t, "POST", "/api/v1/alert-rules", editor, map[string]any{"name": "cpu", "kind": "threshold", "channels": []int64{ch},
		"summary": "{{.Host}} at {{.Value}}", "settings": map[string]any{"metric": "cpu", "window": "1m", "agg": "max",
			"comparator": ">", "threshold": 90}}).must(t, http.StatusCreated).id(t)
	stream := w.openStream(t, viewer, "", nil)
	other := w.openStream(t, w.b.tokens["viewer"], "", nil)
	w.evaluate(t)

	ev := mustEvent(t, stream.next(t), "alert.firing")
	fired := decodeData[map[string]any](t, ev)
	alertID := strconv.Itoa(int(fired["alert_id"].(float64)))
	if fired["summary"] != "web-1 at 97" || fmt.Sprint(fired["rule_id"]) != rule {
		t.Fatalf("alert.firing %s", ev.Data)
	}

	list := w.call(t, "GET", "/api/v1/alerts?state=firing,pending&label.host=web-1&rule_id="+rule, viewer, nil).must(t, http.StatusOK)
	if items := list.json["items"].([]any); len(items) != 1 {
		t.Fatalf("alerts: %s", list.raw)
	}
	for _, q := range []string{"state=resolved", "label.host=web-2", "severity=critical", "host_id=999999"} {
		if items := w.call(t, "GET", "/api/v1/alerts?"+q, viewer, nil).must(t, http.StatusOK).json["items"].([]any); len(items) != 0 {
			t.Errorf("?%s: %d alerts", q, len(items))
		}
	}
	mustFields(t, w.call(t, "GET", "/api/v1/alerts?state=burning&severity=loud&rule_id=x", viewer, nil), "rule_id", "severity", "state")
	if items := w.call(t, "GET", "/api/v1/alerts", w.b.tokens["owner"], nil).must(t, http.StatusOK).json["items"].([]any); len(items) != 0 {
		t.Fatalf("the other tenant lists %d alerts", len(items))
	}
	w.call(t, "GET", "/api/v1/alerts/"+alertID, w.b.tokens["owner"], nil).must(t, http.StatusNotFound)

	detail := w.call(t, "GET", "/api/v1/alerts/"+alertID, viewer, nil).must(t, http.StatusOK)
	if detail.str("state") != "firing" || detail.json["value"].(float64) != 97 || fmt.Sprint(detail.json["series_id"]) != strconv.Itoa(int(series)) {
		t.Fatalf("alert: %s", detail.raw)
	}
	timeline := detail.json["timeline"].([]any)
	if len(timeline) != 2 || timeline[0].(map[string]any)["to"] != "firing" || timeline[0].(map[string]any)["value"].(float64) != 97 ||
		timeline[1].(map[string]any)["type"] != "notification" ||
		timeline[1].(map[string]any)["notification"].(map[string]any)["channel_name"] != "ops" {
		t.Fatalf("timeline: %v", timeline)
	}

	w.call(t, "POST", "/api/v1/alerts/"+alertID+"/ack", viewer, map[string]any{}).must(t, http.StatusForbidden)
	acked := w.call(t, "POST", "/api/v1/alerts/"+alertID+"/ack", editor, map[string]any{"comment": "looking"}).must(t, http.StatusOK)
	ack := acked.json["ack"].(map[string]any)
	if ack["by"] != w.a.emails["editor"] || ack["comment"] != "looking" {
		t.Fatalf("ack: %s", acked.raw)
	}
	mustEvent(t, stream.next(t), "alert.acked")
	w.call(t, "POST", "/api/v1/alerts/"+alertID+"/unack", editor, nil).must(t, http.StatusNoContent)
	tl := w.call(t, "GET", "/api/v1/alerts/"+alertID, viewer, nil).must(t, http.StatusOK).json["timeline"].([]any)
	var kinds []string
	for _, e := range tl {
		kinds = append(kinds, e.(map[string]any)["type"].(string))
	}
	if !slices.Equal(kinds, []string{"state", "notification", "ack", "unack"}) || tl[2].(map[string]any)["actor"] != w.a.emails["editor"] {
		t.Fatalf("timeline: %v", tl)
	}

	// Resolved, it can no longer be acknowledged.
	w.samplesNow(t, w.a, series, 10)
	w.evaluate(t)
	mustEvent(t, stream.next(t), "alert.resolved")
	w.call(t, "POST", "/api/v1/alerts/"+alertID+"/ack", editor, map[string]any{}).must(t, http.StatusConflict)
	// The other tenant's stream heard nothing of it (its own twin has no rule).
	select {
	case ev := <-other.ch:
		if ev.Event != "" {
			t.Fatalf("the other tenant's stream got %s %s", ev.Event, ev.Data)
		}
	default:
	}
}

// Silences and maintenance windows: created, validated field by field, changed, ended; windows show
// their next occurrences in the tenant's time zone and name hosts and checks of the tenant only.
func TestSilencesAndMaintenanceWindowsAPI(t *testing.T) {
	w := newWorld(t, testLimits)
	editor, viewer := w.a.tokens["editor"], w.a.tokens["viewer"]
	mustFields(t, w.call(t, "POST", "/api/v1/silences", editor, map[string]any{"matchers": []map[string]string{{"name": "host",
		"op": "~", "value": "x"}}, "starts_at": "tomorrow"}), "ends_at", "starts_at")
	mustFields(t, w.call(t, "POST", "/api/v1/silences", editor, map[string]any{"matchers": []map[string]string{{"name": "host",
		"op": "~", "value": "x"}}, "ends_at": time.Now().Add(-time.Hour).Format(time.RFC3339)}), "ends_at", "matchers[0].op")
	s := w.call(t, "POST", "/api/v1/silences", editor, map[string]any{"matchers": []map[string]string{{"name": "host", "op": "=~",
		"value": "web-.*"}}, "ends_at": time.Now().Add(time.Hour).Format(time.RFC3339), "comment": "deploy"}).must(t, http.StatusCreated)
	if s.str("state") != "active" || s.str("created_by") != w.a.emails["editor"] {
		t.Fatalf("silence: %s", s.raw)
	}
	id := s.id(t)
	w.call(t, "PATCH", "/api/v1/silences/"+id, editor, map[string]any{"comment": "longer deploy"}).must(t, http.StatusOK)
	active := w.call(t, "GET", "/api/v1/silences?active=true", viewer, nil).must(t, http.StatusOK)
	if len(active.json["items"].([]any)) != 1 {
		t.Fatalf("active silences: %s", active.raw)
	}
	if e := w.call(t, "DELETE", "/api/v1/silences/"+id, editor, nil).must(t, http.StatusOK); e.str("state") != "expired" {
		t.Fatalf("expired: %s", e.raw)
	}
	if active = w.call(t, "GET", "/api/v1/silences?active=true", viewer, nil).must(t, http.StatusOK); len(active.json["items"].([]any)) != 0 {
		t.Fatalf("an expired silence is active: %s", active.raw)
	}
	if all := w.call(t, "GET", "/api/v1/silences", viewer, nil).must(t, http.StatusOK); len(all.json["items"].([]any)) != 1 {
		t.Fatalf("the expired silence is not listed: %s", all.raw)
	}

	w.call(t, "PATCH", "/api/v1/tenant", w.a.tokens["admin"], map[string]any{"time_zone": "Europe/Berlin"}).must(t, http.StatusOK)
	hostB, _ := strconv.Atoi(w.call(t, "POST", "/api/v1/hosts", w.b.tokens["owner"], map[string]any{"name": "theirs"}).must(t, http.StatusCreated).id(t))
	hostA, _ := strconv.Atoi(w.call(t, "POST", "/api/v1/hosts", editor, map[string]any{"name": "ours"}).must(t, http.StatusCreated).id(t))
	mustFields(t, w.call(t, "POST", "/api/v1/maintenance-windows", editor, map[string]any{"name": "nightly", "cron": "0 25 * * *",
		"duration": "2h", "host_ids": []int{hostA, hostB}}), "cron", "host_ids[1]")
	mustFields(t, w.call(t, "POST", "/api/v1/maintenance-windows", editor, map[string]any{"name": "x",
		"starts_at": time.Now().Format(time.RFC3339)}), "ends_at")
	win := w.call(t, "POST", "/api/v1/maintenance-windows", editor, map[string]any{"name": "nightly", "cron": "0 3 * * *",
		"duration": "2h", "host_ids": []int{hostA}, "matchers": []map[string]string{{"name": "env", "op": "=", "value": "prod"}}}).
		must(t, http.StatusCreated)
	next := win.json["next"].([]any)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if len(next) != 5 || win.str("time_zone") != "Europe/Berlin" || win.str("duration") != "2h" {
		t.Fatalf("window: %s", win.raw)
	}
	for _, o := range next {
		start, _ := time.Parse(time.RFC3339, o.(map[string]any)["starts_at"].(string))
		end, _ := time.Parse(time.RFC3339, o.(map[string]any)["ends_at"].(string))
		if start.In(berlin).Hour() != 3 || end.Sub(start) != 2*time.Hour {
			t.Fatalf("occurrence %v – %v is not 03:00–05:00 Berlin time", start.In(berlin), end.In(berlin))
		}
	}
	wid := win.id(t)
	changed := w.call(t, "PATCH", "/api/v1/maintenance-windows/"+wid, editor, map[string]any{"cron": "30 1 * * 0"}).must(t, http.StatusOK)
	start, _ := time.Parse(time.RFC3339, changed.json["next"].([]any)[0].(map[string]any)["starts_at"].(string))
	if l := start.In(berlin); l.Weekday() != time.Sunday || l.Hour() != 1 || l.Minute() != 30 {
		t.Fatalf("after the change the next occurrence is %v", l)
	}
	w.call(t, "DELETE", "/api/v1/maintenance-windows/"+wid, editor, nil).must(t, http.StatusNoContent)
	w.call(t, "GET", "/api/v1/maintenance-windows/"+wid, viewer, nil).must(t, http.StatusNotFound)
	var future int
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM app.maintenance_occurrences WHERE window_id = $1
		AND lower(during) > now()`, wid).Scan(&future); err != nil || future != 0 {
		t.Fatalf("occurrences to come of a deleted window: %d (%v)", future, err)
	}
}

// A backtest answers the alerts a rule would have raised over the stored data, saves nothing, and sees
// only the caller's tenant.
func TestBacktestAPI(t *testing.T) {
	w := newWorld(t, testLimits)
	w.cpuSeries(t, w.a, "web-1", 97)
	body := map[string]any{"rule": map[string]any{"kind": "threshold", "interval": "1m", "settings": map[string]any{"metric": "cpu",
		"window": "1m", "agg": "max", "comparator": ">", "threshold": 90}},
		"from": time.Now().Add(-5 * time.Minute).Format(time.RFC3339), "to": time.Now().Format(time.RFC3339)}
	res := w.call(t, "POST", "/api/v1/alert-rules/backtest", w.a.tokens["editor"], body).must(t, http.StatusOK)
	alerts := res.json["alerts"].([]any)
	if len(alerts) != 1 || alerts[0].(map[string]any)["peak"].(float64) != 97 || res.json["evaluations"].(float64) != 6 {
		t.Fatalf("backtest: %s", res.raw)
	}
	if a := alerts[0].(map[string]any); a["labels"].(map[string]any)["host"] != "web-1" || a["end"] != nil {
		t.Fatalf("would-be alert: %v", a)
	}
	theirs := w.call(t, "POST", "/api/v1/alert-rules/backtest", w.b.tokens["editor"], body).must(t, http.StatusOK)
	if len(theirs.json["alerts"].([]any)) != 0 {
		t.Fatalf("the other tenant's backtest found A's data: %s", theirs.raw)
	}
	w.call(t, "POST", "/api/v1/alert-rules/backtest", w.a.tokens["viewer"], body).must(t, http.StatusForbidden)
	mustFields(t, w.call(t, "POST", "/api/v1/alert-rules/backtest", w.a.tokens["editor"], map[string]any{
		"rule": map[string]any{"kind": "threshold", "interval": "10s", "settings": map[string]any{"metric": "", "comparator": ">",
			"threshold": 1}}, "from": time.Now().Add(-30 * 24 * time.Hour).Format(time.RFC3339)}), "rule.settings.metric")
	mustFields(t, w.call(t, "POST", "/api/v1/alert-rules/backtest", w.a.tokens["editor"], map[string]any{
		"rule": map[string]any{"kind": "threshold", "interval": "10s", "settings": map[string]any{"metric": "cpu", "comparator": ">",
			"threshold": 1}}, "from": time.Now().Add(-30 * 24 * time.Hour).Format(time.RFC3339)}), "from")
	var rules int
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM app.alert_rules`).Scan(&rules); err != nil || rules != 0 {
		t.Fatalf("a backtest saved %d rules (%v)", rules, err)
	}
}

// A check names its parent (dependencies): a check of the tenant that does not depend on it.
func TestCheckParent(t *testing.T) {
	w := newWorld(t, testLimits)
	editor := w.a.tokens["editor"]
	mk := func(tw *tenantWorld, name string) string {
		return w.call(t, "POST", "/api/v1/checks", tw.tokens["editor"], map[string]any{"name": name, "kind": "tcp",
			"target": "127.0.0.1:1"}).must(t, http.StatusCreated).id(t)
	}
	router, switchA, web := mk(w.a, "router"), mk(w.a, "switch"), mk(w.a, "web")
	theirs := mk(w.b, "theirs")
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	w.call(t, "PATCH", "/api/v1/checks/"+switchA, editor, map[string]any{"parent_id": n(router)}).must(t, http.StatusOK)
	got := w.call(t, "PATCH", "/api/v1/checks/"+web, editor, map[string]any{"parent_id": n(switchA)}).must(t, http.StatusOK)
	if fmt.Sprint(got.json["parent_id"]) != switchA {
		t.Fatalf("parent: %s", got.raw)
	}
	mustFields(t, w.call(t, "PATCH", "/api/v1/checks/"+router, editor, map[string]any{"parent_id": n(web)}), "parent_id")
	mustFields(t, w.call(t, "PATCH", "/api/v1/checks/"+router, editor, map[string]any{"parent_id": n(router)}), "parent_id")
	mustFields(t, w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "x", "kind": "tcp", "target": "127.0.0.1:2",
		"parent_id": n(theirs)}), "parent_id")
	cleared := w.call(t, "PATCH", "/api/v1/checks/"+web, editor, map[string]any{"parent_id": 0}).must(t, http.StatusOK)
	if cleared.json["parent_id"] != nil {
		t.Fatalf("cleared: %s", cleared.raw)
	}
}
