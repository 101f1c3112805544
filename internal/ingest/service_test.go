package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/maintenance"
	"github.com/infrawatch/infrawatch/internal/replicas"
	"github.com/infrawatch/infrawatch/internal/service"
)

// startService runs an ingest service on d until the test ends, as one process would.
func startService(t *testing.T, d *dbtest.DB) *Service {
	t.Helper()
	s := NewService(Config{}, d.Pool, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// The service is a worker of the process: it writes between Start and Stop, and Stop returns once what
// was acknowledged is stored.
func TestServiceWritesBetweenStartAndStop(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "acme")
	var s service.Service = NewService(DefaultConfig(), d.Pool, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Millisecond).UnixMilli()
	res, err := s.(*Service).Write(ctx, ten.ID, "json", []Series{{Name: "lifecycle", Host: "web-1",
		Samples: []Sample{{TimeMs: now - 2000, Value: 1}, {TimeMs: now - 1000, Value: 2}, {TimeMs: now, Value: 3}}}}, nil, nil)
	if err != nil || res.Accepted != 3 {
		t.Fatalf("push: %+v, %v; want 3 accepted", res, err)
	}
	s.Stop()
	s.Stop() // a second Stop does nothing
	var n int
	if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM ts.samples s JOIN app.series r ON r.id = s.series_id
	                                 WHERE r.name = 'lifecycle' AND s.tenant_id = $1`, ten.ID).Scan(&n); err != nil || n != 3 {
		t.Fatalf("stored samples: %d (%v), want 3", n, err)
	}
}

// Samples older than the raw retention are refused: the retention maintenance keeps, which is the one
// copy of that default.
func TestDefaultConfigRefusesWhatMaintenanceDrops(t *testing.T) {
	cfg := DefaultConfig()
	if want := maintenance.DefaultConfig().Retention.Samples; cfg.RawRetention != want {
		t.Errorf("DefaultConfig().RawRetention = %s, want maintenance's raw retention %s", cfg.RawRetention, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
	bad := cfg
	bad.Writer.Writers = -1
	if err := bad.Validate(); err == nil {
		t.Error("Validate() accepts a negative number of writers")
	}
}

// Two ingest services (two processes) take concurrent pushes of new series for one tenant: together
// they never store more series than the tenant's limit, and every sample they accept is of a series
// that was stored.
func TestSeriesLimitHoldsAcrossProcesses(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "acme") // one series already
	ctx := context.Background()
	const limit = 30
	if _, err := d.Pool.Exec(ctx, `UPDATE app.tenants SET max_series = $2 WHERE id = $1`, ten.ID, limit); err != nil {
		t.Fatal(err)
	}
	services := []*Service{startService(t, d), startService(t, d)}
	now := time.Now().UnixMilli()
	const pushes, perPush = 16, 5
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, refused := 0, 0
	for p := range pushes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			series := make([]Series, perPush)
			for i := range series {
				series[i] = Series{Name: fmt.Sprintf("m%d_%d", p, i), Host: "web-1", Samples: []Sample{{TimeMs: now, Value: 1}}}
			}
			<-start
			res, err := services[p%2].Write(ctx, ten.ID, "json", series, nil, nil)
			if err != nil {
				t.Errorf("push %d: %v", p, err)
				return
			}
			mu.Lock()
			accepted += res.Accepted
			refused += len(res.Rejected)
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	var stored, samples int
	if err := d.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM app.series WHERE tenant_id = $1),
	                                       (SELECT count(*) FROM ts.samples WHERE tenant_id = $1)`, ten.ID).Scan(&stored, &samples); err != nil {
		t.Fatal(err)
	}
	if stored != limit || accepted != limit-1 || refused != pushes*perPush-(limit-1) || samples != limit {
		t.Fatalf("%d series stored, %d samples accepted, %d refused, %d samples stored; the limit is %d with 1 seeded",
			stored, accepted, refused, samples, limit)
	}
}

// A tenant at its series limit keeps pushing its known series through a process that has not seen them
// yet (it just started): they are found, not refused as new.
func TestKnownSeriesFlowAtTheLimitAfterARestart(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "acme")
	ctx := context.Background()
	if _, err := d.Pool.Exec(ctx, `UPDATE app.tenants SET max_series = 3 WHERE id = $1`, ten.ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	push := func(s *Service, at int64) Result {
		t.Helper()
		series := []Series{{Name: "a", Samples: []Sample{{at, 1}}}, {Name: "b", Samples: []Sample{{at, 2}}}}
		res, err := s.Write(ctx, ten.ID, "json", series, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := push(startService(t, d), now-1000); res.Accepted != 2 {
		t.Fatalf("first process: %+v", res)
	}
	if res := push(startService(t, d), now); res.Accepted != 2 || len(res.Rejected) != 0 {
		t.Fatalf("a process that restarted, with the tenant at its limit: %+v", res)
	}
}

// BenchmarkValidatePush measures what a push of 1,000 series of 10 samples costs before the database:
// validation, series keys and the duplicate checks.
func BenchmarkValidatePush(b *testing.B) {
	s := NewService(Config{}, nil, nil, nil)
	lim := dbsqlc.AppTenant{MaxSeries: 1 << 30, MaxLabelsPerSeries: 30, MaxLabelNameLength: 1024, MaxLabelValueLength: 2048}
	now := time.Now()
	series := make([]Series, 1000)
	for i := range series {
		samples := make([]Sample, 10)
		for j := range samples {
			samples[j] = Sample{TimeMs: now.UnixMilli() - int64(10-j)*10_000, Value: float64(j)}
		}
		series[i] = Series{Name: "bench.metric", Labels: map[string]string{"series": fmt.Sprintf("s%d", i), "cpu": "total"},
			Host: "web-1", Samples: samples}
	}
	b.ReportAllocs()
	for b.Loop() {
		var res Result
		if keep, total := s.validate(series, lim, now, &res); len(keep) != 1000 || total != 10_000 {
			b.Fatalf("kept %d series, %d samples", len(keep), total)
		}
	}
}

// A tenant's limits changed by another process (in the database) apply here within limitsTTL, and at
// once after ForgetLimits (the operator's change served by this process); a changed burst starts a full
// bucket.
func TestChangedLimitsApplyWithinTheTTL(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "acme")
	ctx := context.Background()
	if _, err := d.Pool.Exec(ctx, `UPDATE app.tenants SET ingest_rate = 1000, ingest_burst = 10 WHERE id = $1`, ten.ID); err != nil {
		t.Fatal(err)
	}
	s := startService(t, d)
	start := time.Now()
	var offset time.Duration
	s.now = func() time.Time { return start.Add(offset) } // guarded by the test's sequence: one push at a time
	at := start.UnixMilli()
	push := func(n int) error {
		t.Helper()
		samples := make([]Sample, n)
		for i := range samples {
			at++
			samples[i] = Sample{TimeMs: at, Value: 1}
		}
		_, err := s.Write(ctx, ten.ID, "json", []Series{{Name: "m", Samples: samples}}, nil, nil)
		return err
	}
	if err := push(8); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(ctx, `UPDATE app.tenants SET ingest_burst = 5 WHERE id = $1`, ten.ID); err != nil {
		t.Fatal(err)
	}
	offset = limitsTTL - time.Second // still cached: the old burst of 10 (the bucket refilled meanwhile)
	if err := push(8); err != nil {
		t.Fatalf("8 samples %s after the first push, within the TTL: %v, want the cached burst of 10", offset, err)
	}
	offset = limitsTTL + time.Second
	var tooLarge *PushTooLargeError
	if err := push(8); !errors.As(err, &tooLarge) || tooLarge.Burst != 5 {
		t.Fatalf("8 samples past the TTL: %v, want too large for the new burst of 5", err)
	}
	if _, err := d.Pool.Exec(ctx, `UPDATE app.tenants SET ingest_burst = 20 WHERE id = $1`, ten.ID); err != nil {
		t.Fatal(err)
	}
	s.ForgetLimits(ten.ID)
	if err := push(20); err != nil { // the clock stands still: only a fresh, full bucket of 20 lets these in
		t.Fatalf("20 samples right after ForgetLimits: %v, want the new burst of 20", err)
	}
}

// A tenant's rate holds across replicas: each live ingest replica takes its share of it, so that pushes
// spread over replicas get no more in all. A replica that stops gracefully hands its share back.
func TestTenantRateIsSharedAmongLiveIngestReplicas(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "acme")
	ctx := context.Background()
	if _, err := d.Pool.Exec(ctx, `UPDATE app.tenants SET ingest_rate = 100, ingest_burst = 1000 WHERE id = $1`, ten.ID); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	heartbeats := []*replicas.Heartbeat{
		replicas.NewHeartbeat(d.System(), []string{"api", "ingest"}, log),
		replicas.NewHeartbeat(d.System(), []string{"ingest"}, log),
		replicas.NewHeartbeat(d.System(), []string{"poller"}, log), // not an ingest replica: no share
	}
	for _, h := range heartbeats {
		if err := h.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Stop)
	}
	s := startService(t, d)
	start := time.Now()
	var offset time.Duration
	s.now = func() time.Time { return start.Add(offset) } // one push at a time
	at := start.UnixMilli()
	push := func(n int) error {
		t.Helper()
		samples := make([]Sample, n)
		for i := range samples {
			at++
			samples[i] = Sample{TimeMs: at, Value: 1}
		}
		_, err := s.Write(ctx, ten.ID, "json", []Series{{Name: "m", Samples: samples}}, nil, nil)
		return err
	}
	retryAfter := func(n int) time.Duration {
		t.Helper()
		var limited *RateLimitedError
		if err := push(n); !errors.As(err, &limited) {
			t.Fatalf("a push of %d samples with an empty bucket: %v, want rate limited", n, err)
		}
		return limited.RetryAfter
	}
	near := func(got, want time.Duration) bool {
		return got > want-10*time.Millisecond && got < want+10*time.Millisecond
	}

	// Two ingest replicas: this one refills 50 samples a second, the tenant's 100 halved; the whole
	// burst still fits one push.
	if err := push(1000); err != nil {
		t.Fatal(err)
	}
	if got := retryAfter(100); !near(got, 2*time.Second) {
		t.Fatalf("100 samples on an empty bucket with two ingest replicas: retry after %s, want 2s (50 samples/s)", got)
	}

	// The other ingest replica stops: once the count is read again, this one refills 100 a second.
	heartbeats[1].Stop()
	offset = replicasTTL + time.Second // 11 s at 50/s refilled 550 samples; from now on 100/s
	if err := push(550); err != nil {
		t.Fatalf("550 samples after 11 s at 50/s: %v", err)
	}
	if got := retryAfter(100); !near(got, time.Second) {
		t.Fatalf("100 samples on an empty bucket with one ingest replica left: retry after %s, want 1s (100 samples/s)", got)
	}
}
