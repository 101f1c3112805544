package api_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/agent"
	"github.com/infrawatch/infrawatch/internal/db"
)

// infrawatch-agent against the real server: host metrics and log lines arrive for the agent's host, in
// the key's tenant. The test takes the metrics round itself (the agent's own interval never comes) and
// waits for the pushes the server answers; the log lines go at the latest when the agent stops, which
// spools what it tailed and delivers it before Run returns.
func TestAgentPushesMetricsAndLogsEndToEnd(t *testing.T) {
	w := newWorldOn(t, db.FlavorPostgres, testLimits)
	key := w.ingestKey(t, w.a)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "app.log")
	if err := os.WriteFile(logFile, []byte("first line\nERROR second line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Server: w.srv.URL, APIKey: key, Interval: time.Hour, Hostname: "agent-e2e",
		Labels: map[string]string{"env": "test"}, Collectors: []string{"cpu", "mem", "load", "uptime"},
		Logs:     []agent.LogSource{{Path: logFile, Source: "app", FromBeginning: true}},
		SpoolDir: filepath.Join(dir, "spool"), SpoolMaxBytes: 8 << 20},
		agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ShutdownTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Spooled before Run, whose delivery sends it at once (and whose collectors are not read meanwhile).
	if err := a.CollectAndSpool(time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		}
	}
	defer stop()

	q := context.Background()
	stored := func() (metrics, logs int) {
		t.Helper()
		if err := w.d.Pool.QueryRow(q, `
			SELECT (SELECT count(*) FROM ts.samples s JOIN app.series r ON r.id = s.series_id
			         WHERE r.tenant_id = $1 AND r.labels->>'host' = 'agent-e2e' AND r.name LIKE 'mem.%'),
			       (SELECT count(*) FROM ts.logs l JOIN app.hosts h ON h.id = l.host_id
			         WHERE l.tenant_id = $1 AND h.name = 'agent-e2e' AND l.source = 'app')`, w.a.id).Scan(&metrics, &logs); err != nil {
			t.Fatal(err)
		}
		return metrics, logs
	}
	for metrics, _ := stored(); metrics == 0; metrics, _ = stored() {
		w.waitForPush(t, "the agent's metrics")
	}
	stop()
	if metrics, logs := stored(); metrics == 0 || logs != 2 {
		t.Fatalf("once the agent stopped: %d memory samples and %d log lines of host agent-e2e in tenant A, want some and 2", metrics, logs)
	}
	if batches, _, _ := a.Spool().Stats(); batches != 0 {
		t.Errorf("%d batches left in the spool", batches)
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

// The server goes down and the agent is restarted during the outage. Once the server is back, every
// round the agents collected is stored — before, during and after the outage, on both sides of the
// restart — and nothing twice. The test takes each round itself, at a time of its choosing a second
// apart, so that what must be stored is known exactly; while the server is down, a failed delivery
// gives up until the next round wakes the deliverer instead of waiting out a backoff.
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
		srv := &http.Server{Handler: w.srv.Config.Handler} // the world's handler, which signals each push
		go srv.Serve(l)
		return srv
	}
	srv := serve(ln)
	spool := filepath.Join(t.TempDir(), "spool")
	retried := make(chan struct{}, 1)
	errDown := errors.New("the server is down: retry when the next round is spooled")
	startAgent := func() (*agent.Agent, func()) {
		a, err := agent.New(agent.Config{Server: "http://" + addr, APIKey: key, Interval: time.Hour, Hostname: "outage-host",
			Collectors: []string{"mem"}, SpoolDir: spool, SpoolMaxBytes: 8 << 20},
			agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ShutdownTimeout: time.Minute,
				Sleep: func(context.Context, time.Duration) error {
					select {
					case retried <- struct{}{}:
					default:
					}
					return errDown
				}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		return a, func() { cancel(); <-done }
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
		t.Helper()
		for len(stored()) < n {
			w.waitForPush(t, "rounds the agent spooled")
		}
	}
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	var rounds []time.Time
	collect := func(a *agent.Agent, n int) {
		t.Helper()
		for range n {
			at := base.Add(time.Duration(len(rounds)) * time.Second)
			rounds = append(rounds, at)
			if err := a.CollectAndSpool(at); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitRetried := func() {
		t.Helper()
		select {
		case <-retried:
		case <-time.After(time.Minute): // a hang guard
			t.Fatal("the agent never tried to deliver while the server was down")
		}
	}

	a, stopAgent := startAgent()
	collect(a, 3)
	waitStored(3)
	_ = srv.Close() // the server goes away
	collect(a, 5)
	waitRetried()
	stopAgent() // restart the agent during the outage; its spool stays
	// The last round before the outage may be there too, if the server closed before its answer left.
	if batches, _, _ := a.Spool().Stats(); batches < 5 {
		t.Errorf("the stopped agent left %d batches in its spool, want at least the 5 rounds of the outage", batches)
	}
	a, stopAgent = startAgent()
	collect(a, 5)
	waitRetried()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv = serve(ln)
	defer srv.Close()
	collect(a, 1) // wakes the deliverer, which sends the spool oldest first
	waitStored(len(rounds))
	stopAgent()

	got := stored()
	if !slices.EqualFunc(got, rounds, time.Time.Equal) {
		t.Errorf("stored rounds %v, want every round collected %v", got, rounds)
	}
	if batches, _, _ := a.Spool().Stats(); batches != 0 {
		t.Errorf("%d batches left in the spool", batches)
	}
	var total, distinct int
	if err := w.d.Pool.QueryRow(q, `SELECT count(*), count(DISTINCT (series_id, time)) FROM ts.samples`).Scan(&total, &distinct); err != nil ||
		total != distinct {
		t.Errorf("%d samples, %d distinct (%v): something was stored twice", total, distinct, err)
	}
}
