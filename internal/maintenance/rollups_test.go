package maintenance_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/maintenance"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// sample and result are raw rows as the tests write them; the expected rollups are computed from them
// in Go, independently of the SQL under test.
type sample struct {
	time   time.Time
	tenant uuid.UUID
	series int64
	value  float64
}

type result struct {
	time      time.Time
	tenant    uuid.UUID
	check     int64
	up        bool
	latencyUS *int64 // nil: the probe got no answer
}

type bucketKey struct {
	bucket time.Time
	id     int64 // series or check
}

func (k bucketKey) String() string {
	return fmt.Sprintf("%d@%s", k.id, k.bucket.UTC().Format(time.RFC3339))
}

type sampleAgg struct {
	tenant              uuid.UUID
	min, max, sum, last float64
	count               int64
}

type resultAgg struct {
	tenant                     uuid.UUID
	up, total, latencyCount    int64
	downtime                   float64
	latencySumMS, latencyMaxMS *float64
}

func (a sampleAgg) String() string {
	return fmt.Sprintf("{tenant %s min %v max %v sum %v count %d last %v}", a.tenant, a.min, a.max, a.sum, a.count, a.last)
}

func (a resultAgg) String() string {
	f := func(p *float64) string {
		if p == nil {
			return "NULL"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("{tenant %s up %d total %d downtime %vs latency sum %s count %d max %s ms}", a.tenant, a.up, a.total,
		a.downtime, f(a.latencySumMS), a.latencyCount, f(a.latencyMaxMS))
}

// expectSamples is min, max, sum, count and the newest value per bucket of width, from the raw rows.
func expectSamples(rows []sample, width time.Duration) map[bucketKey]sampleAgg {
	out := map[bucketKey]sampleAgg{}
	newest := map[bucketKey]time.Time{}
	for _, r := range rows {
		k := bucketKey{r.time.Truncate(width).UTC(), r.series}
		a, seen := out[k]
		if !seen {
			a = sampleAgg{tenant: r.tenant, min: r.value, max: r.value}
		}
		a.min, a.max, a.sum, a.count = min(a.min, r.value), max(a.max, r.value), a.sum+r.value, a.count+1
		if !seen || r.time.After(newest[k]) {
			a.last, newest[k] = r.value, r.time
		}
		out[k] = a
	}
	return out
}

// expectResultsHourly counts results per hour; downtime is the hour's length times the share of down
// results, latencies are in milliseconds over the results that have one.
func expectResultsHourly(rows []result) map[bucketKey]resultAgg {
	out := map[bucketKey]resultAgg{}
	for _, r := range rows {
		k := bucketKey{r.time.Truncate(time.Hour).UTC(), r.check}
		a, seen := out[k]
		if !seen {
			a.tenant = r.tenant
		}
		a.total++
		if r.up {
			a.up++
		}
		if r.latencyUS != nil {
			ms := float64(*r.latencyUS) / 1000
			a.latencyCount++
			a.latencySumMS = addPtr(a.latencySumMS, ms)
			if a.latencyMaxMS == nil || ms > *a.latencyMaxMS {
				a.latencyMaxMS = &ms
			}
		}
		out[k] = a
	}
	for k, a := range out {
		a.downtime = 3600 * float64(a.total-a.up) / float64(a.total)
		out[k] = a
	}
	return out
}

// expectResultsDaily adds up the hours of each day; its downtime is the sum of the hours' estimates.
func expectResultsDaily(hourly map[bucketKey]resultAgg) map[bucketKey]resultAgg {
	out := map[bucketKey]resultAgg{}
	for hk, h := range hourly {
		k := bucketKey{hk.bucket.Truncate(24 * time.Hour).UTC(), hk.id}
		a := out[k]
		a.tenant = h.tenant
		a.up, a.total, a.latencyCount, a.downtime = a.up+h.up, a.total+h.total, a.latencyCount+h.latencyCount, a.downtime+h.downtime
		if h.latencySumMS != nil {
			a.latencySumMS = addPtr(a.latencySumMS, *h.latencySumMS)
		}
		if h.latencyMaxMS != nil && (a.latencyMaxMS == nil || *h.latencyMaxMS > *a.latencyMaxMS) {
			a.latencyMaxMS = h.latencyMaxMS
		}
		out[k] = a
	}
	return out
}

func addPtr(p *float64, v float64) *float64 {
	if p != nil {
		v += *p
	}
	return &v
}

// near is float equality up to rounding: sums are added in another order in SQL than in Go.
func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b))
}

func nearPtr(a, b *float64) bool {
	return (a == nil) == (b == nil) && (a == nil || near(*a, *b))
}

func readSamples(t *testing.T, d *dbtest.DB, rollup string, series []int64) map[bucketKey]sampleAgg {
	t.Helper()
	rows, err := d.Pool.Query(context.Background(), `SELECT bucket, tenant_id, series_id, min, max, sum, count, last
	                                                   FROM `+rollup+` WHERE series_id = ANY ($1)`, series)
	if err != nil {
		t.Fatalf("read %s: %v", rollup, err)
	}
	out := map[bucketKey]sampleAgg{}
	var k bucketKey
	var a sampleAgg
	_, err = pgx.ForEachRow(rows, []any{&k.bucket, &a.tenant, &k.id, &a.min, &a.max, &a.sum, &a.count, &a.last}, func() error {
		k.bucket = k.bucket.UTC()
		if _, dup := out[k]; dup {
			return fmt.Errorf("bucket %s appears twice", k)
		}
		out[k] = a
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", rollup, err)
	}
	return out
}

func readResults(t *testing.T, d *dbtest.DB, rollup string, checks []int64) map[bucketKey]resultAgg {
	t.Helper()
	rows, err := d.Pool.Query(context.Background(), `SELECT bucket, tenant_id, check_id, up_count, total, downtime_seconds,
	                                                         latency_sum_ms, latency_count, latency_max_ms
	                                                   FROM `+rollup+` WHERE check_id = ANY ($1)`, checks)
	if err != nil {
		t.Fatalf("read %s: %v", rollup, err)
	}
	out := map[bucketKey]resultAgg{}
	var k bucketKey
	var a resultAgg
	_, err = pgx.ForEachRow(rows, []any{&k.bucket, &a.tenant, &k.id, &a.up, &a.total, &a.downtime, &a.latencySumMS,
		&a.latencyCount, &a.latencyMaxMS}, func() error {
		k.bucket = k.bucket.UTC()
		if _, dup := out[k]; dup {
			return fmt.Errorf("bucket %s appears twice", k)
		}
		out[k] = a
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", rollup, err)
	}
	return out
}

// diff lists the buckets where got and want differ, sorted, at most ten.
func diff[V any](got, want map[bucketKey]V, equal func(g, w V) bool) []string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("%s missing, want %v", k, w))
		} else if !equal(g, w) {
			out = append(out, fmt.Sprintf("%s = %v, want %v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s = %v, want no such bucket", k, g))
		}
	}
	slices.Sort(out)
	return out[:min(len(out), 10)]
}

func sameSamples(g, w sampleAgg) bool {
	return g.tenant == w.tenant && g.count == w.count && g.min == w.min && g.max == w.max && g.last == w.last && near(g.sum, w.sum)
}

func sameResults(g, w resultAgg) bool {
	return g.tenant == w.tenant && g.up == w.up && g.total == w.total && g.latencyCount == w.latencyCount &&
		near(g.downtime, w.downtime) && nearPtr(g.latencySumMS, w.latencySumMS) && nearPtr(g.latencyMaxMS, w.latencyMaxMS)
}

// checkRollups compares every tier with what the raw rows say.
func checkRollups(t *testing.T, d *dbtest.DB, when string, samples []sample, results []result) {
	t.Helper()
	var series, checks []int64
	for _, s := range samples {
		series = append(series, s.series)
	}
	for _, r := range results {
		checks = append(checks, r.check)
	}
	for _, tier := range []struct {
		rollup string
		width  time.Duration
	}{{"ts.samples_5m", 5 * time.Minute}, {"ts.samples_1h", time.Hour}, {"ts.samples_1d", 24 * time.Hour}} {
		if bad := diff(readSamples(t, d, tier.rollup, series), expectSamples(samples, tier.width), sameSamples); len(bad) > 0 {
			t.Errorf("%s: %s differs from the raw samples:\n%s", when, tier.rollup, strings.Join(bad, "\n"))
		}
	}
	hourly := expectResultsHourly(results)
	if bad := diff(readResults(t, d, "ts.check_results_1h", checks), hourly, sameResults); len(bad) > 0 {
		t.Errorf("%s: ts.check_results_1h differs from the raw results:\n%s", when, strings.Join(bad, "\n"))
	}
	if bad := diff(readResults(t, d, "ts.check_results_1d", checks), expectResultsDaily(hourly), sameResults); len(bad) > 0 {
		t.Errorf("%s: ts.check_results_1d differs from the raw results:\n%s", when, strings.Join(bad, "\n"))
	}
}

// generate makes irregular samples and results over the last 50 hours (so buckets cross hour and day
// boundaries) up to 2 minutes ahead (ingest accepts a little clock skew): two series of tenant a, one of
// tenant b, one check each.
func generate(now time.Time, a, b uuid.UUID) ([]sample, []result) {
	rng := rand.New(rand.NewPCG(7, 11))
	var samples []sample
	for i, owner := range []uuid.UUID{a, a, b} {
		series := int64(9_000_001 + i)
		for at := now.Add(-50 * time.Hour); at.Before(now.Add(2 * time.Minute)); at = at.Add(time.Duration(3+rng.IntN(400)) * time.Second) {
			at = at.Add(time.Duration(rng.IntN(1000)) * time.Microsecond)
			samples = append(samples, sample{at, owner, series, math.Round(rng.NormFloat64()*1e6) / 1e3})
		}
	}
	var results []result
	for i, owner := range []uuid.UUID{a, b} {
		check := int64(8_000_001 + i)
		for at := now.Add(-50 * time.Hour); at.Before(now); at = at.Add(time.Duration(10+rng.IntN(300)) * time.Second) {
			r := result{time: at, tenant: owner, check: check, up: rng.Float64() > 0.25}
			if r.up || rng.IntN(2) == 0 {
				us := int64(1 + rng.IntN(2_000_000))
				r.latencyUS = &us
			}
			results = append(results, r)
		}
	}
	return samples, results
}

// copySamples writes rows the way ingest does: binary COPY into ts.samples, or, when dedupe is set, COPY
// into a temporary table and INSERT … ON CONFLICT DO NOTHING (ingest's path for retried batches).
func copySamples(t testing.TB, d *dbtest.DB, rows []sample, dedupe bool) {
	t.Helper()
	ctx := context.Background()
	data := make([][]any, len(rows))
	for i, r := range rows {
		data[i] = []any{r.time, r.tenant, r.series, r.value}
	}
	err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
		table := pgx.Identifier{"ts", "samples"}
		if dedupe {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE samples_incoming (LIKE ts.samples) ON COMMIT DROP`); err != nil {
				return err
			}
			table = pgx.Identifier{"samples_incoming"}
		}
		if _, err := tx.CopyFrom(ctx, table, []string{"time", "tenant_id", "series_id", "value"}, pgx.CopyFromRows(data)); err != nil {
			return err
		}
		if dedupe {
			_, err := tx.Exec(ctx, `INSERT INTO ts.samples SELECT * FROM samples_incoming ON CONFLICT (series_id, time) DO NOTHING`)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write samples: %v", err)
	}
}

func copyResults(t testing.TB, d *dbtest.DB, rows []result) {
	t.Helper()
	data := make([][]any, len(rows))
	for i, r := range rows {
		status, latency := "down", pgtype.Interval{}
		if r.up {
			status = "up"
		}
		if r.latencyUS != nil {
			latency = pgtype.Interval{Microseconds: *r.latencyUS, Valid: true}
		}
		data[i] = []any{r.time, r.tenant, r.check, status, latency}
	}
	_, err := d.Pool.CopyFrom(context.Background(), pgx.Identifier{"ts", "check_results"},
		[]string{"time", "tenant_id", "check_id", "status", "latency"}, pgx.CopyFromRows(data))
	if err != nil {
		t.Fatalf("write check results: %v", err)
	}
}

// materialize rolls up what is a minute old: in the postgres flavor through the maintenance service,
// as in production; in the timescale flavor as TimescaleDB's policies would (they are paused in tests).
func materialize(t *testing.T, d *dbtest.DB, svc *maintenance.Service) {
	t.Helper()
	if d.Flavor == db.FlavorTimescale {
		dbtest.MaterializeRollups(t, d, time.Now().Add(-time.Minute))
		return
	}
	if ran, err := svc.RefreshOnce(context.Background()); err != nil || !ran {
		t.Fatalf("refresh: ran=%v err=%v", ran, err)
	}
}

func TestRollupsMatchTheRawRows(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		svc := maintenance.New(maintenance.Config{}, d.System(), discard)
		a, b := uuid.New(), uuid.New()
		now := time.Now()
		samples, results := generate(now, a, b)
		copySamples(t, d, samples, false)
		copyResults(t, d, results)

		checkRollups(t, d, "before any refresh (all real-time)", samples, results)

		materialize(t, d, svc)
		for _, r := range dbtest.Rollups {
			if n := dbtest.MaterializedRows(t, d, r); n == 0 {
				t.Fatalf("%s has no materialized rows after the refresh", r)
			}
		}
		checkRollups(t, d, "after a refresh", samples, results)

		// Late rows in materialized buckets, through ingest's deduplicating path: a retried row (a
		// duplicate, ignored), a new row of a known series, a row of a new series; and a late result.
		old := samples[len(samples)/4]
		late := []sample{
			{old.time, old.tenant, old.series, old.value + 1000},
			{old.time.Add(time.Microsecond), old.tenant, old.series, -1e6},
			{now.Add(-30 * time.Hour), a, 9_000_004, 42},
		}
		copySamples(t, d, late, true)
		lateResult := result{time: results[10].time.Add(time.Second), tenant: results[10].tenant, check: results[10].check}
		copyResults(t, d, []result{lateResult})
		samples, results = append(samples, late[1:]...), append(results, lateResult)

		lateKey := bucketKey{old.time.Truncate(5 * time.Minute).UTC(), old.series}
		if got, want := readSamples(t, d, "ts.samples_5m", []int64{old.series})[lateKey], expectSamples(samples, 5*time.Minute)[lateKey]; got.count != want.count-1 {
			t.Fatalf("before the next refresh, %s has %d samples; want the %d materialized before the late row", lateKey, got.count, want.count-1)
		}
		materialize(t, d, svc)
		checkRollups(t, d, "after late rows and a refresh", samples, results)

		// Rows newer than the materialized buckets show at once.
		fresh := []sample{{time.Now(), b, 9_000_003, 7}}
		copySamples(t, d, fresh, false)
		freshResult := result{time: time.Now(), tenant: a, check: 8_000_001}
		copyResults(t, d, []result{freshResult})
		checkRollups(t, d, "real-time, before a refresh", append(samples, fresh...), append(results, freshResult))

		var invalidations int
		if flavor == db.FlavorPostgres {
			if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM infrawatch.rollup_invalidations").Scan(&invalidations); err != nil {
				t.Fatal(err)
			}
			if invalidations == 0 {
				t.Error("no invalidation queued for the fresh rows: the trigger did not fire")
			}
		}
	})
}

// asTenant runs fn as infrawatch_api with the tenant set (none when tenant is uuid.Nil), the way
// db.TenantRunner does.
func asTenant(t *testing.T, d *dbtest.DB, tenant uuid.UUID, fn func(tx pgx.Tx) error) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
		if tenant != uuid.Nil {
			if _, err := tx.Exec(ctx, "SELECT set_config('infrawatch.tenant_id', $1, true)", tenant.String()); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE infrawatch_api"); err != nil {
			return err
		}
		return fn(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRollupViewsShowOnlyTheCurrentTenantAndForgetDeletedTenants(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		svc := maintenance.New(maintenance.Config{}, d.System(), discard)
		a := dbtest.SeedTenant(t, d, "tenant-a")
		b := dbtest.SeedTenant(t, d, "tenant-b")

		// Older rows of both tenants, so that every rollup has materialized rows of each. Tenant a's
		// check has one hour of known results: up at 3 ms, down with no answer, up at 1 ms.
		hour := time.Now().Add(-26 * time.Hour).Truncate(time.Hour)
		ms := func(v int64) *int64 { v *= 1000; return &v }
		for _, ten := range []dbtest.Tenant{a, b} {
			copySamples(t, d, []sample{{hour.Add(time.Minute), ten.ID, ten.SeriesID, 10}, {hour.Add(2 * time.Minute), ten.ID, ten.SeriesID, 20}}, false)
			copyResults(t, d, []result{
				{hour.Add(time.Minute), ten.ID, ten.CheckID, true, ms(3)},
				{hour.Add(2 * time.Minute), ten.ID, ten.CheckID, false, nil},
				{hour.Add(3 * time.Minute), ten.ID, ten.CheckID, true, ms(1)},
			})
		}
		materialize(t, d, svc)

		apiViews := []string{"api.samples_5m", "api.samples_1h", "api.samples_1d", "api.check_results_1h", "api.check_results_1d"}
		for i, view := range apiViews {
			rollup := dbtest.Rollups[i]
			if n := dbtest.MaterializedRows(t, d, rollup); n < 2 {
				t.Fatalf("%s has %d materialized rows, want some of each tenant", rollup, n)
			}
			var ownAsOwner int
			if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM "+rollup+" WHERE tenant_id = $1", a.ID).Scan(&ownAsOwner); err != nil {
				t.Fatal(err)
			}
			var own, total int
			asTenant(t, d, a.ID, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, "SELECT count(*) FILTER (WHERE tenant_id = $1), count(*) FROM "+view, a.ID).Scan(&own, &total)
			})
			if own != total || own != ownAsOwner || own < 2 {
				t.Errorf("%s as tenant a: %d rows of which %d are a's; a has %d (materialized and real-time)", view, total, own, ownAsOwner)
			}
			asTenant(t, d, uuid.Nil, func(tx pgx.Tx) error { return tx.QueryRow(ctx, "SELECT count(*) FROM "+view).Scan(&total) })
			if total != 0 {
				t.Errorf("%s with no tenant set: %d rows, want 0", view, total)
			}
		}

		// The api views' derived columns, on the known hour.
		var avg, availability, downtime, latencyAvg, latencyMax float64
		asTenant(t, d, a.ID, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, "SELECT avg FROM api.samples_1h WHERE series_id = $1 AND bucket = $2", a.SeriesID, hour).Scan(&avg); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT availability, downtime_seconds, latency_avg_ms, latency_max_ms
			                           FROM api.check_results_1h WHERE check_id = $1 AND bucket = $2`, a.CheckID, hour).
				Scan(&availability, &downtime, &latencyAvg, &latencyMax)
		})
		if avg != 15 || !near(availability, 2.0/3) || !near(downtime, 1200) || latencyAvg != 2 || latencyMax != 3 {
			t.Errorf("known hour: avg %v availability %v downtime %v s latency avg %v max %v ms; want 15, 0.667, 1200, 2, 3",
				avg, availability, downtime, latencyAvg, latencyMax)
		}

		// Deleting tenant a deletes its rollups, materialized or not, and nothing of b's.
		if err := tenant.Delete(ctx, d.System(), a.ID); err != nil {
			t.Fatal(err)
		}
		for _, rollup := range dbtest.Rollups {
			var ofA, ofB int
			err := d.Pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE tenant_id = $1), count(*) FILTER (WHERE tenant_id = $2) FROM "+rollup,
				a.ID, b.ID).Scan(&ofA, &ofB)
			if err != nil {
				t.Fatal(err)
			}
			if ofA != 0 || ofB == 0 {
				t.Errorf("%s after deleting tenant a: %d rows of a, %d of b; want none of a and some of b", rollup, ofA, ofB)
			}
		}
	})
}
