package promql_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/prometheus/model/value"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/promql"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// fixture is a database with two tenants and a day of samples, written as ingest writes them:
//
//	A  cpu.usage_pct {host=web-1,cpu=total}, {host=web-2,cpu=total}: every 10 s, 1,234 ms past the second
//	A  http_requests_total {host=web-1,code=200}: a counter every 15 s, reset at noon
//	A  edge.gauge {host=web-3}: every minute exactly on the minute, so on every rollup bucket's edge
//	A  stale.gauge {host=web-4}: every 10 s, with a stale marker (a NaN) at 06:00:07
//	A  cpu.load and cpu_load {host=web-1}: one PromQL series, cpu_load, from two stored ones
//	B  cpu.usage_pct {host=b-1}, secret_b {host=b-1}
//
// from base, a UTC midnight a day and a half ago, for 24 hours. Values are multiples of 0.25, so sums
// are exact whatever their order.
type fixture struct {
	d        *dbtest.DB
	a, b     uuid.UUID
	base     time.Time
	edgeID   int64
	staleID  int64
	seriesOf map[string]int64
}

func newFixture(t *testing.T, flavor db.Flavor) *fixture {
	t.Helper()
	ctx := context.Background()
	d := dbtest.New(t, flavor)
	f := &fixture{d: d, seriesOf: map[string]int64{}}
	for i, slug := range []string{"alpha", "bravo"} {
		created, err := tenant.Create(ctx, d.System(), tenant.NewTenant{Name: slug, AdminEmail: "owner@" + slug + ".example"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			f.a = created.TenantID
		} else {
			f.b = created.TenantID
		}
	}
	f.base = time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	if time.Since(f.base) < 36*time.Hour {
		f.base = f.base.Add(-24 * time.Hour)
	}
	series := func(tn uuid.UUID, name string, labels map[string]string) int64 {
		raw, _ := json.Marshal(labels)
		var id int64
		if err := d.Pool.QueryRow(ctx, `INSERT INTO app.series (tenant_id, name, labels) VALUES ($1, $2, $3) RETURNING id`,
			tn, name, raw).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	var rows [][]any
	add := func(tn uuid.UUID, id int64, at time.Time, v float64) { rows = append(rows, []any{at, tn, id, v}) }
	day := 24 * time.Hour
	web1 := series(f.a, "cpu.usage_pct", map[string]string{"host": "web-1", "cpu": "total"})
	web2 := series(f.a, "cpu.usage_pct", map[string]string{"host": "web-2", "cpu": "total"})
	b1 := series(f.b, "cpu.usage_pct", map[string]string{"host": "b-1", "cpu": "total"})
	secret := series(f.b, "secret_b", map[string]string{"host": "b-1"})
	for k := 0; k < int(day/(10*time.Second)); k++ {
		at := f.base.Add(time.Duration(k)*10*time.Second + 1234*time.Millisecond)
		add(f.a, web1, at, float64((k*7919)%400)/4)
		add(f.a, web2, at, float64((k*104729)%400)/4)
		add(f.b, b1, at, 10_000+float64(k%40)/4)
		if k%30 == 0 {
			add(f.b, secret, at, 42)
		}
	}
	requests := series(f.a, "http_requests_total", map[string]string{"host": "web-1", "code": "200"})
	counter := 0.0
	for k := 0; k < int(day/(15*time.Second)); k++ {
		at := f.base.Add(time.Duration(k)*15*time.Second + 500*time.Millisecond)
		if at.Sub(f.base) >= 12*time.Hour && at.Add(-15*time.Second).Sub(f.base) < 12*time.Hour {
			counter = 0 // a restart
		}
		counter += float64(k%7) + 0.25
		add(f.a, requests, at, counter)
	}
	f.edgeID = series(f.a, "edge.gauge", map[string]string{"host": "web-3"})
	for k := 0; k < int(day/time.Minute); k++ {
		add(f.a, f.edgeID, f.base.Add(time.Duration(k)*time.Minute), float64(k)) // rising: a window's edge decides its max
	}
	f.staleID = series(f.a, "stale.gauge", map[string]string{"host": "web-4"})
	for k := 0; k < int(day/(10*time.Second)); k++ {
		at := f.base.Add(time.Duration(k)*10*time.Second + 7*time.Second)
		v := float64(k % 17)
		if at.Sub(f.base) == 6*time.Hour+7*time.Second {
			v = math.Float64frombits(value.StaleNaN)
		}
		add(f.a, f.staleID, at, v)
	}
	loadDots := series(f.a, "cpu.load", map[string]string{"host": "web-1"})
	loadUnderscore := series(f.a, "cpu_load", map[string]string{"host": "web-1"})
	for k := 0; k < 24*60; k++ {
		at := f.base.Add(time.Duration(k)*time.Minute + 3*time.Second)
		if k%2 == 0 {
			add(f.a, loadDots, at, 1)
		} else {
			add(f.a, loadUnderscore, at, 2)
		}
	}
	if _, err := d.Pool.CopyFrom(ctx, pgx.Identifier{"ts", "samples"}, []string{"time", "tenant_id", "series_id", "value"},
		pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	dbtest.MaterializeRollups(t, d, time.Now())
	return f
}

func (f *fixture) engine(cfg promql.Config) *promql.Engine {
	return promql.New(db.NewTenantRunner(f.d.Pool), cfg, nil, nil)
}

// matrix is a decoded matrix answer: each series' points by its labels.
type matrix map[string][][2]float64

func decodeMatrix(t *testing.T, data []byte) matrix {
	t.Helper()
	var a struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("answer does not decode: %v\n%s", err, data)
	}
	m := matrix{}
	for _, s := range a.Result {
		keys := make([]string, 0, len(s.Metric))
		for k, v := range s.Metric {
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		values := s.Values
		if a.ResultType == "vector" {
			values = [][2]any{s.Value}
		}
		var pts [][2]float64
		for _, p := range values {
			v, err := strconv.ParseFloat(p[1].(string), 64)
			if err != nil {
				t.Fatalf("value %v: %v", p[1], err)
			}
			pts = append(pts, [2]float64{p[0].(float64), v})
		}
		m[strings.Join(keys, ",")] = pts
	}
	return m
}

// sameAnswers compares two answers point by point, values within a relative 1e-12 (a sum's rounding).
func sameAnswers(t *testing.T, what string, got, want matrix) {
	t.Helper()
	if len(want) == 0 {
		t.Errorf("%s: the reference answer is empty; the test proves nothing", what)
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d series, want %d: got %v", what, len(got), len(want), keys(got))
		return
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: no series %s", what, k)
			continue
		}
		if len(g) != len(w) {
			t.Errorf("%s: %s has %d points, want %d", what, k, len(g), len(w))
			continue
		}
		for i := range w {
			if g[i][0] != w[i][0] || !close(g[i][1], w[i][1]) {
				t.Errorf("%s: %s point %d is %v, want %v", what, k, i, g[i], w[i])
				break
			}
		}
	}
}

func close(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b || math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}

func keys(m matrix) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Where the storage reads a rollup tier, the upstream engine's answer is the one it gives over raw
// samples: the same series, times and values, on each flavor; and the tiers are in fact read (the
// counters say which), while series with a sample on a bucket's edge or a stale marker are read raw.
func TestRollupAnswersEqualRaw(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		ctx := context.Background()
		tiered := f.engine(promql.Config{Rollups: true})
		raw := f.engine(promql.Config{Rollups: false})
		start, end := f.base.Add(time.Hour), f.base.Add(23*time.Hour)
		for _, c := range []struct {
			query  string
			step   time.Duration
			source string // the tier that must be read, or raw
		}{
			{`cpu_usage_pct`, 5 * time.Minute, "5m"},
			{`cpu_usage_pct{host="web-2"}`, time.Hour, "5m"},
			{`sum by (cpu) (cpu_usage_pct)`, 30 * time.Minute, "5m"},
			{`max_over_time(cpu_usage_pct[1h])`, time.Hour, "1h"},
			{`min_over_time(cpu_usage_pct[15m])`, 15 * time.Minute, "5m"},
			{`sum_over_time(cpu_usage_pct[1h])`, 30 * time.Minute, "5m"},
			{`last_over_time(cpu_usage_pct[2h])`, time.Hour, "1h"},
			{`present_over_time(cpu_usage_pct[1h])`, time.Hour, "1h"},
			{`max by (host) (max_over_time(cpu_usage_pct[1h] offset 1h))`, time.Hour, "1h"},
			{`max_over_time(edge_gauge[1h])`, time.Hour, "raw"},
			{`edge_gauge`, 5 * time.Minute, "raw"},
			{`max_over_time(stale_gauge[1h])`, time.Hour, "raw"},
			{`stale_gauge`, 5 * time.Minute, "raw"},
			{`rate(http_requests_total[5m])`, 5 * time.Minute, "raw"},
			{`max_over_time(cpu_usage_pct[1h])`, 10 * time.Minute, "5m"},
			{`cpu_usage_pct`, time.Minute, "raw"},
			{`max_over_time(cpu_usage_pct[1h:5m])`, time.Hour, "raw"},
			{`cpu_load`, 5 * time.Minute, "raw"},
		} {
			before := map[string]float64{}
			for _, s := range []string{"raw", "5m", "1h", "1d"} {
				before[s] = tiered.SeriesRead(s)
			}
			want, err := raw.Range(ctx, f.a, c.query, start, end, c.step, promql.QueryOptions{})
			if err != nil {
				t.Fatalf("%s raw: %v", c.query, err)
			}
			got, err := tiered.Range(ctx, f.a, c.query, start, end, c.step, promql.QueryOptions{})
			if err != nil {
				t.Fatalf("%s: %v", c.query, err)
			}
			what := fmt.Sprintf("%s step %s", c.query, c.step)
			sameAnswers(t, what, decodeMatrix(t, got.Data), decodeMatrix(t, want.Data))
			read := ""
			for _, s := range []string{"1d", "1h", "5m", "raw"} {
				if tiered.SeriesRead(s) > before[s] {
					read += s + " "
				}
			}
			if strings.TrimSpace(read) != c.source {
				t.Errorf("%s: read from %q, want %s", what, read, c.source)
			}
		}
		// A day's maximum at midnight, from the daily tier.
		before := tiered.SeriesRead("1d")
		at := f.base.Add(24 * time.Hour)
		got, err := tiered.Instant(ctx, f.a, `max_over_time(cpu_usage_pct[1d])`, at, promql.QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := raw.Instant(ctx, f.a, `max_over_time(cpu_usage_pct[1d])`, at, promql.QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sameAnswers(t, "max_over_time(cpu_usage_pct[1d]) at midnight", decodeMatrix(t, got.Data), decodeMatrix(t, want.Data))
		if tiered.SeriesRead("1d") != before+2 {
			t.Errorf("the daily maximum read %v series from the 1d tier, want 2", tiered.SeriesRead("1d")-before)
		}
	})
}

// cpu.load and cpu_load with the same labels are one PromQL series, cpu_load, with the samples of both.
func TestNamesMapToPromQL(t *testing.T) {
	f := newFixture(t, db.FlavorPostgres)
	ctx := context.Background()
	e := f.engine(promql.Config{})
	at := f.base.Add(time.Hour + 30*time.Second)
	a, err := e.Range(ctx, f.a, `cpu_load`, at, at.Add(time.Minute), time.Minute, promql.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := decodeMatrix(t, a.Data)
	pts := m["__name__=cpu_load,host=web-1"]
	if len(m) != 1 || len(pts) != 2 || pts[0][1]+pts[1][1] != 3 {
		t.Errorf("cpu_load answers %v, want one series with a 1 and a 2 (both stored series)", m)
	}
	names, err := e.LabelValues(ctx, f.a, "__name__", nil, promql.TimeRange{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names.Items, " "); got != "cpu_load cpu_usage_pct edge_gauge http_requests_total stale_gauge" {
		t.Errorf("names %q", got)
	}
	a, err = e.Instant(ctx, f.a, `{__name__="cpu.usage_pct"}`, at, promql.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m := decodeMatrix(t, a.Data); len(m) != 0 {
		t.Errorf("the stored name with dots selects %v; PromQL knows it only as cpu_usage_pct", keys(m))
	}
}

// Selectors: every matcher type, applied exactly whether SQL could take it or not.
func TestSelectors(t *testing.T) {
	f := newFixture(t, db.FlavorPostgres)
	ctx := context.Background()
	e := f.engine(promql.Config{})
	at := f.base.Add(2 * time.Hour)
	for q, want := range map[string]string{
		`cpu_usage_pct{host="web-1"}`:                   "web-1",
		`cpu_usage_pct{host!="web-1"}`:                  "web-2",
		`cpu_usage_pct{host=~"web-1|web-2"}`:            "web-1 web-2",
		`cpu_usage_pct{host=~"web-.*"}`:                 "web-1 web-2",
		`cpu_usage_pct{host=~".*-2"}`:                   "web-2",
		`cpu_usage_pct{host!~"web-1|nope"}`:             "web-2",
		`cpu_usage_pct{cpu=""}`:                         "",
		`cpu_usage_pct{zone=""}`:                        "web-1 web-2",
		`cpu_usage_pct{zone!=""}`:                       "",
		`{__name__=~"cpu_usage_pct|edge_gauge"}`:        "web-1 web-2 web-3",
		`{__name__=~"cpu_.*", host="web-1"}`:            "web-1 web-1",
		`{__name__!="cpu_usage_pct", host=~"web-[34]"}`: "web-3 web-4",
		`{__name__=~"CPU_USAGE_PCT"}`:                   "",
		`{__name__=~"(?i)CPU_USAGE_PCT", host="web-2"}`: "web-2",
		`{"cpu_usage_pct", host="web-1"}`:               "web-1",
		`cpu_usage_pct{host="web-1\x00"}`:               "",
	} {
		a, err := e.Instant(ctx, f.a, q, at, promql.QueryOptions{})
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		var hosts []string
		var r struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		}
		if err := json.Unmarshal(a.Data, &r); err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Result {
			hosts = append(hosts, s.Metric["host"])
		}
		sort.Strings(hosts)
		if got := strings.Join(hosts, " "); got != want {
			t.Errorf("%s selects hosts %q, want %q", q, got, want)
		}
	}
}

// Tenant B sees only its own series, whatever it asks: every series, every name, every label value.
func TestTenantsSeeOnlyTheirSeries(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		ctx := context.Background()
		e := f.engine(promql.Config{})
		at := f.base.Add(3 * time.Hour)
		a, err := e.Instant(ctx, f.b, `{__name__=~".+"}`, at, promql.QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := decodeMatrix(t, a.Data)
		if got := strings.Join(keys(m), " "); got != "__name__=cpu_usage_pct,cpu=total,host=b-1 __name__=secret_b,host=b-1" {
			t.Errorf("B's {__name__=~\".+\"}: %s", got)
		}
		names, err := e.LabelValues(ctx, f.b, "__name__", nil, promql.TimeRange{Start: f.base, End: f.base.Add(24 * time.Hour)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(names.Items, " "); got != "cpu_usage_pct secret_b" {
			t.Errorf("B's names: %q", got)
		}
		hosts, err := e.LabelValues(ctx, f.b, "host", nil, promql.TimeRange{}, 0)
		if err != nil || strings.Join(hosts.Items, " ") != "b-1" {
			t.Errorf("B's hosts: %v %v", hosts.Items, err)
		}
		sets, err := e.ParseMatchers([]string{`{__name__=~".+"}`})
		if err != nil {
			t.Fatal(err)
		}
		series, err := e.Series(ctx, f.b, sets, promql.TimeRange{}, 0)
		if err != nil || len(series.Items) != 2 {
			t.Errorf("B's series: %v %v", series.Items, err)
		}
		labelNames, err := e.LabelNames(ctx, f.b, nil, promql.TimeRange{}, 0)
		if err != nil || strings.Join(labelNames.Items, " ") != "__name__ cpu host" {
			t.Errorf("B's label names: %v %v", labelNames.Items, err)
		}
	})
}

// The listings honour the time range (a series with no sample in it is left out) and the limit.
func TestListingsByTimeAndLimit(t *testing.T) {
	f := newFixture(t, db.FlavorPostgres)
	ctx := context.Background()
	e := f.engine(promql.Config{})
	later := promql.TimeRange{Start: f.base.Add(48 * time.Hour), End: f.base.Add(50 * time.Hour)}
	names, err := e.LabelValues(ctx, f.a, "__name__", nil, later, 0)
	if err != nil || len(names.Items) != 0 {
		t.Errorf("names with no sample in the range: %v %v", names.Items, err)
	}
	sets, _ := e.ParseMatchers([]string{`cpu_usage_pct`})
	if s, err := e.Series(ctx, f.a, sets, later, 0); err != nil || len(s.Items) != 0 {
		t.Errorf("series with no sample in the range: %v %v", s.Items, err)
	}
	limited, err := e.LabelValues(ctx, f.a, "__name__", nil, promql.TimeRange{}, 2)
	if err != nil || strings.Join(limited.Items, " ") != "cpu_load cpu_usage_pct" || len(limited.Warnings) != 1 {
		t.Errorf("limited names: %v %v %v", limited.Items, limited.Warnings, err)
	}
	if _, err := e.ParseMatchers([]string{`{env=""}`}); !isType(err, promql.BadData) {
		t.Errorf("a match[] that matches the empty string only: %v, want bad_data", err)
	}
}

// Limits answer typed errors naming the limit; a bad query is bad data.
func TestLimits(t *testing.T) {
	f := newFixture(t, db.FlavorPostgres)
	ctx := context.Background()
	start, end := f.base.Add(time.Hour), f.base.Add(3*time.Hour)
	e := f.engine(promql.Config{MaxSeries: 1})
	if _, err := e.Range(ctx, f.a, `cpu_usage_pct`, start, end, time.Minute, promql.QueryOptions{}); !isType(err, promql.Execution) ||
		!strings.Contains(err.Error(), "--promql-max-series") {
		t.Errorf("two series over a limit of one: %v", err)
	}
	e = f.engine(promql.Config{MaxSamples: 100})
	if _, err := e.Range(ctx, f.a, `rate(http_requests_total[5m])`, start, end, time.Minute, promql.QueryOptions{}); !isType(err, promql.Execution) ||
		!strings.Contains(err.Error(), "--promql-max-samples") {
		t.Errorf("500 samples over a limit of 100: %v", err)
	}
	e = f.engine(promql.Config{})
	for _, c := range []struct {
		q          string
		start, end time.Time
		step       time.Duration
	}{
		{`rate(`, start, end, time.Minute},
		{`cpu_usage_pct`, end, start, time.Minute},
		{`cpu_usage_pct`, start, end, 0},
		{`cpu_usage_pct`, start, start.Add(12 * time.Hour), time.Second},
	} {
		if _, err := e.Range(ctx, f.a, c.q, c.start, c.end, c.step, promql.QueryOptions{}); !isType(err, promql.BadData) {
			t.Errorf("%s %s–%s step %s: %v, want bad_data", c.q, c.start, c.end, c.step, err)
		}
	}
	if _, err := e.Range(ctx, f.a, `cpu_usage_pct[5m]`, start, end, time.Minute, promql.QueryOptions{}); !isType(err, promql.BadData) {
		t.Errorf("a range vector in a range query: %v, want bad_data", err)
	}
}

func isType(err error, typ promql.ErrorType) bool {
	var pe *promql.Error
	return errors.As(err, &pe) && pe.Type == typ
}
