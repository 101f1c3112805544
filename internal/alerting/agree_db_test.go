package alerting

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// storedSeries is a series as the independent computation reads it from the database.
type storedSeries struct {
	id      int64
	name    string
	host    string
	labels  map[string]string
	samples []storedSample // by time
}

type storedSample struct {
	t time.Time
	v float64
}

// goThreshold computes a threshold rule's value for one series at `at` from the raw samples, in Go and
// without SQL: the window (at − w, at] for raw windows, whole 5-minute buckets [bin(at − w), bin(at))
// beyond an hour; NaN samples skipped (a bucket with one is skipped whole, as the rollup's NaN sum is).
func goThreshold(s storedSeries, agg string, w time.Duration, at time.Time) (float64, bool) {
	var in []storedSample
	if w <= rawWindow {
		for _, x := range s.samples {
			if x.t.After(at.Add(-w)) && !x.t.After(at) && !math.IsNaN(x.v) {
				in = append(in, x)
			}
		}
	} else {
		lo, hi := at.Add(-w).Truncate(5*time.Minute), at.Truncate(5*time.Minute)
		buckets := map[time.Time][]storedSample{}
		for _, x := range s.samples {
			if !x.t.Before(lo) && x.t.Before(hi) {
				b := x.t.Truncate(5 * time.Minute)
				buckets[b] = append(buckets[b], x)
			}
		}
		for _, b := range buckets {
			if !slices.ContainsFunc(b, func(x storedSample) bool { return math.IsNaN(x.v) }) {
				in = append(in, b...)
			}
		}
		sort.Slice(in, func(i, j int) bool { return in[i].t.Before(in[j].t) })
	}
	if agg == "count" {
		return float64(len(in)), true
	}
	if len(in) == 0 {
		return 0, false
	}
	switch agg {
	case "avg", "sum":
		sum := 0.0
		for _, x := range in {
			sum += x.v
		}
		if agg == "avg" {
			return sum / float64(len(in)), true
		}
		return sum, true
	case "min", "max":
		m := in[0].v
		for _, x := range in {
			if agg == "min" {
				m = math.Min(m, x.v)
			} else {
				m = math.Max(m, x.v)
			}
		}
		return m, true
	case "last":
		return in[len(in)-1].v, true
	case "rate":
		if len(in) < 2 {
			return 0, false
		}
		inc := 0.0
		for i := 1; i < len(in); i++ {
			if d := in[i].v - in[i-1].v; d >= 0 {
				inc += d
			} else {
				inc += in[i].v // a reset: the counter restarted from zero
			}
		}
		return inc / in[len(in)-1].t.Sub(in[0].t).Seconds(), true
	}
	panic(agg)
}

// The set-based evaluation of threshold rules answers exactly what an independent computation in Go
// over the same stored rows finds: the same things (series) worth a decision, with the same values,
// for a few hundred rules mixing selectors (hosts, =, !=, =~, !~, case-insensitive patterns), every
// aggregate, raw and rollup windows, and every comparator — and nothing of another tenant whose series
// have the same names.
func TestSetBasedEvaluationAgreesWithGo(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		rng := rand.New(rand.NewPCG(7, 11))
		at := f.t0.Add(30 * time.Minute).Add(17 * time.Second) // not on a bucket boundary
		from := at.Add(-3*time.Hour - 10*time.Minute)
		var all []storedSeries
		for _, tenant := range []uuid.UUID{f.tenant, f.other} {
			for _, host := range []string{"web-1", "web-2", "WEB-3", "db-1", "db-2", "cache-1"} {
				h := f.host(tenant, host, nil)
				for _, m := range []struct {
					name   string
					labels map[string]string
				}{{"cpu", map[string]string{"cpu": "total"}}, {"cpu", map[string]string{"cpu": "0"}}, {"mem", nil},
					{"net.rx", map[string]string{"if": "eth0"}}} {
					s := storedSeries{name: m.name, host: host, labels: map[string]string{"host": host}}
					for k, v := range m.labels {
						s.labels[k] = v
					}
					s.id = f.series(tenant, h, host, m.name, m.labels)
					counter := 0.0
					var values []float64
					for d := time.Duration(0); from.Add(d).Before(at.Add(time.Minute)); d += 10 * time.Second {
						v := float64(rng.IntN(200)) / 2
						if m.name == "net.rx" {
							if rng.IntN(40) == 0 {
								counter = 0 // a reset
							}
							counter += float64(rng.IntN(1000))
							v = counter
						}
						if m.name == "mem" && rng.IntN(500) == 0 {
							v = math.NaN()
						}
						values = append(values, v)
						s.samples = append(s.samples, storedSample{from.Add(d), v})
					}
					f.samples(tenant, s.id, from, 10*time.Second, values...)
					if tenant == f.tenant {
						all = append(all, s)
					}
				}
			}
		}

		type ruleCase struct {
			id       int64
			metric   string
			host     string
			matchers Matchers
			agg      string
			window   time.Duration
			cmp      string
			thr      float64
			recover  *float64
		}
		matcherSets := [][]Matcher{nil, {{Name: "cpu", Op: "=", Value: "total"}}, {{Name: "cpu", Op: "!=", Value: "total"}},
			{{Name: "host", Op: "=~", Value: "web-.*"}}, {{Name: "host", Op: "!~", Value: ".*-1"}},
			{{Name: "host", Op: "=~", Value: "(?i)web-[0-9]+"}, {Name: "cpu", Op: "!~", Value: "0|1"}},
			{{Name: "if", Op: "=~", Value: "eth[0-9]|wlan.*"}}, {{Name: "absent_label", Op: "=", Value: ""}}}
		var cases []ruleCase
		for i := range 240 {
			c := ruleCase{metric: []string{"cpu", "mem", "net.rx"}[i%3], agg: Aggregates[rng.IntN(len(Aggregates))],
				cmp: Comparators[rng.IntN(len(Comparators))]}
			c.window = []time.Duration{30 * time.Second, 5 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour}[rng.IntN(5)]
			if c.agg == "rate" && c.window > rawWindow {
				c.window = 10 * time.Minute
			}
			if rng.IntN(3) == 0 {
				c.host = []string{"web-1", "db-2", "WEB-3", "nope"}[rng.IntN(4)]
			}
			ms := matcherSets[rng.IntN(len(matcherSets))]
			c.thr = float64(rng.IntN(100)) + 0.123
			switch c.agg {
			case "count":
				c.thr = float64(rng.IntN(400)) + 0.5
			case "sum":
				c.thr *= float64(rng.IntN(300) + 1)
			case "rate":
				c.thr = float64(rng.IntN(100)) + 0.123
			}
			if c.metric == "net.rx" && c.agg != "rate" && c.agg != "count" {
				c.thr *= 1000
			}
			if (c.cmp == ">" || c.cmp == ">=") && rng.IntN(2) == 0 {
				r := c.thr * 0.8
				c.recover = &r
			}
			if c.cmp == "==" || c.cmp == "!=" {
				c.thr = math.Round(c.thr) // equality with values that occur (halves)
			}
			settings := map[string]any{"metric": c.metric, "agg": c.agg, "window": FormatDuration(c.window), "comparator": c.cmp,
				"threshold": c.thr, "matchers": ms}
			if c.host != "" {
				settings["host"] = c.host
			}
			if c.recover != nil {
				settings["recover_threshold"] = *c.recover
			}
			raw, _ := json.Marshal(settings)
			var ps []Problem
			c.matchers, ps = CompileMatchers("m", ms)
			if len(ps) > 0 {
				t.Fatal(ps)
			}
			c.id = f.rule(f.tenant, spec(fmt.Sprintf("rule %d", i), "threshold", string(raw)))
			cases = append(cases, c)
		}

		ids := make([]int64, len(cases))
		for i, c := range cases {
			ids[i] = c.id
		}
		rows, err := thresholdKind{}.Evaluate(f.ctx, f.d.System().Queries(), ids, []time.Time{at})
		f.must(err)
		obs, err := decodeObservations(rows)
		f.must(err)
		got := map[string]float64{}
		for _, o := range obs {
			if o.SeriesID == nil || o.At.UTC() != at.UTC() {
				t.Fatalf("observation %+v", o)
			}
			got[fmt.Sprintf("%d/%d", o.RuleID, *o.SeriesID)] = o.Value.V
		}

		want := map[string]float64{}
		for _, c := range cases {
			for _, s := range all {
				if s.name != c.metric || (c.host != "" && s.host != c.host) || !c.matchers.Match(s.labels) {
					continue
				}
				v, ok := goThreshold(s, c.agg, c.window, at)
				breach := ok && Compare(v, c.cmp, c.thr)
				rec := c.thr
				if c.recover != nil {
					rec = *c.recover
				}
				recovered := !ok || !Compare(v, c.cmp, rec)
				if breach || !recovered {
					want[fmt.Sprintf("%d/%d", c.id, s.id)] = v
				}
			}
		}
		if len(want) < 50 || len(want) == len(cases)*len(all) {
			t.Fatalf("the data gives %d things to decide: the test would prove little", len(want))
		}
		var problems []string
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: Go finds %v, SQL nothing", k, w))
			} else if math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
				problems = append(problems, fmt.Sprintf("%s: Go %v, SQL %v", k, w, g))
			}
		}
		for k, g := range got {
			if _, ok := want[k]; !ok {
				problems = append(problems, fmt.Sprintf("%s: SQL finds %v, Go nothing", k, g))
			}
		}
		if len(problems) > 0 {
			sort.Strings(problems)
			t.Fatalf("%d disagreements of %d things:\n%s", len(problems), len(want), strings.Join(problems[:min(20, len(problems))], "\n"))
		}
		t.Logf("%d rules, %d series, %d things worth a decision: SQL and Go agree", len(cases), len(all), len(want))
	})
}
