package maintenance

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// BenchmarkTakeOverCatchUp measures what infrawatch's bounded steps cost against TimescaleDB's own way
// when every sample rollup tier must catch up a day of samples (1,000 series, one sample a minute: 1.44
// million rows), as after TimescaleDB's jobs failed unnoticed:
//
//   - timescaledb: one CALL refresh_continuous_aggregate per tier over its policy's whole window, which
//     is what a policy run does (and cannot be stopped half-way without losing all of it);
//   - infrawatch: one check of the scheduler with the jobs taken over: windows of refreshStepBuckets
//     buckets, each committed on its own, finest tier first.
//
// Each iteration fills two databases with the same rows and catches each up, one after the other, so
// that a busy machine slows both alike. It reports the median of each, per million samples, and their
// ratio. Run it with
//
//	go test -run '^$' -bench TakeOverCatchUp -benchtime 3x ./internal/maintenance
func BenchmarkTakeOverCatchUp(b *testing.B) {
	if !slices.Contains(dbtest.Flavors(b), db.FlavorTimescale) {
		b.Skip("TimescaleDB is not available on the test server: taking over its jobs is a matter of the timescale flavor only")
	}
	const series, samples = 1000, 1000 * 24 * 60
	ctx := context.Background()
	fill := func() *dbtest.DB {
		d := dbtest.New(b, db.FlavorTimescale)
		now := time.Now().Truncate(time.Minute)
		_, err := d.Pool.Exec(ctx, `INSERT INTO ts.samples (time, tenant_id, series_id, value)
		    SELECT t, $1, s, s + extract(epoch FROM t) / 60 % 97
		      FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 minute', interval '1 minute') t,
		           generate_series(1, $4::integer) s`, uuid.New(), now.Add(-day), now, series)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Pool.Exec(ctx, `VACUUM ANALYZE ts.samples`); err != nil {
			b.Fatal(err)
		}
		return d
	}
	var baseline, steps []time.Duration
	for range b.N {
		b.StopTimer()
		d := fill()
		b.StartTimer()
		start := time.Now()
		for _, tier := range []struct{ rollup, start, end string }{
			{"ts.samples_5m", "30 days", "5 minutes"}, {"ts.samples_1h", "31 days", "1 hour"}, {"ts.samples_1d", "32 days", "3 hours"},
		} {
			if _, err := d.Pool.Exec(ctx, `CALL refresh_continuous_aggregate($1::regclass, now() - $2::interval, now() - $3::interval)`,
				tier.rollup, tier.start, tier.end); err != nil {
				b.Fatal(err)
			}
		}
		baseline = append(baseline, time.Since(start))
		want := materializedCount(b, d)

		b.StopTimer()
		d = fill()
		svc := New(Config{TimescaleJobs: ModeInfrawatch}, d.System(), slog.New(slog.NewTextHandler(io.Discard, nil)))
		svc.clock = &fakeClock{now: time.Now()} // stands still: no deadline cuts the pass short
		b.StartTimer()
		start = time.Now()
		if ran, err := svc.RefreshOnce(ctx); !ran || err != nil {
			b.Fatalf("check: %v %v", ran, err)
		}
		steps = append(steps, time.Since(start))
		if got := materializedCount(b, d); got != want {
			b.Fatalf("infrawatch materialized %v rows per tier, TimescaleDB %v", got, want)
		}
	}
	median := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Milliseconds())
	}
	b.ReportMetric(median(baseline)/samples*1e6, "ms/Msamples-timescaledb")
	b.ReportMetric(median(steps)/samples*1e6, "ms/Msamples-infrawatch")
	b.ReportMetric(median(steps)/median(baseline), "infrawatch/timescaledb")
}

// materializedCount counts the materialized rows of the sample tiers.
func materializedCount(b *testing.B, d *dbtest.DB) [3]int64 {
	var n [3]int64
	for i, r := range []string{"ts.samples_5m", "ts.samples_1h", "ts.samples_1d"} {
		n[i] = dbtest.MaterializedRows(b, d, r)
	}
	return n
}
