package api_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

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
