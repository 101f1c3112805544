package main_test

import (
	"context"
	"net/mail"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/notify/smtptest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
)

// startScheduler runs `infrawatch serve --roles scheduler` sending reports through srv, with a short
// lease and poll, and waits until it is ready.
func startScheduler(t *testing.T, bin, url string, srv *smtptest.Server) *exec.Cmd {
	t.Helper()
	port, _ := pgcluster.FreePort()
	// The relay's certificate is the test's own: the process trusts it as a system root.
	return startServe(t, bin, url, "127.0.0.1:"+strconv.Itoa(port), "scheduler", []string{"SSL_CERT_FILE=" + srv.CertFile},
		"--smtp-url", "smtp://relay:relay-pass@"+srv.Addr, "--smtp-from", "reports@iw.example.com",
		"--report-lease", "3s", "--report-poll", "100ms")
}

// Exactly one email per period, across processes and a crash: two scheduler processes run; the one that
// claims last month's report is killed (SIGKILL) after the SMTP server took the message and before it could
// record it; the other sends it once more, with the same Message-ID, once the lease passes, and records it.
// The server gets one Message-ID, twice; the report has one run, sent.
func TestKilledSchedulerResendsTheReportOnceWithTheSameMessageID(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test runs and kills infrawatch serve on PostgreSQL")
	}
	srv := smtptest.Start(t, "relay", "relay-pass")
	bin := buildBinary(t)
	d := dbtest.New(t, db.FlavorPostgres)
	ctx := context.Background()
	do := func(sql string, args ...any) {
		t.Helper()
		if _, err := d.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// Last month's report (UTC), due now.
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	var tenant uuid.UUID
	var check, report int64
	if err := d.Pool.QueryRow(ctx, `INSERT INTO app.tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id`).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	if err := d.Pool.QueryRow(ctx, `INSERT INTO app.checks (tenant_id, name, kind, target, created_at)
		VALUES ($1, 'shop', 'http', 'http://127.0.0.1:1/', $2) RETURNING id`, tenant, start).Scan(&check); err != nil {
		t.Fatal(err)
	}
	do(`SELECT infrawatch.ensure_partitions('ts.check_results', $1, $2)`, start, end)
	do(`INSERT INTO ts.check_results (time, tenant_id, check_id, status)
		SELECT t, $1, $2, 'up' FROM generate_series($3::timestamptz + interval '5 seconds', $4, '1 minute') t`, tenant, check, start, end)
	do(`INSERT INTO app.check_events (tenant_id, check_id, time, status) VALUES ($1, $2, $3::timestamptz + interval '5 seconds', 'up')`, tenant, check, start)
	// The first message to holdonce is never answered.
	if err := d.Pool.QueryRow(ctx, `INSERT INTO app.reports (tenant_id, name, check_ids, period, schedule, recipients, formats,
		next_run_at, next_period) VALUES ($1, 'monthly', ARRAY[$2::bigint], 'monthly', '0 7 1 * *', '{holdonce@example.com}', '{pdf}',
		$3, $4) RETURNING id`, tenant, check, now.Add(-time.Minute), start.Format("2006-01")).Scan(&report); err != nil {
		t.Fatal(err)
	}

	procs := map[int]*exec.Cmd{}
	for range 2 {
		cmd := startScheduler(t, bin, d.URL, srv)
		procs[cmd.Process.Pid] = cmd
	}
	first := srv.Next(t) // taken by the server, never answered
	var owner string
	if err := d.Pool.QueryRow(ctx, `SELECT lease_owner FROM app.report_runs WHERE report_id = $1 AND state = 'sending'`, report).
		Scan(&owner); err != nil {
		t.Fatalf("the run is not leased while its email is being sent: %v", err)
	}
	_, pidText, _ := strings.Cut(owner, ":")
	pid, _ := strconv.Atoi(pidText)
	sender, ok := procs[pid]
	if !ok {
		t.Fatalf("the lease's owner %q is neither scheduler", owner)
	}
	if err := sender.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = sender.Wait()

	second := srv.Next(t) // the other scheduler, after the lease
	deadline := time.Now().Add(time.Minute)
	var state string
	var attempts int
	for {
		if err := d.Pool.QueryRow(ctx, `SELECT state, attempts FROM app.report_runs WHERE report_id = $1`, report).
			Scan(&state, &attempts); err != nil {
			t.Fatal(err)
		}
		if state == "sent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run is %s after a minute, want sent", state)
		}
		time.Sleep(20 * time.Millisecond)
	}
	id := func(m smtptest.Mail) string {
		msg, err := mail.ReadMessage(strings.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		return msg.Header.Get("Message-ID")
	}
	if id(first) == "" || id(first) != id(second) || attempts != 2 {
		t.Fatalf("Message-IDs %q and %q, attempts %d: want the same message sent twice", id(first), id(second), attempts)
	}
	var runs int
	var next string
	if err := d.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM app.report_runs), next_period FROM app.reports WHERE id = $1`, report).
		Scan(&runs, &next); err != nil || runs != 1 || next != end.Format("2006-01") {
		t.Fatalf("%d runs, next period %s (%v): want one run and this month next", runs, next, err)
	}
}
