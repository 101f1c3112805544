package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// PostgreSQL stops during a load: pushes answer 503 with Retry-After and the server keeps running; once
// PostgreSQL is back, pushes succeed again without restarting anything. The test runs its own cluster,
// since it stops it.
func TestIngestSurvivesADatabaseOutage(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "infrawatch-outage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	cfg := pgcluster.Config{DataDir: filepath.Join(dir, "data"), Settings: map[string]string{"fsync": "off"}}
	cluster, err := pgcluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	url := cluster.URL("postgres")
	if _, err := db.NewMigrator(url).Up(ctx, db.FlavorPostgres); err != nil {
		t.Fatal(err)
	}
	pool, err := db.Open(ctx, db.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	created, err := tenant.Create(ctx, pool, tenant.NewTenant{Name: "outage", AdminEmail: "o@outage.example", AdminPassword: "outage-password"})
	if err != nil {
		t.Fatal(err)
	}
	key, prefix, hash, _ := auth.NewAPIKey()
	if _, err := pool.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes) VALUES ($1, 'k', $2, $3, '{ingest}')`,
		created.TenantID, prefix, hash); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(ctx, auth.TokenConfig{}, pool)
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := auth.NewService(pool, tokens)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ingester := ingest.NewService(ingest.Config{Writer: ingest.WriterConfig{CommitTimeout: 3 * time.Second}}, pool, log, nil)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go ingester.Run(runCtx)
	srv := httptest.NewServer(api.NewHandler(api.Deps{Log: log, Tenants: db.NewTenantRunner(pool), Auth: svc, Ingest: ingester,
		Health: pool, Registry: api.NewRegistry(), Limits: testLimits}))
	defer srv.Close()
	w := &world{srv: srv}

	push := func(i int) response {
		body := fmt.Sprintf(`{"metrics": [{"name": "outage.m", "points": [[%d, %d]]}]}`, time.Now().UnixMilli()-int64(1000-i), i)
		return w.raw(t, "/api/v1/ingest", key, []byte(body))
	}
	push(0).must(t, http.StatusOK)

	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		got := push(i)
		if got.status != http.StatusServiceUnavailable || got.header.Get("Retry-After") == "" {
			t.Fatalf("push %d with PostgreSQL down: %d %s, want 503 with Retry-After", i, got.status, got.raw)
		}
	}
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with PostgreSQL down: %s, want 503", resp.Status)
	}

	cfg.Port = cluster.Port
	cluster, err = pgcluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got response
	for i := 10; i < 40; i++ { // the pool reconnects on the next attempts
		if got = push(i); got.status == http.StatusOK {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got.status != http.StatusOK {
		t.Fatalf("after PostgreSQL came back: %d %s", got.status, got.raw)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM ts.samples").Scan(&n); err != nil || n != 2 {
		t.Fatalf("stored %d samples (%v), want 2: the one before the outage and the one after", n, err)
	}
}
