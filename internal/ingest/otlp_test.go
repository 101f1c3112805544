package ingest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// stored reads the values of a metric of tenant's, by labels text then time.
func stored(t *testing.T, d *dbtest.DB, name string) map[string][]float64 {
	t.Helper()
	rows, err := d.Pool.Query(context.Background(), `SELECT r.labels::text, s.value FROM ts.samples s JOIN app.series r ON r.id = s.series_id
	                                                   WHERE r.name = $1 ORDER BY r.labels::text, s.time`, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]float64{}
	for rows.Next() {
		var labels string
		var v float64
		if err := rows.Scan(&labels, &v); err != nil {
			t.Fatal(err)
		}
		out[labels] = append(out[labels], v)
	}
	return out
}

func only(m map[string][]float64) []float64 {
	for _, v := range m {
		return v
	}
	return nil
}

// Delta samples become running totals: each adds to the newest stored value, a retried point stores
// nothing and counts as accepted, a point older than the newest stored one and a delta that is not a
// number are refused, and a process that has never seen the series continues from what is stored.
func TestDeltaSeriesAreRunningTotals(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		d := dbtest.New(t, flavor)
		ten := dbtest.SeedTenant(t, d, "acme")
		ctx := context.Background()
		s := startService(t, d)
		now := time.Now().UnixMilli()
		push := func(s *Service, samples ...Sample) Result {
			t.Helper()
			res, err := s.Write(ctx, ten.ID, "otlp", []Series{{Name: "jobs", Host: "w-1", Delta: true, Samples: samples}}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		if res := push(s, Sample{now - 3000, 5}, Sample{now - 2000, 3}); res.Accepted != 2 || len(res.Rejected) != 0 {
			t.Fatalf("first push: %+v", res)
		}
		if res := push(s, Sample{now - 2000, 3}); res.Accepted != 1 || len(res.Rejected) != 0 { // the same point again
			t.Fatalf("a retry: %+v", res)
		}
		res := push(s, Sample{now - 2500, 1}, Sample{now - 1500, math.NaN()}, Sample{now - 1000, 2})
		if res.Accepted != 1 || len(res.Rejected) != 2 || !strings.Contains(res.Rejected[0].Reason+res.Rejected[1].Reason, "older than the series' newest") ||
			!strings.Contains(res.Rejected[0].Reason+res.Rejected[1].Reason, "not a finite number") {
			t.Fatalf("a late point and NaN: %+v", res)
		}
		// Another process (a restart, another replica) continues from the stored total.
		if res := push(startService(t, d), Sample{now, 10}); res.Accepted != 1 {
			t.Fatalf("another process: %+v", res)
		}
		if got := only(stored(t, d, "jobs")); !slices.Equal(got, []float64{5, 8, 10, 20}) {
			t.Errorf("stored totals %v, want [5 8 10 20]", got)
		}
	})
}

// Concurrent pushes of one delta series in one process are summed exactly.
func TestDeltaSeriesSumConcurrentPushes(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "acme")
	s := startService(t, d)
	now := time.Now().UnixMilli()
	const pushes = 20
	errs := make(chan error, pushes)
	for i := range pushes {
		go func() {
			_, err := s.Write(context.Background(), ten.ID, "otlp", []Series{{Name: "hits", Delta: true,
				Samples: []Sample{{now - int64(pushes-i)*10, 1}}}}, nil, nil)
			errs <- err
		}()
	}
	for range pushes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := only(stored(t, d, "hits"))
	// Pushes that arrive after a later one are refused as late; those stored count every delta before them.
	for i, v := range got {
		if v != float64(i+1) {
			t.Fatalf("stored totals %v: each must be one more than the one before", got)
		}
	}
	if len(got) == 0 {
		t.Fatal("nothing stored")
	}
}

// Every OTLP metric type converts as documented: int sums, summaries (quantiles, _sum, _count), exponential
// histograms (_count and _sum, with a note), delta histograms summed; a point without a recorded value is
// skipped and one without a time refused; a host name that cannot be stored refuses its points.
func TestOTLPMetricTypes(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "acme")
	s := startService(t, d)
	ts := pcommon.Timestamp(time.Now().Add(-time.Second).UnixNano())
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("host.name", "db-1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()

	sum := ms.AppendEmpty()
	sum.SetName("rows.written")
	sum.SetEmptySum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p := sum.Sum().DataPoints().AppendEmpty()
	p.SetTimestamp(ts)
	p.SetIntValue(1 << 40)
	skipped := sum.Sum().DataPoints().AppendEmpty()
	skipped.SetTimestamp(ts + 1e6)
	skipped.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	timeless := sum.Sum().DataPoints().AppendEmpty()
	timeless.SetDoubleValue(1)

	summary := ms.AppendEmpty()
	summary.SetName("gc.pause")
	sp := summary.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetTimestamp(ts)
	sp.SetCount(10)
	sp.SetSum(2.5)
	q := sp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.99)
	q.SetValue(0.4)

	exp := ms.AppendEmpty()
	exp.SetName("latency")
	ep := exp.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	ep.SetTimestamp(ts)
	ep.SetCount(7)
	ep.SetSum(70)
	ep.Positive().BucketCounts().FromRaw([]uint64{3, 4})

	hist := ms.AppendEmpty()
	hist.SetName("size")
	hist.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i, counts := range [][]uint64{{1, 2}, {3, 0}} {
		hp := hist.Histogram().DataPoints().AppendEmpty()
		hp.SetTimestamp(ts + pcommon.Timestamp(i)*1e6)
		hp.ExplicitBounds().FromRaw([]float64{100})
		hp.BucketCounts().FromRaw(counts)
		hp.SetCount(counts[0] + counts[1])
	}

	bad := md.ResourceMetrics().AppendEmpty()
	bad.Resource().Attributes().PutStr("host.name", strings.Repeat("h", 300))
	g := bad.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("bad.host")
	gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetTimestamp(ts)

	res, err := s.WriteOTLPMetrics(context.Background(), ten.ID, md)
	if err != nil {
		t.Fatal(err)
	}
	// Points: the int sum, the timeless one, the summary, the exponential histogram, two histogram points,
	// the bad host's gauge; the skipped one is no point.
	if res.Accepted != 5 || res.Rejected != 2 || !strings.Contains(res.Message, "no time") || !strings.Contains(res.Message, "host name") ||
		!strings.Contains(res.Message, "exponential histograms are stored as _count and _sum") {
		t.Fatalf("result: %+v", res)
	}
	for name, want := range map[string][]float64{
		"rows.written":  {1 << 40},
		"gc.pause":      {0.4},
		"gc.pause_sum":  {2.5},
		"latency_count": {7},
		"latency_sum":   {70},
		"size_count":    {3, 6},
	} {
		if got := only(stored(t, d, name)); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	buckets := stored(t, d, "size_bucket")
	if fmt.Sprint(buckets) != `map[{"le": "+Inf", "host": "db-1"}:[3 6] {"le": "100", "host": "db-1"}:[1 4]]` {
		t.Errorf("delta histogram buckets: %v", buckets)
	}
	if q := stored(t, d, "gc.pause"); len(q[`{"host": "db-1", "quantile": "0.99"}`]) != 1 {
		t.Errorf("summary quantile: %v", q)
	}
}
