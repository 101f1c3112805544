package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/notify"
	"github.com/infrawatch/infrawatch/internal/notify/smtptest"
	"github.com/infrawatch/infrawatch/internal/reports"
	"github.com/infrawatch/infrawatch/internal/sla"
)

// TestSLABenchmark is `make bench-sla`: N checks (1,000) with a result every 60 s for D days (30, the
// month of November 2026), short outages and poller gaps, on the timescale flavor. It times, in one run,
// GET /api/v1/sla for an SLO over every check (poller gaps settled by the scheduler), the same statement
// with every gap computed from the raw results, and up/down computed from the raw results in plain SQL
// (the baseline), checks that they agree, and times rendering and sending the monthly report of the
// 1,000 checks through a real SMTP server. Skipped unless INFRAWATCH_BENCH_SLA=1.
func TestSLABenchmark(t *testing.T) {
	if os.Getenv("INFRAWATCH_BENCH_SLA") == "" {
		t.Skip("a benchmark: make bench-sla (INFRAWATCH_BENCH_SLA=1) runs it")
	}
	checks, days := envInt("INFRAWATCH_BENCH_SLA_CHECKS", 1000), envInt("INFRAWATCH_BENCH_SLA_DAYS", 30)
	ctx := context.Background()
	w := newWorldOn(t, db.FlavorTimescale, testLimits)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := w.d.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, days)
	started := time.Now()
	exec(`INSERT INTO app.hosts (tenant_id, name, labels) SELECT $1, 'host-' || h, '{"env": "prod"}' FROM generate_series(1, $2) h`,
		w.a.id, (checks+99)/100)
	exec(`INSERT INTO app.checks (tenant_id, host_id, name, kind, target, created_at)
		SELECT $1, h.id, 'check-' || c, 'http', 'http://127.0.0.1:1/', $3
		  FROM generate_series(1, $2) c JOIN app.hosts h ON h.tenant_id = $1 AND h.name = 'host-' || ((c - 1) / 100 + 1)`,
		w.a.id, checks, from)
	// A result every minute at a second of its own; outages of 3 minutes now and then, 10-minute poller
	// gaps now and then, both from a hash of the check and the minute.
	for d := range days {
		day := from.AddDate(0, 0, d)
		exec(`INSERT INTO ts.check_results (time, tenant_id, check_id, status, latency)
			SELECT t, c.tenant_id, c.id,
			       CASE WHEN ((extract(epoch FROM t)::bigint / 60) + c.id * 7919) % 5000 < 3 THEN 'down' ELSE 'up' END, '12ms'
			  FROM app.checks c, generate_series($2::timestamptz + make_interval(secs => (c.id % 60)::int), $2::timestamptz + interval '1 day' - interval '1 second',
			                                     interval '1 minute') t
			 WHERE c.tenant_id = $1 AND ((extract(epoch FROM t)::bigint / 60) + c.id * 104729) % 20000 >= 10`, w.a.id, day)
	}
	exec(`INSERT INTO app.check_events (tenant_id, check_id, time, status, reason)
		SELECT tenant_id, check_id, time, status, CASE WHEN status = 'down' THEN 'HTTP 503' ELSE '' END
		  FROM (SELECT r.*, lag(status) OVER (PARTITION BY check_id ORDER BY time) AS prev FROM ts.check_results r WHERE tenant_id = $1) x
		 WHERE prev IS DISTINCT FROM status`, w.a.id)
	var rows, events int64
	_ = w.d.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ts.check_results), (SELECT count(*) FROM app.check_events)`).Scan(&rows, &events)
	exec(`ANALYZE`)
	load := time.Since(started)
	t0 := time.Now()
	for {
		_, ran, err := sla.SettleGapsOnce(ctx, w.d.System(), to, 6*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !ran {
			break
		}
	}
	settle := time.Since(t0)

	// The SLO over every check, through the API (best of 3).
	owner := w.a.tokens["owner"]
	slo := w.call(t, "POST", "/api/v1/slos", owner, map[string]any{"name": "all", "target": 99.9,
		"host_labels": map[string]string{"env": "prod"}}).must(t, http.StatusCreated)
	path := fmt.Sprintf("/api/v1/sla?slo=%s&from=%s&to=%s", slo.id(t), from.Format(time.RFC3339), to.Format(time.RFC3339))
	var api sla.Numbers
	apiTime := best(3, func() {
		r := w.call(t, "GET", path, owner, nil).must(t, http.StatusOK)
		if err := json.Unmarshal([]byte(r.raw), &api); err != nil {
			t.Fatal(err)
		}
	})
	if len(api.Checks) != checks {
		t.Fatalf("the API measured %d checks, want %d", len(api.Checks), checks)
	}
	ids := make([]int64, 0, checks)
	for _, c := range api.Checks {
		ids = append(ids, c.ID)
	}
	tenants := db.NewTenantRunner(w.d.Pool).WithStatementTimeout(30 * time.Minute) // the baseline takes long
	// The same statement, every gap from the raw results.
	var raw sla.Numbers
	epoch := time.Unix(0, 0)
	rawTime := best(3, func() {
		if err := tenants.WithTenant(ctx, w.a.id, func(q *dbsqlc.Queries) error {
			checkRows, err := sla.ScopeChecks(ctx, q, sla.Scope{CheckIDs: ids})
			if err != nil {
				return err
			}
			raw, err = sla.ComputeChecks(ctx, q, checkRows, sla.Options{From: from, To: to, Location: time.UTC, ExcludeMaintenance: true,
				Target: 99.9, Settled: &epoch}, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	// Baseline: up and down from the raw results in plain SQL (each result vouches for its status until
	// the next, at most two intervals).
	var up, down float64
	baseTime := best(3, func() {
		if err := w.d.Pool.QueryRow(ctx, `
			WITH r AS (SELECT r.status, r.time, lead(r.time) OVER (PARTITION BY r.check_id ORDER BY r.time) AS nxt
			             FROM ts.check_results r WHERE r.check_id = ANY ($1) AND r.time >= $2 AND r.time < $3)
			SELECT coalesce(sum(extract(epoch FROM least(coalesce(nxt, $3), time + interval '120 seconds', $3) - time))
			                FILTER (WHERE status = 'up'), 0)::float8,
			       coalesce(sum(extract(epoch FROM least(coalesce(nxt, $3), time + interval '120 seconds', $3) - time))
			                FILTER (WHERE status = 'down'), 0)::float8
			  FROM r`, ids, from, to).Scan(&up, &down); err != nil {
			t.Fatal(err)
		}
	})
	if api.Seconds != raw.Seconds || api.Seconds.Up != up || api.Seconds.Down != down {
		t.Fatalf("the numbers differ: API %+v, raw gaps %+v, baseline up %v down %v", api.Seconds, raw.Seconds, up, down)
	}

	t.Logf("SLA benchmark: %d checks × %d days at 60 s: %d results, %d status changes, %d incidents; availability %.4f %%",
		checks, days, rows, events, api.Summary.Incidents, *api.Availability)
	t.Logf("load %s, settling poller gaps (scheduler) %s", load.Round(time.Second), settle.Round(time.Millisecond))
	t.Logf("| what (best of 3) | time | ÷ API |")
	t.Logf("|---|---|---|")
	t.Logf("| GET /api/v1/sla, SLO over %d checks, %d days (gaps settled) | %s | 1 |", checks, days, apiTime.Round(time.Millisecond))
	t.Logf("| same statement, every gap from raw results | %s | %.1f× |", rawTime.Round(time.Millisecond), rawTime.Seconds()/apiTime.Seconds())
	t.Logf("| baseline: up/down from raw results in SQL (no gaps, days, incidents) | %s | %.1f× |", baseTime.Round(time.Millisecond),
		baseTime.Seconds()/apiTime.Seconds())

	// The monthly report of the 1,000 checks: built and rendered (HTML, CSV, PDF), then sent.
	srv := smtptest.Start(t, "relay", "relay-pass")
	sender, err := notify.NewSender(notify.Config{SMTP: notify.SMTPConfig{URL: "smtp://relay:relay-pass@" + srv.Addr,
		From: "reports@iw.example.com", TLS: srv.TLS}}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := w.call(t, "POST", "/api/v1/reports", owner, map[string]any{"name": "monthly", "period": "monthly",
		"slo_ids": []any{slo.json["id"]}, "recipients": []string{"cto@example.com"}, "formats": []string{"csv", "pdf"}}).
		must(t, http.StatusCreated)
	reportID, _ := strconv.ParseInt(rep.id(t), 10, 64)
	var prepared reports.Prepared
	renderTime := best(3, func() {
		if prepared, err = reports.Prepare(ctx, w.d.System(), tenants, reportID, "2026-11", time.Now(),
			func(i reports.Image) string { return "cid:" + i.CID }); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("| monthly report of %d checks: compute + render HTML, CSV, PDF | %s | |", checks, renderTime.Round(time.Millisecond))
	e := notify.Email{Timeout: 2 * time.Minute, To: prepared.Stored.Recipients, Subject: prepared.Rendered.Subject, MessageKey: "bench", Date: time.Now(),
		Text: prepared.Rendered.Text, HTML: prepared.Rendered.HTML,
		Attach: []notify.File{{Name: "r.csv", ContentType: "text/csv", Data: prepared.Rendered.CSV},
			{Name: "r.pdf", ContentType: "application/pdf", Data: prepared.Rendered.PDF}}}
	for _, i := range prepared.Rendered.Images {
		e.Inline = append(e.Inline, notify.File{Name: i.Name, ContentType: "image/png", ContentID: i.CID, Data: i.PNG})
	}
	t0 = time.Now()
	if _, err := sender.SendEmail(ctx, e); err != nil {
		t.Fatal(err)
	}
	got := srv.Next(t)
	sendTime := time.Since(t0)

	t.Logf("| send it through SMTP (aiosmtpd, STARTTLS, %d KiB: HTML %d KiB, CSV %d KiB, PDF %d KiB) | %s | |", len(got.Data)/1024,
		len(prepared.Rendered.HTML)/1024, len(prepared.Rendered.CSV)/1024, len(prepared.Rendered.PDF)/1024, sendTime.Round(time.Millisecond))
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// best is the shortest of n runs of fn.
func best(n int, fn func()) time.Duration {
	var times []time.Duration
	for range n {
		t0 := time.Now()
		fn()
		times = append(times, time.Since(t0))
	}
	return slices.Min(times)
}
