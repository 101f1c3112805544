package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/sla"
)

// slaHistory gives a tenant's check a history in October 2026 (Berlin): created on the 20th, a result
// every minute, down from 2026-10-23 10:00:05 to 10:07:40 UTC and across the month's end, no result
// for two hours on the 28th. Written as the owner, the way the poller writes.
func (w *world) slaHistory(t *testing.T, tenant uuid.UUID, check string) {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := w.d.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`SELECT infrawatch.ensure_partitions('ts.check_results', '2026-10-18', '2026-11-05')`)
	exec(`UPDATE app.checks SET created_at = '2026-10-20T00:00:00Z' WHERE id = $1`, check)
	exec(`INSERT INTO ts.check_results (time, tenant_id, check_id, status)
		SELECT t, $1, $2, CASE WHEN t >= '2026-10-23T10:00:05Z' AND t < '2026-10-23T10:07:40Z'
		                         OR t >= '2026-10-31T22:30:00Z' AND t < '2026-10-31T23:30:00Z' THEN 'down' ELSE 'up' END
		  FROM (SELECT generate_series('2026-10-20T00:00:05Z'::timestamptz, '2026-11-03T00:00:00Z', '1 minute') AS t
		        UNION SELECT unnest('{2026-10-23T10:07:40Z,2026-10-31T22:30:00Z,2026-10-31T23:30:00Z}'::timestamptz[])) x
		 WHERE NOT (t >= '2026-10-28T03:00:00Z' AND t < '2026-10-28T05:00:00Z')`, tenant, check)
	exec(`INSERT INTO app.check_events (tenant_id, check_id, time, status, reason) VALUES
		($1, $2, '2026-10-20T00:00:05Z', 'up', ''), ($1, $2, '2026-10-23T10:00:05Z', 'down', 'HTTP 503'),
		($1, $2, '2026-10-23T10:07:40Z', 'up', ''), ($1, $2, '2026-10-31T22:30:00Z', 'down', 'timeout'),
		($1, $2, '2026-10-31T23:30:00Z', 'up', '')`, tenant, check)
}

// GET /api/v1/sla answers the numbers of internal/sla (which equal a second-by-second computation,
// internal/sla's tests) for an SLO, a check and a host, as JSON and CSV; SLOs are validated, editors
// manage them; tenant B reads nothing of A's.
func TestSLA(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		admin, editor, viewer := w.a.tokens["admin"], w.a.tokens["editor"], w.a.tokens["viewer"]
		w.call(t, "PATCH", "/api/v1/tenant", admin, map[string]any{"time_zone": "Mars/Olympus"}).must(t, http.StatusBadRequest)
		w.call(t, "PATCH", "/api/v1/tenant", admin, map[string]any{"time_zone": "Europe/Berlin"}).must(t, http.StatusOK)
		host := w.call(t, "POST", "/api/v1/hosts", editor, map[string]any{"name": "web-1", "labels": map[string]string{"env": "prod"}}).
			must(t, http.StatusCreated)
		check := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "home", "kind": "http",
			"target": "http://127.0.0.1:1/", "host_id": host.json["id"]}).must(t, http.StatusCreated)
		w.slaHistory(t, w.a.id, check.id(t))
		bCheck := w.call(t, "POST", "/api/v1/checks", w.b.tokens["owner"], map[string]any{"name": "b", "kind": "http",
			"target": "http://127.0.0.1:1/"}).must(t, http.StatusCreated)

		// Validation names each field.
		bad := w.call(t, "POST", "/api/v1/slos", editor, map[string]any{"name": "", "target": 120, "period": "rolling",
			"business_hours": map[string]any{"days": []int{0}, "start": "18:00", "end": "08:00"}, "check_id": bCheck.json["id"]}).
			must(t, http.StatusBadRequest)
		for _, f := range []string{"name", "target", "rolling_days", "business_hours.days[0]", "business_hours.end", "check_id"} {
			if !strings.Contains(bad.raw, `"field":"`+f+`"`) {
				t.Errorf("the 400 does not name %s: %s", f, bad.raw)
			}
		}
		w.call(t, "POST", "/api/v1/slos", viewer, map[string]any{"name": "x", "target": 99, "check_id": check.json["id"]}).
			must(t, http.StatusForbidden)
		slo := w.call(t, "POST", "/api/v1/slos", editor, map[string]any{"name": "home 99.5", "target": 99.5,
			"check_id": check.json["id"], "business_hours": map[string]any{"days": []int{1, 2, 3, 4, 5}, "start": "08:00", "end": "18:00"}}).
			must(t, http.StatusCreated)
		if slo.str("period") != "month" || slo.json["exclude_maintenance"] != true {
			t.Fatalf("defaults: %s", slo.raw)
		}
		slo = w.call(t, "PATCH", "/api/v1/slos/"+slo.id(t), editor, map[string]any{"business_hours": nil}).must(t, http.StatusOK)
		if slo.json["business_hours"] != nil {
			t.Fatalf("business hours not removed: %s", slo.raw)
		}

		// The SLO's numbers for October in Berlin equal internal/sla's for the same options.
		got := w.call(t, "GET", "/api/v1/sla?slo="+slo.id(t)+"&period=2026-10", viewer, nil).must(t, http.StatusOK)
		var numbers sla.Numbers
		if err := json.Unmarshal([]byte(got.raw), &numbers); err != nil {
			t.Fatal(err)
		}
		want := w.numbers(t, w.a.id, check.id(t), "Europe/Berlin", "2026-10", 99.5)
		if numbers.Seconds != want.Seconds || *numbers.Availability != *want.Availability || len(numbers.Days) != 31 ||
			numbers.Budget == nil || numbers.Budget.Spent != want.Budget.Spent || got.str("period") != "2026-10" {
			t.Fatalf("API %+v\nwant %+v", numbers.Summary, want.Summary)
		}
		// 7 min 35 s down from 10:00:05 to 10:07:40; the other incident runs past the month's end (Berlin).
		if got.json["incident_count"] != float64(2) {
			t.Fatalf("incident_count: %v", got.json["incident_count"])
		}
		if len(numbers.Incidents) != 2 || *numbers.Incidents[0].Duration != 455 || numbers.Incidents[0].Reason != "HTTP 503" ||
			numbers.Incidents[1].Counted != 30*60 || *numbers.Incidents[1].Duration != 3600 {
			t.Fatalf("incidents %+v", numbers.Incidents)
		}
		// Unknown: from 03:01:05 (the result of 02:59:05 vouches for two intervals) to the next result at
		// 05:00:05, and the 5 s between the check's creation and its first result.
		if numbers.Seconds.Unknown != 7140+5 {
			t.Fatalf("unknown %v s", numbers.Seconds.Unknown)
		}
		// The same by check and by host, from and to.
		for _, q := range []string{"check=" + check.id(t), "host=" + host.id(t)} {
			by := w.call(t, "GET", "/api/v1/sla?"+q+"&from=2026-09-30T22:00:00Z&to=2026-10-31T23:00:00Z", viewer, nil).
				must(t, http.StatusOK)
			if by.json["seconds"].(map[string]any)["down"] != numbers.Seconds.Down || by.json["error_budget"] != nil {
				t.Fatalf("%s: %s", q, by.raw)
			}
		}
		// CSV, by format and by Accept.
		for _, accept := range []string{"", "text/csv"} {
			path := "/api/v1/sla?slo=" + slo.id(t) + "&period=2026-10"
			if accept == "" {
				path += "&format=csv"
			}
			rows := w.csv(t, path, viewer, accept)
			if rows[0][0] != "section" || rows[1][0] != "total" || rows[1][5] != "2255" || rows[len(rows)-1][22] != "timeout" {
				t.Fatalf("CSV %v", rows[:2])
			}
		}
		// Bad requests name the parameter.
		for q, field := range map[string]string{"": "slo", "slo=1&check=2": "slo", "check=x": "check",
			"slo=" + slo.id(t) + "&period=2026-13": "period", "check=" + check.id(t) + "&from=2026-10-01T00:00:00Z": "from",
			"check=" + check.id(t) + "&from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z": "from"} {
			r := w.call(t, "GET", "/api/v1/sla?"+q, viewer, nil).must(t, http.StatusBadRequest)
			if !strings.Contains(r.raw, `"field":"`+field+`"`) {
				t.Errorf("%q: %s", q, r.raw)
			}
		}
		// Isolation: B reads nothing of A's SLO, check or host.
		bTok := w.b.tokens["owner"]
		for _, q := range []string{"slo=" + slo.id(t), "check=" + check.id(t), "host=" + host.id(t)} {
			w.call(t, "GET", "/api/v1/sla?"+q+"&period=2026-10", bTok, nil).must(t, http.StatusNotFound)
		}
		w.call(t, "GET", "/api/v1/slos/"+slo.id(t), bTok, nil).must(t, http.StatusNotFound)
		if list := w.call(t, "GET", "/api/v1/slos", bTok, nil).must(t, http.StatusOK); len(list.json["items"].([]any)) != 0 {
			t.Fatalf("B lists %s", list.raw)
		}
		w.call(t, "DELETE", "/api/v1/slos/"+slo.id(t), editor, nil).must(t, http.StatusNoContent)
	})
}

func (w *world) numbers(t *testing.T, tenant uuid.UUID, check, zone, period string, target float64) sla.Numbers {
	t.Helper()
	loc, _ := time.LoadLocation(zone)
	p, err := sla.ParsePeriod(period, loc)
	if err != nil {
		t.Fatal(err)
	}
	var n sla.Numbers
	if err := db.NewTenantRunner(w.d.Pool).WithTenant(context.Background(), tenant, func(q *dbsqlc.Queries) error {
		var id int64
		_ = json.Unmarshal([]byte(check), &id)
		n, err = sla.Compute(context.Background(), q, sla.Scope{CheckIDs: []int64{id}}, sla.Options{From: p.Start, To: p.End,
			Location: loc, ExcludeMaintenance: true, Target: target}, time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func (w *world) csv(t *testing.T, path, token, accept string) [][]string {
	t.Helper()
	req, _ := http.NewRequest("GET", w.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("%s: %d %s: %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// Reports are admins': validated field by field (SLOs, checks and hosts of the tenant only), scheduled by
// default at 07:00 on the first day after the period in the tenant's zone; send-now makes one run per
// period (409 while it waits), refuses a period not yet over; B sees none of A's reports or runs.
func TestReports(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		admin, editor := w.a.tokens["admin"], w.a.tokens["editor"]
		w.call(t, "PATCH", "/api/v1/tenant", admin, map[string]any{"time_zone": "America/Sao_Paulo"}).must(t, http.StatusOK)
		check := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "home", "kind": "http",
			"target": "http://127.0.0.1:1/"}).must(t, http.StatusCreated)
		slo := w.call(t, "POST", "/api/v1/slos", editor, map[string]any{"name": "home", "target": 99.9, "check_id": check.json["id"]}).
			must(t, http.StatusCreated)
		bSLO := w.call(t, "POST", "/api/v1/slos", w.b.tokens["owner"], map[string]any{"name": "b", "target": 99,
			"host_labels": map[string]string{"env": "prod"}}).must(t, http.StatusCreated)

		body := map[string]any{"name": "monthly", "period": "monthly", "slo_ids": []any{slo.json["id"]},
			"recipients": []string{"ops@example.test"}, "formats": []string{"pdf", "csv"}, "language": "pt-BR"}
		w.call(t, "POST", "/api/v1/reports", editor, body).must(t, http.StatusForbidden)
		bad := w.call(t, "POST", "/api/v1/reports", admin, map[string]any{"name": "x", "period": "yearly", "schedule": "every day",
			"slo_ids": []any{bSLO.json["id"]}, "recipients": []string{"Ops <ops@example.test>"}, "formats": []string{"docx"},
			"language": "fr"}).must(t, http.StatusBadRequest)
		for _, f := range []string{"period", "schedule", "recipients[0]", "formats[0]", "language", "slo_ids[0]"} {
			if !strings.Contains(bad.raw, `"field":"`+f+`"`) {
				t.Errorf("the 400 does not name %s: %s", f, bad.raw)
			}
		}
		rep := w.call(t, "POST", "/api/v1/reports", admin, body).must(t, http.StatusCreated)
		sp, _ := time.LoadLocation("America/Sao_Paulo")
		now := time.Now().In(sp)
		next := time.Date(now.Year(), now.Month()+1, 1, 7, 0, 0, 0, sp)
		if rep.str("schedule") != "0 7 1 * *" || rep.str("next_period") != now.Format("2006-01") ||
			rep.str("next_run_at") != next.UTC().Format(time.RFC3339) {
			t.Fatalf("defaults: %s (want next run %s)", rep.raw, next.UTC().Format(time.RFC3339))
		}
		id := rep.id(t)
		run := w.call(t, "POST", "/api/v1/reports/"+id+"/send-now?period=2026-10", admin, nil).must(t, http.StatusAccepted)
		if run.str("state") != "pending" || run.str("period") != "2026-10" || run.json["generation"] != float64(1) ||
			run.str("period_start") != "2026-10-01T03:00:00Z" {
			t.Fatalf("run %s", run.raw)
		}
		w.call(t, "POST", "/api/v1/reports/"+id+"/send-now?period=2026-10", admin, nil).must(t, http.StatusConflict)
		for _, p := range []string{now.Format("2006-01"), "2026-W44", "2026-13"} {
			r := w.call(t, "POST", "/api/v1/reports/"+id+"/send-now?period="+p, admin, nil).must(t, http.StatusBadRequest)
			if !strings.Contains(r.raw, `"field":"period"`) {
				t.Errorf("%s: %s", p, r.raw)
			}
		}
		runs := w.call(t, "GET", "/api/v1/reports/"+id+"/runs", admin, nil).must(t, http.StatusOK)
		if items := runs.json["items"].([]any); len(items) != 1 {
			t.Fatalf("runs %s", runs.raw)
		}
		changed := w.call(t, "PATCH", "/api/v1/reports/"+id, admin, map[string]any{"period": "weekly"}).must(t, http.StatusOK)
		if changed.str("schedule") != "0 7 * * 1" || !strings.Contains(changed.str("next_period"), "-W") {
			t.Fatalf("weekly: %s", changed.raw)
		}
		// Isolation.
		bTok := w.b.tokens["owner"]
		w.call(t, "GET", "/api/v1/reports/"+id, bTok, nil).must(t, http.StatusNotFound)
		w.call(t, "GET", "/api/v1/reports/"+id+"/runs", bTok, nil).must(t, http.StatusNotFound)
		w.call(t, "POST", "/api/v1/reports/"+id+"/send-now", bTok, nil).must(t, http.StatusNotFound)
		if list := w.call(t, "GET", "/api/v1/reports", bTok, nil).must(t, http.StatusOK); len(list.json["items"].([]any)) != 0 {
			t.Fatalf("B lists %s", list.raw)
		}
	})
}
