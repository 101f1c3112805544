package alerting

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// series of samples every 10 s from f.t0+from to f.t0+to, valued by v(minutes since t0).
func (f *fixture) curve(series int64, from, to time.Duration, v func(m float64) float64) {
	f.t.Helper()
	var values []float64
	for d := from; d < to; d += 10 * time.Second {
		values = append(values, v(d.Minutes()))
	}
	f.samples(f.tenant, series, f.t0.Add(from), 10*time.Second, values...)
}

// A threshold rule fires only after its condition held for `for`, keeps firing between the threshold and
// the recovery threshold (hysteresis), resolves past the latter, and sends one message for each.
func TestThresholdRuleFiresAfterForAndResolvesPastRecovery(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		h := f.host(f.tenant, "web-1", nil)
		total := f.series(f.tenant, h, "web-1", "cpu.usage_pct", map[string]string{"cpu": "total"})
		core := f.series(f.tenant, h, "web-1", "cpu.usage_pct", map[string]string{"cpu": "0"})
		f.curve(total, -5*time.Minute, 17*time.Minute, func(m float64) float64 {
			switch {
			case m < 3:
				return 50
			case m < 9:
				return 95
			case m < 12:
				return 80
			}
			return 60
		})
		f.curve(core, -5*time.Minute, 17*time.Minute, func(float64) float64 { return 100 }) // left out by the matcher
		ch := f.channel(f.tenant, "ops")
		r := spec("cpu high", "threshold", `{"metric": "cpu.usage_pct", "host": "web-1",
			"matchers": [{"name": "cpu", "op": "=~", "value": "tot.l"}], "window": "1m", "agg": "avg",
			"comparator": ">", "threshold": 90, "recover_threshold": 70}`)
		r.For, r.Channels, r.Labels = 2*time.Minute, []int64{ch}, map[string]string{"team": "web"}
		r.Summary = `{{.Host}} cpu {{printf "%.0f" .Value}}% > {{.Threshold}} ({{.Labels.team}})`
		rule := f.rule(f.tenant, r)

		want := map[int]string{1: "none", 3: "none", 4: "pending", 5: "pending", 6: "firing", 9: "firing", 10: "firing",
			12: "firing", 13: "resolved", 16: "resolved"}
		f.minutes(16, func(i int) {
			if w, ok := want[i]; ok {
				expect(t, "state at minute "+itoa(i), f.state(rule), w)
			}
		})
		a := f.alerts(rule)[0]
		expectSlice(t, "history", f.history(a.ID), []string{"inactive>pending", "pending>firing", "firing>resolved"})
		expectSlice(t, "notifications", f.notifications(a.ID), []string{"firing@" + itoa(int(ch)), "resolved@" + itoa(int(ch))})
		p := f.payload(a.ID, 0)
		expect(t, "firing payload state", p.Alert.State, "firing")
		expect(t, "firing payload value", *p.Alert.Value, 95)
		expect(t, "summary", p.Alert.Summary, "web-1 cpu 95% > 90 (web)")
		expect(t, "threshold", *p.Alert.Threshold, 90)
		expect(t, "comparator", *p.Alert.Comparator, ">")
		expect(t, "host", p.Alert.Host.Name, "web-1")
		expect(t, "labels", p.Alert.Labels["cpu"]+p.Alert.Labels["team"]+p.Alert.Labels["__name__"], "totalwebcpu.usage_pct")
		expect(t, "rule", p.Rule.Name+"/"+p.Rule.Kind, "cpu high/threshold")
		expect(t, "tenant", p.Tenant.Slug, "acme")
		if p.Alert.StartedAt == nil || p.Alert.ResolvedAt != nil {
			t.Fatalf("firing payload times: %v %v", p.Alert.StartedAt, p.Alert.ResolvedAt)
		}
		r2 := f.payload(a.ID, 1)
		if r2.Alert.State != "resolved" || r2.Alert.ResolvedAt == nil || *r2.Alert.Value != 60 {
			t.Fatalf("resolved payload: %+v", r2.Alert)
		}
	})
}

// rate is per second over a counter, across a reset: the increase since a reset counts from zero.
func TestThresholdRateAcrossCounterReset(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		h := f.host(f.tenant, "edge", nil)
		s := f.series(f.tenant, h, "edge", "if.in_octets", nil)
		// 5 per second for a minute, then a reset to 0 and 20 per second: in the window (t0+1m, t0+3m],
		// samples at 1m10s … 3m: before the reset at 2m the counter goes 350 … 600 (+5 a second), at 2m
		// it restarts at 100 and adds 200 every 10 s.
		var values []float64
		for i := range 19 { // t0 .. t0+3m
			d := time.Duration(i) * 10 * time.Second
			if d < 2*time.Minute {
				values = append(values, 5*d.Seconds())
			} else {
				values = append(values, 100+20*(d-2*time.Minute).Seconds())
			}
		}
		f.samples(f.tenant, s, f.t0, 10*time.Second, values...)
		rule := f.rule(f.tenant, spec("traffic", "threshold", `{"metric": "if.in_octets", "window": "2m", "agg": "rate",
			"comparator": ">", "threshold": 9}`))
		f.tick(f.t0.Add(3 * time.Minute))
		a := f.alerts(rule)
		if len(a) != 1 || a[0].State != "firing" {
			t.Fatalf("alerts %+v", a)
		}
		// Samples of (1m, 3m]: 1m10s … 3m. Increases: 50 × 4 steps from 1m10s to 1m50s (200), the reset to
		// 100 at 2m (100), then 200 × 6 to 3m (1200): 1500 over the 110 s from 1m10s to 3m.
		want := 1500.0 / 110
		if math.Abs(*a[0].Value-want) > 1e-9 {
			t.Fatalf("rate %v, want %v", *a[0].Value, want)
		}
		// A plain difference, last − first, would be (1300 − 350) / 110 ≈ 8.6: below the threshold.
	})
}

// An absent rule fires for a host that stops pushing, one alert per silent series, and once for a
// selector that matches nothing.
func TestAbsentRule(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		web := f.host(f.tenant, "web-1", nil)
		db1 := f.host(f.tenant, "db-1", nil)
		f.exec(`UPDATE app.hosts SET monitored_by = 'agent' WHERE id IN ($1, $2)`, web, db1)
		sw := f.series(f.tenant, web, "web-1", "up", nil)
		sd := f.series(f.tenant, db1, "db-1", "up", nil)
		// web-1 pushes until t0+2m, db-1 all along.
		f.samples(f.tenant, sw, f.t0.Add(-30*time.Minute), 10*time.Second, repeat(1, 6*32)...)
		f.samples(f.tenant, sd, f.t0.Add(-30*time.Minute), 10*time.Second, repeat(1, 6*60)...)
		series := f.rule(f.tenant, spec("silent series", "absent", `{"metric": "up", "silent_for": "3m", "lookback": "1h"}`))
		host := f.rule(f.tenant, spec("silent web", "absent", `{"host": "web-1", "silent_for": "3m"}`))
		agents := f.rule(f.tenant, spec("silent agents", "absent", `{"agents": true, "silent_for": "3m"}`))
		nothing := f.rule(f.tenant, spec("no disk metrics", "absent", `{"metric": "disk.free", "silent_for": "3m"}`))
		gone := f.rule(f.tenant, spec("no host", "absent", `{"host": "web-9", "silent_for": "3m"}`))

		f.minutes(4, nil) // t0+4m: web-1's last sample is at t0+1m50s, silent for 2m10s
		expect(t, "series at 4m", len(f.alerts(series)), 0)
		f.minutes(1, nil) // t0+5m: silent for 3m10s
		for _, r := range []int64{series, host, agents} {
			as := f.alerts(r)
			if len(as) != 1 || as[0].State != "firing" || as[0].labels["host"] != "web-1" {
				t.Fatalf("rule %d at 5m: %+v", r, as)
			}
			if as[0].Value == nil || *as[0].Value != 190 {
				t.Fatalf("rule %d: silent for %v s, want 190", r, as[0].Value)
			}
		}
		for _, r := range []int64{nothing, gone} {
			if as := f.alerts(r); len(as) != 1 || as[0].State != "firing" || as[0].Value != nil {
				t.Fatalf("rule %d (nothing to watch): %+v", r, as)
			}
		}
		// web-1 comes back: its alerts resolve; the others stay.
		f.samples(f.tenant, sw, f.t0.Add(5*time.Minute+30*time.Second), 10*time.Second, 1, 1, 1)
		f.minutes(1, nil)
		for _, r := range []int64{series, host, agents} {
			expect(t, "after web-1 is back", f.state(r), "resolved")
		}
		expect(t, "selector matching nothing", f.state(nothing), "firing")
	})
}

// A check rule fires after N consecutive down results and recovers with an up one; an availability
// rule fires below its percentage over its window.
func TestCheckRules(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		h := f.host(f.tenant, "router", map[string]string{"site": "paris"})
		var check int64
		f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.checks (tenant_id, host_id, name, kind, target)
		                                 VALUES ($1, $2, 'ping router', 'icmp', '192.0.2.1') RETURNING id`, f.tenant, h).Scan(&check))
		results := func(from time.Duration, statuses string) {
			for i, s := range strings.Split(statuses, "") {
				st := map[string]string{"u": "up", "d": "down"}[s]
				f.exec(`INSERT INTO ts.check_results (time, tenant_id, check_id, status) VALUES ($1, $2, $3, $4)`,
					f.t0.Add(from+time.Duration(i)*time.Minute), f.tenant, check, st)
			}
		}
		// A result a minute from t0−59m: up for 50 minutes, then u d d u d d d d (t0−9m … t0−2m), then up.
		results(-59*time.Minute, strings.Repeat("u", 50)+"uddudddd"+"u")
		f.clock.set(f.t0.Add(-3 * time.Minute))
		down := f.rule(f.tenant, spec("router down", "check", `{"check_ids": [`+itoa(int(check))+`], "down_count": 3}`))
		avail := f.rule(f.tenant, spec("router availability", "check", `{"host_labels": {"site": "paris"},
			"availability_below": 95, "window": "30m"}`))
		// At t0−3m (the 3rd down in a row, with the one at t0−4m and t0−5m): firing.
		f.tick(f.t0.Add(-3 * time.Minute))
		expect(t, "down rule after 3 downs", f.state(down), "firing")
		a := f.alerts(down)[0]
		expect(t, "down count", *a.Value, 3)
		expect(t, "check label", a.labels["check"]+" on "+a.labels["host"], "ping router on router")
		// 5 downs among the 30 results of (t0−33m, t0−3m]: 83.3 %.
		expect(t, "availability rule", f.state(avail), "firing")
		expect(t, "availability", *f.alerts(avail)[0].Value, 25.0*100/30)
		// The up result at t0−1m ends the run of downs.
		f.tick(f.t0.Add(-1 * time.Minute))
		expect(t, "down rule after an up", f.state(down), "resolved")
		expect(t, "availability still low", f.state(avail), "firing")
	})
}

// A log rule counts the lines of a window per host that match its severity, text and pattern.
func TestLogPatternRule(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		web := f.host(f.tenant, "web-1", nil)
		web2 := f.host(f.tenant, "web-2", nil)
		logLine := func(host int64, at time.Duration, severity, msg string) {
			f.exec(`INSERT INTO ts.logs (time, tenant_id, host_id, source, severity, message) VALUES ($1, $2, $3, 'nginx', $4, $5)`,
				f.t0.Add(at), f.tenant, host, severity, msg)
		}
		for i := range 4 {
			logLine(web, time.Duration(i)*10*time.Second, "error", "upstream 10.0.0.7:80 timed out (110)")
		}
		logLine(web, 50*time.Second, "warning", "upstream 10.0.0.7:80 timed out (110)") // below the floor
		logLine(web, 55*time.Second, "error", "upstream closed the connection")         // no pattern match
		logLine(web2, 20*time.Second, "critical", "upstream 10.0.0.9:80 TIMED OUT (110)")
		rule := f.rule(f.tenant, spec("upstream timeouts", "log", `{"severity": "error", "contains": "timed out",
			"pattern": "upstream [0-9.]+:[0-9]+ (?i)timed out.*", "window": "2m", "comparator": ">=", "threshold": 3}`))
		f.tick(f.t0.Add(time.Minute))
		as := f.alerts(rule)
		if len(as) != 1 || as[0].State != "firing" || as[0].labels["host"] != "web-1" || *as[0].Value != 4 {
			t.Fatalf("alerts %+v", as)
		}
		// Two minutes later the lines have left the window: a host without matching lines counts zero.
		f.tick(f.t0.Add(3 * time.Minute))
		expect(t, "after the window", f.state(rule), "resolved")
		expect(t, "value", *f.alerts(rule)[0].Value, 0)
	})
}
