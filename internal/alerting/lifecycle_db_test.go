package alerting

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// cpuFixture is a fixture with host web-1 whose cpu series follows v (minutes since t0), sampled every
// 10 s from t0−10m to t0+minutes, and a channel.
func cpuFixture(t *testing.T, flavor db.Flavor, minutes int, v func(m float64) float64) (*fixture, int64, int64) {
	f := newFixture(t, flavor)
	h := f.host(f.tenant, "web-1", map[string]string{"env": "prod"})
	s := f.series(f.tenant, h, "web-1", "cpu", nil)
	f.curve(s, -10*time.Minute, time.Duration(minutes+1)*time.Minute, v)
	return f, h, f.channel(f.tenant, "ops")
}

// cpuRule is "cpu > 90 over the last minute", to channel ch.
func cpuRule(name string, ch int64) RuleSpec {
	r := spec(name, "threshold", `{"metric": "cpu", "window": "30s", "agg": "max", "comparator": ">", "threshold": 90}`)
	r.Channels = []int64{ch}
	return r
}

func high(from, to float64) func(float64) float64 {
	return func(m float64) float64 {
		if m >= from && m < to {
			return 99
		}
		return 10
	}
}

// Silenced alerts change state and send nothing; they show silenced_by; a silence that ends lets the
// firing message go; a silence of other labels changes nothing; an expired one mutes nothing.
func TestSilences(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f, _, ch := cpuFixture(t, flavor, 12, high(0.5, 20))
		var silence, other, expired int64
		f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.silences (tenant_id, matchers, starts_at, ends_at)
			VALUES ($1, '[{"name": "host", "op": "=~", "value": "web-[0-9]"}, {"name": "team", "op": "=", "value": "web"}]', $2, $3)
			RETURNING id`, f.tenant, f.t0, f.t0.Add(4*time.Minute+30*time.Second)).Scan(&silence))
		f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.silences (tenant_id, matchers, starts_at, ends_at)
			VALUES ($1, '[{"name": "host", "op": "=", "value": "web-2"}]', $2, $3) RETURNING id`,
			f.tenant, f.t0, f.t0.Add(time.Hour)).Scan(&other))
		f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.silences (tenant_id, matchers, starts_at, ends_at)
			VALUES ($1, '[{"name": "host", "op": "=", "value": "web-1"}]', $2, $3) RETURNING id`,
			f.tenant, f.t0.Add(-time.Hour), f.t0).Scan(&expired))
		// A silence of the other tenant with the same labels mutes nothing here.
		f.exec(`INSERT INTO app.silences (tenant_id, matchers, starts_at, ends_at)
			VALUES ($1, '[{"name": "host", "op": "=", "value": "web-1"}]', $2, $3)`, f.other, f.t0, f.t0.Add(time.Hour))
		r := cpuRule("cpu", ch)
		r.Labels = map[string]string{"team": "web"}
		rule := f.rule(f.tenant, r)
		f.minutes(4, nil)
		a := f.alerts(rule)[0]
		expect(t, "state", a.State, "firing")
		expect(t, "silenced_by", a.SilencedBy, []int64{silence})
		expect(t, "notifications while silenced", len(f.notifications(a.ID)), 0)
		f.minutes(1, nil) // t0+5m: the silence ended at 4m30s
		a = f.alerts(rule)[0]
		expect(t, "silenced_by after the end", len(a.SilencedBy), 0)
		expectSlice(t, "notifications", f.notifications(a.ID), []string{"firing@" + itoa(int(ch))})
		// Expiring a silence through the API's statement ends it at once.
		r2 := cpuRule("cpu again", ch)
		r2.Labels = map[string]string{"team": "web"}
		var s2 int64
		f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.silences (tenant_id, matchers, starts_at, ends_at)
			VALUES ($1, '[{"name": "alertname", "op": "!=", "value": "x"}]', $2, $3) RETURNING id`,
			f.tenant, f.t0, f.t0.Add(time.Hour)).Scan(&s2))
		rule2 := f.rule(f.tenant, r2)
		f.minutes(1, nil)
		a2 := f.alerts(rule2)[0]
		expect(t, "second alert muted", len(f.notifications(a2.ID)), 0)
		f.must(f.tenants.WithTenant(f.ctx, f.tenant, func(q *dbsqlc.Queries) error {
			_, err := q.SilenceExpire(f.ctx, dbsqlc.SilenceExpireParams{ID: s2, Now: f.clock.Now()})
			return err
		}))
		f.minutes(1, nil)
		expect(t, "after expiry", len(f.notifications(a2.ID)), 1)
		_ = other
		_ = expired
	})
}

// An alert in a maintenance window (by host, by check, by labels, or a window of everything) sends
// nothing and shows maintenance_by; recurring windows' occurrences are stored and found by the
// covering query.
func TestMaintenanceWindowMutes(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f, host, ch := cpuFixture(t, flavor, 8, high(0.5, 20))
		mk := func(tenant uuid.UUID, w WindowSpec) int64 {
			var id int64
			f.must(f.tenants.WithTenant(f.ctx, tenant, func(q *dbsqlc.Queries) error {
				row, err := q.MaintenanceWindowCreate(f.ctx, dbsqlc.MaintenanceWindowCreateParams{Name: w.Name,
					HostIds: w.HostIDs, CheckIds: w.CheckIDs, Matchers: w.MatchersJSON(), MatchersSql: w.CompiledMatchers(),
					StartsAt: w.StartsAt, EndsAt: w.EndsAt, TimeZone: "UTC"})
				if err != nil {
					return err
				}
				id = row.ID
				_, err = Materialize(f.ctx, q, tenant, id, w, f.t0, f.t0.Add(30*day))
				return err
			}))
			return id
		}
		end := f.t0.Add(3 * time.Minute)
		byHost := mk(f.tenant, WindowSpec{Name: "patching", HostIDs: []int64{host}, StartsAt: f.t0, EndsAt: &end})
		byLabel := mk(f.tenant, WindowSpec{Name: "prod freeze", Matchers: []Matcher{{Name: "env", Op: "=", Value: "prod"}},
			StartsAt: f.t0, EndsAt: &end})
		mk(f.tenant, WindowSpec{Name: "other host", HostIDs: []int64{host + 1000}, StartsAt: f.t0, EndsAt: &end})
		mk(f.other, WindowSpec{Name: "the other tenant's", StartsAt: f.t0, EndsAt: &end}) // everything, of the other tenant
		r := cpuRule("cpu", ch)
		r.Labels = map[string]string{"env": "prod"}
		rule := f.rule(f.tenant, r)
		f.minutes(2, nil)
		a := f.alerts(rule)[0]
		expect(t, "state in maintenance", a.State, "firing")
		expect(t, "maintenance_by", a.MaintenanceBy, []int64{byHost, byLabel})
		expect(t, "notifications in maintenance", len(f.notifications(a.ID)), 0)
		f.minutes(2, nil) // t0+4m: the windows ended at 3m
		expectSlice(t, "after the window", f.notifications(a.ID), []string{"firing@" + itoa(int(ch))})

		// "Was X in maintenance at T" is one query, past occurrences included.
		var covering []dbsqlc.MaintenanceWindowsCoveringRow
		f.must(f.tenants.WithTenant(f.ctx, f.tenant, func(q *dbsqlc.Queries) (err error) {
			covering, err = q.MaintenanceWindowsCovering(f.ctx, dbsqlc.MaintenanceWindowsCoveringParams{At: f.t0.Add(time.Minute),
				HostID: &host, Labels: []byte(`{"env": "prod", "host": "web-1"}`)})
			return err
		}))
		if len(covering) != 2 || covering[0].ID != byHost || covering[1].ID != byLabel {
			t.Fatalf("covering at t0+1m: %+v", covering)
		}
	})
}

// A recurring window in a tenant's time zone keeps its local time across a change of daylight saving
// time, and the covering query answers by those occurrences.
func TestRecurringWindowAcrossDST(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		f.exec(`UPDATE app.tenants SET time_zone = 'Europe/Berlin' WHERE id = $1`, f.tenant)
		// Every night at 01:00 Berlin time for two hours; Berlin moves from CET (UTC+1) to CEST (UTC+2) at
		// 02:00 on 30 March 2025.
		w := WindowSpec{Name: "nightly backup", Cron: "0 1 * * *", Duration: 2 * time.Hour, TimeZone: "Europe/Berlin",
			StartsAt: time.Date(2025, 3, 28, 0, 0, 0, 0, time.UTC)}
		var id int64
		f.must(f.tenants.WithTenant(f.ctx, f.tenant, func(q *dbsqlc.Queries) error {
			cron := w.Cron
			dur := int32(w.Duration / time.Second)
			row, err := q.MaintenanceWindowCreate(f.ctx, dbsqlc.MaintenanceWindowCreateParams{Name: w.Name, Matchers: w.MatchersJSON(),
				MatchersSql: w.CompiledMatchers(), StartsAt: w.StartsAt, Cron: &cron, DurationSeconds: &dur, TimeZone: w.TimeZone})
			if err != nil {
				return err
			}
			id = row.ID
			_, err = Materialize(f.ctx, q, f.tenant, id, w, w.StartsAt, time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC))
			return err
		}))
		var starts []string
		rows, err := f.d.Pool.Query(f.ctx, `SELECT lower(during) FROM app.maintenance_occurrences WHERE window_id = $1 ORDER BY 1`, id)
		f.must(err)
		for rows.Next() {
			var s time.Time
			f.must(rows.Scan(&s))
			starts = append(starts, s.UTC().Format("01-02 15:04"))
		}
		f.must(rows.Err())
		expectSlice(t, "occurrences (UTC)", starts, []string{"03-28 00:00", "03-29 00:00", "03-30 00:00", "03-30 23:00", "03-31 23:00",
			"04-01 23:00"})
		covered := func(at string) bool {
			ts, _ := time.Parse(time.RFC3339, at)
			var n int
			f.must(f.tenants.WithTenant(f.ctx, f.tenant, func(q *dbsqlc.Queries) error {
				rows, err := q.MaintenanceWindowsCovering(f.ctx, dbsqlc.MaintenanceWindowsCoveringParams{At: ts, Labels: []byte(`{}`)})
				n = len(rows)
				return err
			}))
			return n > 0
		}
		for at, want := range map[string]bool{
			"2025-03-30T00:30:00Z": true,  // 01:30 CET
			"2025-03-30T01:30:00Z": true,  // 03:30 CEST: the night of the change, the window still lasts two hours
			"2025-03-30T02:30:00Z": false, // 04:30 CEST
			"2025-03-30T23:30:00Z": true,  // 01:30 CEST the next night
			"2025-03-31T00:59:00Z": true,  // 02:59 CEST
			"2025-03-31T01:00:00Z": false, // 03:00 CEST
		} {
			if got := covered(at); got != want {
				t.Errorf("in maintenance at %s: %v, want %v", at, got, want)
			}
		}
	})
}

// A flapping alert sends one flapping message and nothing else until it settles; then it says where
// it stands.
func TestFlappingLive(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		// High in the half minute before each odd minute up to 9, then for good from 11: with a window of
		// 30 s the alert fires at 1, 3, 5, 7, 9 and 11 and resolves at 2, 4, 6, 8 and 10. The fifth change (5)
		// makes it flap; the last (11) is ten minutes old at 21, when it settles.
		f, _, ch := cpuFixture(t, flavor, 30, func(m float64) float64 {
			if m >= 11 || (m > 0 && m < 10 && int(math.Ceil(m))%2 == 1) {
				return 99
			}
			return 10
		})
		r := cpuRule("cpu", ch)
		r.FlapChanges, r.FlapWindow = 4, 10*time.Minute
		rule := f.rule(f.tenant, r)
		f.minutes(30, nil)
		a := f.alerts(rule)[0]
		c := itoa(int(ch))
		expectSlice(t, "notifications", f.notifications(a.ID), []string{"firing@" + c, "resolved@" + c, "firing@" + c,
			"resolved@" + c, "flapping@" + c, "firing@" + c})
		h := f.history(a.ID)
		if !slices.Contains(h, "flapping") || !slices.Contains(h, "settled") {
			t.Fatalf("history %q", h)
		}
		expect(t, "state", a.State, "firing")
		expect(t, "flapping", a.Flapping, false)
	})
}

// While a check's parent is down, the check's alerts are suppressed, with the reason; once the parent
// is up, a condition that still holds fires.
func TestDependencySuppressesChildAlerts(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		var parent, child int64
		f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.checks (tenant_id, name, kind, target, status)
			VALUES ($1, 'core router', 'icmp', '192.0.2.1', 'down') RETURNING id`, f.tenant).Scan(&parent))
		f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.checks (tenant_id, name, kind, target, status, parent_id)
			VALUES ($1, 'web behind it', 'http', 'http://192.0.2.10/', 'down', $2) RETURNING id`, f.tenant, parent).Scan(&child))
		for i := range 5 {
			f.exec(`INSERT INTO ts.check_results (time, tenant_id, check_id, status) VALUES ($1, $2, $3, 'down'), ($1, $2, $4, 'down')`,
				f.t0.Add(time.Duration(i-4)*time.Minute), f.tenant, parent, child)
		}
		ch := f.channel(f.tenant, "ops")
		r := spec("web down", "check", `{"check_ids": [`+itoa(int(child))+`], "down_count": 2}`)
		r.Channels = []int64{ch}
		rule := f.rule(f.tenant, r)
		f.tick(f.t0)
		a := f.alerts(rule)[0]
		expect(t, "state", a.State, "suppressed")
		if !strings.Contains(a.SuppressedReason, `parent check "core router" is down`) {
			t.Fatalf("reason %q", a.SuppressedReason)
		}
		expect(t, "notifications while suppressed", len(f.notifications(a.ID)), 0)
		f.exec(`UPDATE app.checks SET status = 'up' WHERE id = $1`, parent)
		f.exec(`INSERT INTO ts.check_results (time, tenant_id, check_id, status) VALUES ($1, $2, $3, 'down')`,
			f.t0.Add(30*time.Second), f.tenant, child)
		f.tick(f.t0.Add(time.Minute))
		a = f.alerts(rule)[0]
		expect(t, "state once the parent is up", a.State, "firing")
		expectSlice(t, "history", f.history(a.ID), []string{"inactive>suppressed", "suppressed>firing"})
		expectSlice(t, "notifications", f.notifications(a.ID), []string{"firing@" + itoa(int(ch))})
	})
}

// A firing alert repeats every repeat interval and escalates once per step until acknowledged; the
// acknowledgement stops both, is recorded with who and when, and ends when the alert resolves.
func TestAckRepeatAndEscalation(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f, _, ch := cpuFixture(t, flavor, 20, high(0.5, 12))
		boss := f.channel(f.tenant, "on-call lead")
		r := cpuRule("cpu", ch)
		r.Repeat = 2 * time.Minute
		r.Escalation = []EscalationStep{{After: 3 * time.Minute, Channels: []int64{boss}}, {After: 20 * time.Minute, Channels: []int64{boss}}}
		rule := f.rule(f.tenant, r)
		f.minutes(5, nil) // fires at 1, repeats at 3 and 5, escalates at 4
		a := f.alerts(rule)[0]
		c, b := itoa(int(ch)), itoa(int(boss))
		expectSlice(t, "before the ack", f.notifications(a.ID), []string{"firing@" + c, "repeat@" + c, "escalation@" + b, "repeat@" + c})
		f.must(f.tenants.WithTenant(f.ctx, f.tenant, func(q *dbsqlc.Queries) error {
			return Ack(f.ctx, q, f.tenant, a.ID, "ana@example.com", "on it", f.clock.Now())
		}))
		f.minutes(5, nil) // t0+10m: no repeat, no escalation
		expect(t, "messages after the ack", len(f.notifications(a.ID)), 4)
		var ackedBy string
		f.must(f.d.Pool.QueryRow(f.ctx, `SELECT acked_by FROM app.alerts WHERE id = $1`, a.ID).Scan(&ackedBy))
		expect(t, "acked by", ackedBy, "ana@example.com")
		f.minutes(3, nil) // t0+13m: resolved at 12 (high until 12)
		a = f.alerts(rule)[0]
		expect(t, "state", a.State, "resolved")
		if a.AckedAt != nil {
			t.Fatal("the acknowledgement outlived the firing")
		}
		h := f.history(a.ID)
		expectSlice(t, "history", h, []string{"inactive>firing", "ack", "firing>resolved"})
		// Acknowledging what does not fire is refused, and what the tenant does not have is not found.
		f.must(f.tenants.WithTenant(f.ctx, f.tenant, func(q *dbsqlc.Queries) error {
			if err := Ack(f.ctx, q, f.tenant, a.ID, "x", "", f.clock.Now()); err != ErrNotFiring {
				t.Errorf("ack of a resolved alert: %v", err)
			}
			return nil
		}))
		err := f.tenants.WithTenant(f.ctx, f.other, func(q *dbsqlc.Queries) error {
			return Ack(f.ctx, q, f.other, a.ID, "x", "", f.clock.Now())
		})
		if !strings.Contains(strings.ToLower(errString(err)), "not found") {
			t.Errorf("ack of another tenant's alert: %v", err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A thing that breaks again reopens its alert (one row per fingerprint), whose history has both episodes.
func TestFingerprintReopens(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f, _, ch := cpuFixture(t, flavor, 10, func(m float64) float64 {
			if (m >= 0.5 && m < 3) || m >= 6 {
				return 99
			}
			return 10
		})
		rule := f.rule(f.tenant, cpuRule("cpu", ch))
		f.minutes(8, nil)
		as := f.alerts(rule)
		if len(as) != 1 {
			t.Fatalf("%d alerts, want one reopened", len(as))
		}
		expectSlice(t, "history", f.history(as[0].ID), []string{"inactive>firing", "firing>resolved", "resolved>firing"})
		c := itoa(int(ch))
		expectSlice(t, "notifications", f.notifications(as[0].ID), []string{"firing@" + c, "resolved@" + c, "firing@" + c})
	})
}

// A backtest over stored history answers the alerts live evaluation raised over the same data: same
// starts, ends and peaks.
func TestBacktestMatchesLiveEvaluation(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f, _, _ := cpuFixture(t, flavor, 40, func(m float64) float64 {
			switch {
			case m >= 3 && m < 9:
				return 91 + m
			case m >= 15 && m < 16:
				return 95 // shorter than for: pending, never firing
			case m >= 20 && m < 31:
				return 120 - m
			}
			return 10
		})
		r := spec("cpu", "threshold", `{"metric": "cpu", "window": "1m", "agg": "max", "comparator": ">", "threshold": 90,
			"recover_threshold": 80}`)
		r.For = 2 * time.Minute
		rule := f.rule(f.tenant, r)
		f.tick(f.t0)
		f.minutes(40, nil)
		a := f.alerts(rule)[0]
		rows, err := f.d.Pool.Query(f.ctx, `SELECT time, to_state FROM app.alert_events WHERE alert_id = $1 AND kind = 'state'
		                                      AND (to_state = 'firing' OR from_state = 'firing') ORDER BY id`, a.ID)
		f.must(err)
		var live []string
		for rows.Next() {
			var at time.Time
			var to string
			f.must(rows.Scan(&at, &to))
			live = append(live, to+"@"+strconv.Itoa(int(at.Sub(f.t0).Minutes())))
		}
		f.must(rows.Err())
		c, ps := r.Compile()
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		res, err := NewBacktester(f.d.System(), 10*time.Second).Backtest(f.ctx, f.tenant, c, f.t0, f.t0.Add(40*time.Minute))
		f.must(err)
		var back []string
		for _, w := range res.Alerts {
			back = append(back, "firing@"+strconv.Itoa(int(w.Start.Sub(f.t0).Minutes())))
			if w.End != nil {
				back = append(back, "resolved@"+strconv.Itoa(int(w.End.Sub(f.t0).Minutes())))
			}
		}
		expectSlice(t, "live and backtest", back, live)
		// Pending at 3, firing at 5 (for 2m), resolved at 10 when the window holds none of the high values;
		// pending at 20, firing at 22; still above the recovery threshold at 31 (89.x), resolved at 32.
		expectSlice(t, "the episodes", live, []string{"firing@5", "resolved@10", "firing@22", "resolved@32"})
		expect(t, "evaluations", res.Evaluations, 41)
		expect(t, "first peak", *res.Alerts[0].Peak, 91+8+5.0/6)      // the last sample before 9 is at 8m50s
		expect(t, "second peak", *res.Alerts[1].Peak, 120-(21+1.0/6)) // while firing, from 22: the window (21, 22]
		// The backtest stored nothing: the rule it ran is gone with its transaction.
		var n int
		f.must(f.d.Pool.QueryRow(f.ctx, `SELECT count(*) FROM app.alert_rules`).Scan(&n))
		expect(t, "rules after the backtest", n, 1)
	})
}

// Tenant B's rules find nothing of tenant A's, however they select: a rule matching A's metric names
// and hosts raises no alert, and a backtest of it finds none.
func TestRulesNeverCrossTenants(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f, _, _ := cpuFixture(t, flavor, 5, high(-100, 100))
		hostA := f.host(f.tenant, "db-1", nil)
		f.exec(`INSERT INTO ts.logs (time, tenant_id, host_id, severity, message) VALUES ($1, $2, $3, 'error', 'boom')`,
			f.t0, f.tenant, hostA)
		rules := []RuleSpec{
			spec("b cpu", "threshold", `{"metric": "cpu", "host": "web-1", "window": "1m", "agg": "max", "comparator": ">", "threshold": 1}`),
			spec("b cpu any", "threshold", `{"metric": "cpu", "window": "1m", "agg": "count", "comparator": ">", "threshold": 0}`),
			spec("b logs", "log", `{"window": "10m", "comparator": ">", "threshold": 0}`),
			spec("b agents", "absent", `{"agents": true, "silent_for": "10s"}`),
		}
		var ids []int64
		for _, r := range rules {
			ids = append(ids, f.rule(f.other, r))
		}
		aRule := f.rule(f.tenant, spec("a cpu", "threshold", `{"metric": "cpu", "window": "1m", "agg": "max", "comparator": ">", "threshold": 1}`))
		f.minutes(3, nil)
		for _, id := range ids {
			expect(t, "alerts of B's rule "+itoa(int(id)), len(f.alerts(id)), 0)
		}
		expect(t, "A's own rule", f.state(aRule), "firing")
		for _, r := range rules[:3] {
			c, _ := r.Compile()
			res, err := NewBacktester(f.d.System(), 10*time.Second).Backtest(f.ctx, f.other, c, f.t0, f.t0.Add(5*time.Minute))
			f.must(err)
			expect(t, "backtest of "+r.Name, len(res.Alerts), 0)
		}
	})
}
