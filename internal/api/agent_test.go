package api_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/agent"
	"github.com/infrawatch/infrawatch/internal/db"
)

// infrawatch-agent against the real server: host metrics and log lines arrive for the agent's host, in
// the key's tenant.
func TestAgentPushesMetricsAndLogsEndToEnd(t *testing.T) {
	w := newWorldOn(t, db.FlavorPostgres, testLimits)
	key := w.ingestKey(t, w.a)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "app.log")
	if err := os.WriteFile(logFile, []byte("first line\nERROR second line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Server: w.srv.URL, APIKey: key, Interval: time.Second, Hostname: "agent-e2e",
		Labels: map[string]string{"env": "test"}, Collectors: []string{"cpu", "mem", "load", "uptime"},
		Logs:     []agent.LogSource{{Path: logFile, Source: "app", FromBeginning: true}},
		SpoolDir: filepath.Join(dir, "spool"), SpoolMaxBytes: 8 << 20},
		agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	q := context.Background()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var metrics, logs int
		if err := w.d.Pool.QueryRow(q, `
			SELECT (SELECT count(*) FROM ts.samples s JOIN app.series r ON r.id = s.series_id
			         WHERE r.tenant_id = $1 AND r.labels->>'host' = 'agent-e2e' AND r.name LIKE 'mem.%'),
			       (SELECT count(*) FROM ts.logs l JOIN app.hosts h ON h.id = l.host_id
			         WHERE l.tenant_id = $1 AND h.name = 'agent-e2e' AND l.source = 'app')`, w.a.id).Scan(&metrics, &logs); err != nil {
			t.Fatal(err)
		}
		if metrics > 0 && logs == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %d memory samples and %d log lines of host agent-e2e in tenant A", metrics, logs)
		}
	}
	var severity, env string
	if err := w.d.Pool.QueryRow(q, `SELECT l.severity, h.labels->>'env' FROM ts.logs l JOIN app.hosts h ON h.id = l.host_id
	                                WHERE l.message LIKE '%second line'`).Scan(&severity, &env); err != nil {
		t.Fatal(err)
	}
	if severity != "error" || env != "test" {
		t.Errorf("second line stored with severity %q on a host labelled env=%q", severity, env)
	}
	var foreign int
	if err := w.d.Pool.QueryRow(q, `SELECT count(*) FROM app.series WHERE tenant_id <> $1`, w.a.id).Scan(&foreign); err != nil || foreign != 0 {
		t.Errorf("%d series outside the key's tenant (%v)", foreign, err)
	}
}

// The server is down for 30 seconds and the agent is restarted during the outage. Once the server is
// back, every round the agents collected is stored — no gap in the series — and nothing twice.
func TestAgentLosesNothingThroughAnOutageAndARestart(t *testing.T) {
	w := newWorldOn(t, db.FlavorPostgres, testLimits)
	key := w.ingestKey(t, w.a)
	// A server of our own on a fixed address, so that it can stop and come back on the same port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(l net.Listener) *http.Server {
		srv := &http.Server{Handler: w.engine}
		go srv.Serve(l)
		return srv
	}
	srv := serve(ln)
	spool := filepath.Join(t.TempDir(), "spool")
	startAgent := func() (stop func()) {
		a, err := agent.New(agent.Config{Server: "http://" + addr, APIKey: key, Interval: time.Second, Hostname: "outage-host",
			Collectors: []string{"mem"}, SpoolDir: spool, SpoolMaxBytes: 8 << 20},
			agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ShutdownTimeout: 500 * time.Millisecond,
				Backoff: agent.Backoff{Min: 100 * time.Millisecond, Max: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		return func() { cancel(); <-done }
	}
	q := context.Background()
	stored := func() []time.Time {
		rows, err := w.d.Pool.Query(q, `SELECT s.time FROM ts.samples s JOIN app.series r ON r.id = s.series_id
		                                 WHERE r.tenant_id = $1 AND r.labels->>'host' = 'outage-host' AND r.name = 'mem.used_bytes'
		                                 ORDER BY 1`, w.a.id)
		if err != nil {
			t.Fatal(err)
		}
		times, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil {
			t.Fatal(err)
		}
		return times
	}
	waitStored := func(n int) {
		for deadline := time.Now().Add(30 * time.Second); len(stored()) < n; time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("only %d rounds stored, want %d", len(stored()), n)
			}
		}
	}

	stopAgent := startAgent()
	waitStored(3)
	_ = srv.Close() // the server goes away
	time.Sleep(10 * time.Second)
	restartFrom := time.Now()
	stopAgent() // restart the agent during the outage; its spool stays
	stopAgent = startAgent()
	restartTo := time.Now()
	time.Sleep(20 * time.Second)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv = serve(ln)
	defer srv.Close()
	waitStored(38) // 3 before, ~30 during, a few after
	stopAgent()

	times := stored()
	for i := 1; i < len(times); i++ {
		// While no agent runs (the restart), nothing is collected; anywhere else a gap is a lost round.
		spansRestart := !times[i-1].After(restartTo) && !times[i].Before(restartFrom)
		if gap := times[i].Sub(times[i-1]); gap > 3500*time.Millisecond && !spansRestart {
			t.Errorf("a gap of %s between rounds at %s: rounds collected during the outage were lost", gap, times[i-1])
		}
	}
	var total, distinct int
	if err := w.d.Pool.QueryRow(q, `SELECT count(*), count(DISTINCT (series_id, time)) FROM ts.samples`).Scan(&total, &distinct); err != nil ||
		total != distinct {
		t.Errorf("%d samples, %d distinct (%v): something was stored twice", total, distinct, err)
	}
	t.Logf("%d rounds stored over %s, through a 30 s outage and an agent restart", len(times), times[len(times)-1].Sub(times[0]))
}
