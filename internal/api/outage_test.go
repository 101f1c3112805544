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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// PostgreSQL stops during a load: pushes answer 503 with Retry-After (never 2xx for what was not stored,
// never another error) and the server keeps running; once PostgreSQL is back, pushes succeed again
// without restarting anything, and every acknowledged point is stored. The test runs its own cluster,
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
	created, err := tenant.Create(ctx, db.NewSystem(pool), tenant.NewTenant{Name: "outage", AdminEmail: "o@outage.example", AdminPassword: "outage-password"})
	if err != nil {
		t.Fatal(err)
	}
	key, prefix, hash, _ := auth.NewAPIKey()
	if _, err := pool.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes) VALUES ($1, 'k', $2, $3, '{ingest}')`,
		created.TenantID, prefix, hash); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(ctx, auth.TokenConfig{}, db.NewSystem(pool))
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := auth.NewService(db.NewSystem(pool), tokens)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ingester := ingest.NewService(ingest.Config{Writer: ingest.WriterConfig{CommitTimeout: 3 * time.Second}}, pool, log, nil)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go ingester.Run(runCtx)
	srv := httptest.NewServer(api.NewHandler(api.Deps{Log: log, Tenants: db.NewTenantRunner(pool), Auth: svc, Ingest: ingester,
		Health: db.NewHealth(pool), Registry: api.NewRegistry(), Config: api.Config{Rates: testLimits}}))
	defer srv.Close()

	// Four agents push without pause, each point unique, through the whole outage.
	var next atomic.Int64
	base := time.Now().Add(-time.Hour).UnixMilli()
	type answer struct {
		status     int
		retryAfter bool
		point      int64
	}
	var mu sync.Mutex
	var answers []answer
	answered := make(chan struct{}, 1) // signalled after each answer, without blocking
	count := func(status int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range answers {
			if a.status == status {
				n++
			}
		}
		return n
	}
	stopLoad := make(chan struct{})
	var load sync.WaitGroup
	for range 4 {
		load.Go(func() {
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				p := next.Add(1)
				body := fmt.Sprintf(`{"metrics": [{"name": "outage.m", "points": [[%d, %d]]}]}`, base+p, p)
				req, _ := http.NewRequest("POST", srv.URL+"/api/v1/ingest", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				mu.Lock()
				answers = append(answers, answer{resp.StatusCode, resp.Header.Get("Retry-After") != "", p})
				mu.Unlock()
				select {
				case answered <- struct{}{}:
				default:
				}
			}
		})
	}
	waitFor := func(what string, status, n int) {
		t.Helper()
		guard := time.After(time.Minute) // a hang guard
		for count(status) < n {
			select {
			case <-answered:
			case <-guard:
				close(stopLoad)
				load.Wait()
				t.Fatalf("%s: only %d answers %d", what, count(status), status)
			}
		}
	}
	waitFor("before the outage", http.StatusOK, 50)
	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor("during the outage", http.StatusServiceUnavailable, 20)
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with PostgreSQL down: %s, want 503", resp.Status)
	}

	cfg.Port = cluster.Port
	if cluster, err = pgcluster.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	okBefore := count(http.StatusOK)
	waitFor("after PostgreSQL came back", http.StatusOK, okBefore+50) // the pool reconnects by itself
	close(stopLoad)
	load.Wait()

	acked := map[int64]bool{}
	for _, a := range answers {
		switch {
		case a.status == http.StatusOK:
			acked[a.point] = true
		case a.status == http.StatusServiceUnavailable && a.retryAfter:
		default:
			t.Errorf("point %d answered %d (Retry-After %v); only 200, or 503 with Retry-After, are right", a.point, a.status, a.retryAfter)
		}
	}
	rows, err := pool.Query(ctx, "SELECT value::bigint FROM ts.samples")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	storedSet := map[int64]bool{}
	for _, v := range stored {
		storedSet[v] = true
	}
	for p := range acked {
		if !storedSet[p] {
			t.Errorf("point %d was acknowledged but is not stored", p)
		}
	}
	t.Logf("%d answers: %d acknowledged, %d refused with 503 during the outage; %d points stored",
		len(answers), len(acked), count(http.StatusServiceUnavailable), len(stored))
}
