package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/query"
)

// sample is one stored sample, kept by the test to compute every answer independently of the server.
type sample struct {
	t time.Time
	v float64
}

// querySeed is the data of the query tests, written as the owner the way ingest writes it:
//
//	A1 cpu.usage {env=prod}  host web-1: every minute for 3 days, every hour for the 26 days before
//	A2 cpu.usage {env=dev}   host web-2: every minute for 6 hours
//	A3 mem.used  {}          host web-1: one sample 2 days ago (silent since)
//	A4 disk.used {}          host web-3: samples from 1 to 2 hours ago (not reporting)
//	B1 cpu.usage {env=prod}  host web-1 of tenant B, values from 10,000 up, so a leak shows
//
// Values are multiples of 0.25, so every sum is exact and any summation order gives the same answer.
type querySeed struct {
	now                time.Time
	a1, a2, a3, a4, b1 int64
	samples            map[int64][]sample // by series id, oldest first
}

func seedQueryData(t *testing.T, w *world) *querySeed {
	t.Helper()
	ctx := context.Background()
	s := &querySeed{now: time.Now().Truncate(time.Minute), samples: map[int64][]sample{}}
	host := func(tenant uuid.UUID, name string) int64 {
		var id int64
		if err := w.d.Pool.QueryRow(ctx, `INSERT INTO app.hosts (tenant_id, name) VALUES ($1, $2) RETURNING id`, tenant, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	series := func(tenant uuid.UUID, hostID int64, hostName, name string, labels map[string]string) int64 {
		labels["host"] = hostName
		raw, _ := json.Marshal(labels)
		var id int64
		if err := w.d.Pool.QueryRow(ctx, `INSERT INTO app.series (tenant_id, host_id, name, labels) VALUES ($1, $2, $3, $4) RETURNING id`,
			tenant, hostID, name, raw).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	web1, web2, web3 := host(w.a.id, "web-1"), host(w.a.id, "web-2"), host(w.a.id, "web-3")
	bWeb1 := host(w.b.id, "web-1")
	s.a1 = series(w.a.id, web1, "web-1", "cpu.usage", map[string]string{"env": "prod"})
	s.a2 = series(w.a.id, web2, "web-2", "cpu.usage", map[string]string{"env": "dev"})
	s.a3 = series(w.a.id, web1, "web-1", "mem.used", map[string]string{})
	s.a4 = series(w.a.id, web3, "web-3", "disk.used", map[string]string{})
	s.b1 = series(w.b.id, bWeb1, "web-1", "cpu.usage", map[string]string{"env": "prod"})

	var rows [][]any
	add := func(tenant uuid.UUID, id int64, at time.Time, v float64) {
		s.samples[id] = append(s.samples[id], sample{at, v})
		rows = append(rows, []any{at, tenant, id, v})
	}
	value := func(k int) float64 { return float64((k*7919)%1000) / 4 }
	for k := 29 * 24; k > 72; k-- {
		add(w.a.id, s.a1, s.now.Add(-time.Duration(k)*time.Hour), value(k))
	}
	for k := 72 * 60; k >= 1; k-- {
		at := s.now.Add(-time.Duration(k) * time.Minute)
		add(w.a.id, s.a1, at, value(k))
		add(w.b.id, s.b1, at, 10_000+value(k))
		if k <= 6*60 {
			add(w.a.id, s.a2, at, value(k+1))
		}
		if k >= 60 && k <= 120 {
			add(w.a.id, s.a4, at, value(k+2))
		}
	}
	add(w.a.id, s.a3, s.now.Add(-48*time.Hour), 512)
	if _, err := w.d.Pool.CopyFrom(ctx, pgx.Identifier{"ts", "samples"}, []string{"time", "tenant_id", "series_id", "value"},
		pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	return s
}

// rangeAnswer is a decoded /query/range answer.
type rangeAnswer struct {
	Step   string `json:"step"`
	From   int64  `json:"from"`
	To     int64  `json:"to"`
	Series []struct {
		ID     int64             `json:"id"`
		Name   string            `json:"name"`
		Host   *string           `json:"host"`
		Labels map[string]string `json:"labels"`
		Points [][2]float64      `json:"points"`
	} `json:"series"`
}

func (w *world) queryRange(t *testing.T, credential string, params url.Values) rangeAnswer {
	t.Helper()
	got := w.call(t, "GET", "/api/v1/query/range?"+params.Encode(), credential, nil).must(t, http.StatusOK)
	var a rangeAnswer
	if err := json.Unmarshal([]byte(got.raw), &a); err != nil {
		t.Fatalf("decode %s: %v", got.raw, err)
	}
	return a
}

func (a rangeAnswer) ids() []int64 {
	var ids []int64
	for _, s := range a.Series {
		ids = append(ids, s.ID)
	}
	return ids
}

// expectBuckets computes a tier's answer from the raw samples: one point per bucket of width step that
// starts in [bucket of from, to) and holds samples, every sample of the bucket counted (buckets are whole).
func expectBuckets(samples []sample, from, to time.Time, step time.Duration, agg string) [][2]float64 {
	type acc struct {
		min, max, sum, last float64
		count               int
		lastAt              time.Time
	}
	first := from.Truncate(step) // Truncate rounds down since the zero time, which is on a day boundary in UTC
	var order []int64
	bs := map[int64]*acc{}
	for _, s := range samples {
		b := s.t.Truncate(step)
		if b.Before(first) || !b.Before(to) {
			continue
		}
		k := b.UnixMilli()
		a, ok := bs[k]
		if !ok {
			a = &acc{min: s.v, max: s.v}
			bs[k] = a
			order = append(order, k)
		}
		a.min, a.max, a.sum, a.count = min(a.min, s.v), max(a.max, s.v), a.sum+s.v, a.count+1
		if !s.t.Before(a.lastAt) {
			a.last, a.lastAt = s.v, s.t
		}
	}
	slices.Sort(order)
	out := make([][2]float64, 0, len(order))
	for _, k := range order {
		a := bs[k]
		v := map[string]float64{"avg": a.sum / float64(a.count), "min": a.min, "max": a.max, "last": a.last, "sum": a.sum,
			"count": float64(a.count)}[agg]
		out = append(out, [2]float64{float64(k), v})
	}
	return out
}

func expectRaw(samples []sample, from, to time.Time) [][2]float64 {
	out := [][2]float64{}
	for _, s := range samples {
		if !s.t.Before(from) && s.t.Before(to) {
			out = append(out, [2]float64{float64(s.t.UnixMilli()), s.v})
		}
	}
	return out
}

func samePoints(t *testing.T, what string, got, want [][2]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d points, want %d (first got %v, want %v)", what, len(got), len(want), head(got), head(want))
		return
	}
	for i := range got {
		if got[i][0] != want[i][0] || math.Abs(got[i][1]-want[i][1]) > 1e-9*math.Max(1, math.Abs(want[i][1])) {
			t.Errorf("%s: point %d is %v, want %v", what, i, got[i], want[i])
			return
		}
	}
}

func head(p [][2]float64) [][2]float64 { return p[:min(3, len(p))] }

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// A range query answers, for every step and aggregate, what the raw samples give when computed here.
func TestQueryRangeMatchesRawSamples(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		s := seedQueryData(t, w)
		viewer := w.a.tokens["viewer"]
		ranges := []struct {
			step     string
			width    time.Duration
			from, to time.Time
		}{
			{"5m", 5 * time.Minute, s.now.Add(-48*time.Hour - 17*time.Minute), s.now.Add(-24*time.Hour + 3*time.Minute)},
			{"1h", time.Hour, s.now.Add(-72*time.Hour + 13*time.Minute), s.now},
			{"1d", 24 * time.Hour, s.now.Add(-20 * 24 * time.Hour), s.now},
		}
		check := func(t *testing.T) {
			for _, r := range ranges {
				for _, agg := range []string{"avg", "min", "max", "last", "sum", "count"} {
					// from in milliseconds, to in RFC 3339: both forms are accepted.
					a := w.queryRange(t, viewer, url.Values{"metric": {"cpu.usage"}, "label.env": {"prod"}, "from": {ms(r.from)},
						"to": {r.to.UTC().Format(time.RFC3339Nano)}, "step": {r.step}, "agg": {agg}})
					if a.Step != r.step || a.From != r.from.UnixMilli() || a.To != r.to.UnixMilli() || !slices.Equal(a.ids(), []int64{s.a1}) {
						t.Fatalf("step %s agg %s: step %q from %d to %d series %v", r.step, agg, a.Step, a.From, a.To, a.ids())
					}
					samePoints(t, r.step+" "+agg, a.Series[0].Points, expectBuckets(s.samples[s.a1], r.from, r.to, r.width, agg))
				}
			}
			from, to := s.now.Add(-90*time.Minute), s.now.Add(-30*time.Minute)
			a := w.queryRange(t, viewer, url.Values{"series": {fmt.Sprint(s.a1), fmt.Sprint(s.a2)}, "from": {ms(from)}, "to": {ms(to)},
				"step": {"raw"}})
			if a.Step != "raw" || !slices.Equal(a.ids(), []int64{s.a1, s.a2}) {
				t.Fatalf("raw by series ids: step %q, series %v", a.Step, a.ids())
			}
			samePoints(t, "raw a1", a.Series[0].Points, expectRaw(s.samples[s.a1], from, to))
			samePoints(t, "raw a2", a.Series[1].Points, expectRaw(s.samples[s.a2], from, to))
			if len(a.Series[0].Points) != 60 {
				t.Errorf("raw a1: %d points, want 60", len(a.Series[0].Points))
			}
		}
		// First with nothing materialized (the tiers answer from their real-time tail), then after the
		// rollups are refreshed: the same answers.
		t.Run("real-time", check)
		refreshRollups(t, w.d)
		t.Run("materialized", check)
	})
}

// refreshRollups materializes every metric rollup tier, finest first, up to now, and checks that the
// tiers hold materialized buckets afterwards.
func refreshRollups(t *testing.T, d *dbtest.DB) {
	t.Helper()
	ctx := context.Background()
	tiers := []string{"ts.samples_5m", "ts.samples_1h", "ts.samples_1d"}
	if d.Flavor == db.FlavorTimescale {
		for _, tier := range tiers {
			if _, err := d.Pool.Exec(ctx, "CALL refresh_continuous_aggregate($1, NULL, NULL)", tier); err != nil {
				t.Fatalf("refresh %s: %v", tier, err)
			}
			var store string
			var stored int64
			if err := d.Pool.QueryRow(ctx, `SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
			                                  FROM timescaledb_information.continuous_aggregates
			                                 WHERE format('%I.%I', view_schema, view_name) = $1`, tier).Scan(&store); err != nil {
				t.Fatalf("%s: %v", tier, err)
			}
			if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM "+store).Scan(&stored); err != nil || stored == 0 {
				t.Fatalf("%s holds %d materialized buckets after the refresh (%v)", tier, stored, err)
			}
		}
		return
	}
	for range 100 {
		var backlog bool
		if err := d.Pool.QueryRow(ctx, "SELECT coalesce(bool_or(backlog), false) FROM infrawatch.refresh_rollups(now(), 100000)").
			Scan(&backlog); err != nil {
			t.Fatalf("refresh_rollups: %v", err)
		}
		if !backlog {
			break
		}
	}
	for _, tier := range tiers {
		var stored int64
		if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM "+tier+"_store").Scan(&stored); err != nil || stored == 0 {
			t.Fatalf("%s_store holds %d buckets after the refresh (%v)", tier, stored, err)
		}
	}
}

// step=auto picks raw, 5m, 1h and 1d for 1 hour, 1 day, 30 days and 1 year, never more points than the
// limit; the defaults of from and to make a one-hour raw query.
func TestQueryRangeAutoStep(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		s := seedQueryData(t, w)
		viewer := w.a.tokens["viewer"]
		for _, c := range []struct {
			span time.Duration
			step string
		}{{time.Hour, "raw"}, {24 * time.Hour, "5m"}, {30 * 24 * time.Hour, "1h"}, {365 * 24 * time.Hour, "1d"}} {
			a := w.queryRange(t, viewer, url.Values{"metric": {"cpu.usage"}, "host": {"web-1"}, "from": {ms(s.now.Add(-c.span))},
				"to": {ms(s.now)}})
			if a.Step != c.step || !slices.Equal(a.ids(), []int64{s.a1}) {
				t.Errorf("%s: step %q series %v, want %s of [%d]", c.span, a.Step, a.ids(), c.step, s.a1)
				continue
			}
			n := len(a.Series[0].Points)
			if n == 0 || n > query.DefaultLimits().MaxPointsPerSeries {
				t.Errorf("%s: %d points", c.span, n)
			}
			for i := 1; i < n; i++ {
				if a.Series[0].Points[i][0] <= a.Series[0].Points[i-1][0] {
					t.Fatalf("%s: points out of order at %d", c.span, i)
				}
			}
		}
		// No from, no to: the last hour, raw, with the newest sample in it.
		a := w.queryRange(t, viewer, url.Values{"metric": {"cpu.usage"}, "label.env": {"dev"}})
		if a.Step != "raw" || a.To-a.From != time.Hour.Milliseconds() || !slices.Equal(a.ids(), []int64{s.a2}) {
			t.Fatalf("defaults: step %q from %d to %d series %v", a.Step, a.From, a.To, a.ids())
		}
		// One sample a minute; the hour ends at the request's now, a little after the newest sample.
		if pts := a.Series[0].Points; len(pts) < 50 || len(pts) > 60 || pts[len(pts)-1][0] != float64(s.now.Add(-time.Minute).UnixMilli()) {
			t.Errorf("defaults: %d points, the last %v, want up to 60 ending at %d", len(pts), pts[max(0, len(pts)-1):],
				s.now.Add(-time.Minute).UnixMilli())
		}
	})
}

// latest, series and overview, and the host and label filters.
func TestQueryLatestSeriesOverview(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		s := seedQueryData(t, w)
		viewer := w.a.tokens["viewer"]
		ctx := context.Background()

		// latest: the newest sample of each series; A3 has none in the last day and is left out.
		got := w.call(t, "GET", "/api/v1/query/latest?series="+fmt.Sprint(s.a1)+"&series="+fmt.Sprint(s.a2)+
			"&series="+fmt.Sprint(s.a3)+"&series="+fmt.Sprint(s.a4), viewer, nil).must(t, http.StatusOK)
		var latest struct {
			Series []struct {
				ID    int64    `json:"id"`
				Name  string   `json:"name"`
				Host  *string  `json:"host"`
				Time  int64    `json:"time"`
				Value *float64 `json:"value"`
			} `json:"series"`
		}
		if err := json.Unmarshal([]byte(got.raw), &latest); err != nil {
			t.Fatal(err)
		}
		wantIDs := []int64{s.a1, s.a2, s.a4}
		if len(latest.Series) != len(wantIDs) {
			t.Fatalf("latest: %s", got.raw)
		}
		for i, id := range wantIDs {
			l, all := latest.Series[i], s.samples[id]
			newest := all[len(all)-1]
			if l.ID != id || l.Time != newest.t.UnixMilli() || l.Value == nil || *l.Value != newest.v {
				t.Errorf("latest of %d: %+v, want time %d value %v", id, l, newest.t.UnixMilli(), newest.v)
			}
		}
		if h := latest.Series[0].Host; h == nil || *h != "web-1" || latest.Series[0].Name != "cpu.usage" {
			t.Errorf("latest of A1: name %q host %v", latest.Series[0].Name, latest.Series[0].Host)
		}
		got = w.call(t, "GET", "/api/v1/query/latest?metric=cpu.usage&host=web-2", viewer, nil).must(t, http.StatusOK)
		if !strings.Contains(got.raw, fmt.Sprintf(`"id":%d,`, s.a2)) || strings.Contains(got.raw, fmt.Sprintf(`"id":%d,`, s.a1)) {
			t.Errorf("latest by host: %s", got.raw)
		}

		// series: filters and pages.
		list := func(query string) (ids []int64, next string) {
			t.Helper()
			got := w.call(t, "GET", "/api/v1/series?"+query, viewer, nil).must(t, http.StatusOK)
			var p struct {
				Items []struct {
					ID int64 `json:"id"`
				} `json:"items"`
				NextCursor *string `json:"next_cursor"`
			}
			if err := json.Unmarshal([]byte(got.raw), &p); err != nil {
				t.Fatal(err)
			}
			for _, it := range p.Items {
				ids = append(ids, it.ID)
			}
			if p.NextCursor != nil {
				next = *p.NextCursor
			}
			return ids, next
		}
		for _, c := range []struct {
			query string
			want  []int64
		}{
			{"", []int64{s.a1, s.a2, s.a3, s.a4}},
			{"name=cpu.usage", []int64{s.a1, s.a2}},
			{"name=cpu", nil},
			{"name_prefix=cpu.", []int64{s.a1, s.a2}},
			{"name_prefix=%25", nil}, // a literal %, not a wildcard
			{"host=web-1", []int64{s.a1, s.a3}},
			{"label.env=prod", []int64{s.a1}},
			{"label.host=web-3", []int64{s.a4}},
			{"name_prefix=cpu&host=web-1&label.env=prod", []int64{s.a1}},
		} {
			if ids, _ := list(c.query); !slices.Equal(ids, c.want) {
				t.Errorf("series?%s: %v, want %v", c.query, ids, c.want)
			}
		}
		var paged []int64
		cursor := ""
		for range 10 {
			ids, next := list("limit=3&cursor=" + cursor)
			paged = append(paged, ids...)
			if next == "" {
				break
			}
			cursor = next
		}
		if !slices.Equal(paged, []int64{s.a1, s.a2, s.a3, s.a4}) {
			t.Errorf("paged series: %v", paged)
		}

		// overview: web-1 and web-2 have samples from the last 10 minutes, web-3's are an hour old.
		for _, c := range []struct {
			status  any
			enabled bool
		}{{"up", true}, {"up", true}, {"down", true}, {nil, true}, {"up", false}, {nil, false}} {
			if _, err := w.d.Pool.Exec(ctx, `INSERT INTO app.checks (tenant_id, name, kind, target, enabled, status)
			                                 VALUES ($1, 'c', 'tcp', 'db:5432', $2, $3)`, w.a.id, c.enabled, c.status); err != nil {
				t.Fatal(err)
			}
		}
		var o query.Overview
		got = w.call(t, "GET", "/api/v1/overview", viewer, nil).must(t, http.StatusOK)
		if err := json.Unmarshal([]byte(got.raw), &o); err != nil {
			t.Fatal(err)
		}
		want := query.Overview{Hosts: query.OverviewHosts{Total: 3, Reporting: 2},
			Checks: query.OverviewChecks{Total: 6, Up: 2, Down: 1, Unknown: 1, Disabled: 2}, Series: 4}
		if o != want {
			t.Errorf("overview %+v, want %+v", o, want)
		}
	})
}

// Each limit answers a 4xx problem that names the parameter to change.
func TestQueryLimits(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldCustom(t, flavor, testLimits, func(d *api.Deps) {
			d.Config.Query = query.Limits{MaxSeries: 1, MaxPointsPerSeries: 100}
			d.Tenants = d.Tenants.WithStatementTimeout(300 * time.Millisecond)
		})
		s := seedQueryData(t, w)
		viewer := w.a.tokens["viewer"]
		day := func(n int) string { return ms(s.now.Add(-time.Duration(n) * 24 * time.Hour)) }
		now := ms(s.now)
		cases := []struct {
			query, field, says string
		}{
			{"metric=cpu.usage", "metric", "matches 2 series; the limit is 1"},
			{fmt.Sprintf("series=%d&series=%d", s.a1, s.a2), "series", "lists 2 series; the limit is 1"},
			{"label.env=prod", "metric", "is required"},
			{"metric=cpu.usage&host=web-1&step=5m&from=" + day(1) + "&to=" + now, "step", "use step=1h"},
			{"metric=cpu.usage&host=web-1&step=1h&from=" + day(30) + "&to=" + now, "step", "use step=1d"},
			{"metric=cpu.usage&host=web-1&step=raw&from=" + ms(s.now.Add(-6*time.Hour)) + "&to=" + now, "step", "more than 100 samples"},
			{"metric=cpu.usage&host=web-1&from=" + day(200) + "&to=" + now, "from", "narrow the range"},
			{"metric=cpu.usage&host=web-1&from=" + day(6*366) + "&to=" + now, "from", "may span at most"},
			{"metric=cpu.usage&host=web-1&from=" + now + "&to=" + now, "from", "must be before to"},
			{"metric=cpu.usage&host=web-1&from=" + now + "&to=" + day(1), "from", "must be before to"},
			{"metric=cpu.usage&host=web-1&from=yesterday", "from", "RFC 3339"},
			{"metric=cpu.usage&host=web-1&to=99999999999999999", "to", "between 1970 and 2200"},
			{"metric=cpu.usage&host=web-1&step=10m", "step", "must be one of"},
			{"metric=cpu.usage&host=web-1&agg=median", "agg", "must be one of"},
			{"series=abc", "series", "is not a series id"},
		}
		for _, c := range cases {
			got := w.call(t, "GET", "/api/v1/query/range?"+c.query, viewer, nil)
			if got.status != http.StatusBadRequest || !strings.Contains(got.raw, `"field":"`+c.field+`"`) || !strings.Contains(got.raw, c.says) {
				t.Errorf("range?%s: %d %s; want 400 naming %s and saying %q", c.query, got.status, got.raw, c.field, c.says)
			}
		}
		if got := w.call(t, "GET", "/api/v1/query/latest?metric=cpu.usage", viewer, nil); got.status != http.StatusBadRequest ||
			!strings.Contains(got.raw, `"field":"metric"`) {
			t.Errorf("latest over the series limit: %d %s", got.status, got.raw)
		}

		// auto never answers more than the limit: A1 has 120 samples in 2 hours, over 100, so auto answers 5m.
		a := w.queryRange(t, viewer, url.Values{"metric": {"cpu.usage"}, "host": {"web-1"}, "from": {ms(s.now.Add(-2 * time.Hour))},
			"to": {now}})
		if a.Step != "5m" || len(a.Series) != 1 || len(a.Series[0].Points) > 100 {
			t.Errorf("auto over 2 hours of 120 samples: step %q, %d series", a.Step, len(a.Series))
		}

		// A statement that runs past the timeout answers 422: here it waits for a lock held meanwhile.
		ctx := context.Background()
		tx, err := w.d.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "LOCK TABLE app.series IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/api/v1/query/range?metric=cpu.usage&host=web-1", "/api/v1/query/latest?series=1", "/api/v1/series",
			"/api/v1/overview"} {
			got := w.call(t, "GET", path, viewer, nil)
			if got.status != http.StatusUnprocessableEntity || !strings.Contains(got.raw, "query timed out") {
				t.Errorf("%s with a slow database: %d %s, want 422", path, got.status, got.raw)
			}
		}
	})
}

// Tenant B never sees tenant A's series, whatever it asks.
func TestQueryIsolation(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		s := seedQueryData(t, w)
		b := w.b.tokens["owner"]
		from, to := ms(s.now.Add(-3*24*time.Hour)), ms(s.now)
		for _, params := range []url.Values{
			{"series": {fmt.Sprint(s.a1), fmt.Sprint(s.a2), fmt.Sprint(s.b1)}, "from": {from}, "to": {to}, "step": {"1h"}},
			{"metric": {"cpu.usage"}, "label.env": {"prod"}, "from": {from}, "to": {to}, "step": {"1h"}, "agg": {"min"}},
			{"metric": {"cpu.usage"}, "host": {"web-1"}, "from": {from}, "to": {to}},
			{"metric": {"cpu.usage"}, "step": {"raw"}},
			{"metric": {"cpu.usage"}, "from": {ms(s.now.Add(-20 * 24 * time.Hour))}, "to": {to}, "step": {"1d"}, "agg": {"count"}},
		} {
			a := w.queryRange(t, b, params)
			if !slices.Equal(a.ids(), []int64{s.b1}) {
				t.Errorf("B with %v: series %v, want only B's %d", params, a.ids(), s.b1)
			}
			for _, sr := range a.Series {
				for _, p := range sr.Points {
					if params.Get("agg") != "count" && p[1] < 10_000 {
						t.Fatalf("B with %v: a value of A's, %v", params, p)
					}
				}
			}
		}
		if agg := w.queryRange(t, b, url.Values{"series": {fmt.Sprint(s.a1)}, "step": {"raw"}}); len(agg.Series) != 0 {
			t.Errorf("B asking for A's series by id: %v", agg.ids())
		}
		for _, path := range []string{
			fmt.Sprintf("/api/v1/query/latest?series=%d&series=%d", s.a1, s.b1),
			"/api/v1/query/latest?metric=cpu.usage&label.env=prod",
			"/api/v1/series", "/api/v1/series?name_prefix=cpu&host=web-1",
		} {
			got := w.call(t, "GET", path, b, nil).must(t, http.StatusOK)
			for _, id := range []int64{s.a1, s.a2, s.a3, s.a4} {
				if strings.Contains(got.raw, fmt.Sprintf(`"id":%d,`, id)) {
					t.Errorf("B's %s shows A's series %d: %s", path, id, got.raw)
				}
			}
			if !strings.Contains(got.raw, fmt.Sprintf(`"id":%d,`, s.b1)) {
				t.Errorf("B's %s lacks its own series: %s", path, got.raw)
			}
		}
		var o query.Overview
		got := w.call(t, "GET", "/api/v1/overview", b, nil).must(t, http.StatusOK)
		if err := json.Unmarshal([]byte(got.raw), &o); err != nil {
			t.Fatal(err)
		}
		if want := (query.Overview{Hosts: query.OverviewHosts{Total: 1, Reporting: 1}, Series: 1}); o != want {
			t.Errorf("B's overview %+v, want %+v", o, want)
		}
		// Every route of the query API needs a credential.
		for _, path := range []string{"/api/v1/query/range?metric=cpu.usage", "/api/v1/query/latest?metric=cpu.usage", "/api/v1/series",
			"/api/v1/overview"} {
			w.call(t, "GET", path, "", nil).must(t, http.StatusUnauthorized)
		}
	})
}
