package sla

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// span is [from, to).
type span struct{ from, to time.Time }

func (s span) has(t time.Time) bool { return !t.Before(s.from) && t.Before(s.to) }

// scenario is one check's history, written the way the poller writes it: a result every interval
// (and one at each change of status), a status change (app.check_events) where the status differs
// from the previous result's, no result in the gaps.
type scenario struct {
	name     string
	zone     string
	from, to time.Time
	created  time.Time
	interval time.Duration
	down     []span // the check fails in these
	gaps     []span // the poller wrote nothing in these
	maint    []span // maintenance occurrences of a window naming the check's host
	hours    *BusinessHours
	exclude  bool
	target   float64
}

type result struct {
	time   time.Time
	status string
}

func (sc scenario) results() []result {
	isDown := func(t time.Time) bool { return slices.ContainsFunc(sc.down, func(s span) bool { return s.has(t) }) }
	inGap := func(t time.Time) bool { return slices.ContainsFunc(sc.gaps, func(s span) bool { return s.has(t) }) }
	times := []time.Time{}
	for t := sc.created.Add(5 * time.Second); t.Before(sc.to.Add(10 * time.Minute)); t = t.Add(sc.interval) {
		times = append(times, t)
	}
	for _, d := range sc.down {
		times = append(times, d.from, d.to)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	times = slices.CompactFunc(times, time.Time.Equal)
	var out []result
	for _, t := range times {
		if inGap(t) || t.Before(sc.created) {
			continue
		}
		st := "up"
		if isDown(t) {
			st = "down"
		}
		out = append(out, result{t, st})
	}
	return out
}

// world is a database with tenant A (the scenario's check on host web-1) and tenant B (a check of its
// own with the same history), written as the owner like the poller and the alerter write.
type world struct {
	t       *testing.T
	ctx     context.Context
	d       *dbtest.DB
	a, b    uuid.UUID
	checkA  int64
	checkB  int64
	tenants *db.TenantRunner
}

func (w *world) exec(sql string, args ...any) {
	w.t.Helper()
	if _, err := w.d.Pool.Exec(w.ctx, sql, args...); err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
}

func newWorld(t *testing.T, flavor db.Flavor, sc scenario) *world {
	w := &world{t: t, ctx: context.Background(), d: dbtest.New(t, flavor)}
	w.tenants = db.NewTenantRunner(w.d.Pool)
	w.exec(`SELECT infrawatch.ensure_partitions('ts.check_results', $1, $2)`, sc.created.Add(-48*time.Hour), sc.to.Add(48*time.Hour))
	w.a, w.checkA = w.tenant("acme", sc)
	w.b, w.checkB = w.tenant("other", sc)
	return w
}

func (w *world) tenant(slug string, sc scenario) (uuid.UUID, int64) {
	var id uuid.UUID
	var host, check int64
	must(w.t, w.d.Pool.QueryRow(w.ctx, `INSERT INTO app.tenants (slug, name, time_zone) VALUES ($1, $1, $2) RETURNING id`,
		slug, sc.zone).Scan(&id))
	must(w.t, w.d.Pool.QueryRow(w.ctx, `INSERT INTO app.hosts (tenant_id, name, labels) VALUES ($1, 'web-1', '{"env": "prod"}') RETURNING id`,
		id).Scan(&host))
	must(w.t, w.d.Pool.QueryRow(w.ctx, `INSERT INTO app.checks (tenant_id, host_id, name, kind, target, interval_seconds, timeout_seconds, created_at)
		VALUES ($1, $2, 'https', 'http', 'https://127.0.0.1/', $3, 5, $4) RETURNING id`, id, host, int(sc.interval/time.Second), sc.created).Scan(&check))
	var times, evTimes []time.Time
	var statuses, evStatuses, reasons []string
	for _, r := range sc.results() {
		times, statuses = append(times, r.time), append(statuses, r.status)
		if len(evStatuses) == 0 || evStatuses[len(evStatuses)-1] != r.status {
			reason := ""
			if r.status == "down" {
				reason = "timeout at " + r.time.UTC().Format("15:04:05")
			}
			evTimes, evStatuses, reasons = append(evTimes, r.time), append(evStatuses, r.status), append(reasons, reason)
		}
	}
	w.exec(`INSERT INTO ts.check_results (time, tenant_id, check_id, status)
		SELECT t, $2, $3, s FROM unnest($1::timestamptz[], $4::text[]) AS x (t, s)`, times, id, check, statuses)
	w.exec(`INSERT INTO app.check_events (tenant_id, check_id, time, status, reason)
		SELECT $2, $3, t, s, r FROM unnest($1::timestamptz[], $4::text[], $5::text[]) AS x (t, s, r)`,
		evTimes, id, check, evStatuses, reasons)
	for i, m := range sc.maint {
		var win int64
		must(w.t, w.d.Pool.QueryRow(w.ctx, `INSERT INTO app.maintenance_windows (tenant_id, name, host_ids, starts_at, ends_at)
			VALUES ($1, $2, ARRAY[$3::bigint], $4, $5) RETURNING id`, id, fmt.Sprint("w", i), host, m.from, m.to).Scan(&win))
		w.exec(`INSERT INTO app.maintenance_occurrences (tenant_id, window_id, during) VALUES ($1, $2, tstzrange($3, $4))`,
			id, win, m.from, m.to)
	}
	// A window of another host of the tenant covers nothing of the check.
	var other, win int64
	must(w.t, w.d.Pool.QueryRow(w.ctx, `INSERT INTO app.hosts (tenant_id, name) VALUES ($1, 'db-1') RETURNING id`, id).Scan(&other))
	must(w.t, w.d.Pool.QueryRow(w.ctx, `INSERT INTO app.maintenance_windows (tenant_id, name, host_ids, starts_at, ends_at)
		VALUES ($1, 'db', ARRAY[$2::bigint], $3, $4) RETURNING id`, id, other, sc.from, sc.to).Scan(&win))
	w.exec(`INSERT INTO app.maintenance_occurrences (tenant_id, window_id, during) VALUES ($1, $2, tstzrange($3, $4))`, id, win, sc.from, sc.to)
	return id, check
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// compute is the package's answer as tenant.
func (w *world) compute(tenant uuid.UUID, sc scenario, scope Scope) Numbers {
	w.t.Helper()
	loc, _ := time.LoadLocation(sc.zone)
	var n Numbers
	must(w.t, w.tenants.WithTenant(w.ctx, tenant, func(q *dbsqlc.Queries) error {
		var err error
		n, err = Compute(w.ctx, q, scope, Options{From: sc.from, To: sc.to, Location: loc, BusinessHours: sc.hours,
			ExcludeMaintenance: sc.exclude, Target: sc.target}, time.Now())
		return err
	}))
	return n
}

// expected computes the numbers second by second from the raw results and status changes, without
// SQL: each second is unmonitored, outside the hours, in maintenance, up or down (the status of the
// last result, while it vouches: until the next result, for at most twice the interval) or unknown.
func expected(sc scenario) (days map[string]*Seconds, total Seconds, incidents []Incident) {
	loc, _ := time.LoadLocation(sc.zone)
	rs := sc.results()
	grace := 2 * sc.interval
	days = map[string]*Seconds{}
	class := map[int64]string{} // unix second → class, for incidents
	i := -1
	for s := sc.from; s.Before(sc.to); s = s.Add(time.Second) {
		for i+1 < len(rs) && !rs[i+1].time.After(s) {
			i++
		}
		local := s.In(loc)
		day := local.Format("2006-01-02")
		if days[day] == nil {
			days[day] = &Seconds{}
		}
		d := days[day]
		var c string
		switch {
		case s.Before(sc.created):
			c, d.Unmonitored = "unmonitored", d.Unmonitored+1
		case sc.hours != nil && !inHours(*sc.hours, local):
			c, d.OutsideHours = "outside", d.OutsideHours+1
		case sc.exclude && slices.ContainsFunc(sc.maint, func(m span) bool { return m.has(s) }):
			c, d.Maintenance = "maintenance", d.Maintenance+1
		case i >= 0 && s.Before(rs[i].time.Add(grace)) && (i+1 == len(rs) || s.Before(rs[i+1].time)):
			if rs[i].status == "down" {
				c, d.Down = "down", d.Down+1
			} else {
				c, d.Up = "up", d.Up+1
			}
		default:
			c, d.Unknown = "unknown", d.Unknown+1
		}
		class[s.Unix()] = c
	}
	for _, d := range days {
		total.add(*d)
	}
	// Incidents: from each change to down to the next change, the seconds of it that counted as down.
	var changes []result
	for _, r := range rs {
		if len(changes) == 0 || changes[len(changes)-1].status != r.status {
			changes = append(changes, r)
		}
	}
	for k, ch := range changes {
		if ch.status != "down" || !ch.time.Before(sc.to) {
			continue
		}
		inc := Incident{Start: ch.time.UTC(), Reason: "timeout at " + ch.time.UTC().Format("15:04:05")}
		end := sc.to
		if k+1 < len(changes) {
			e := changes[k+1].time.UTC()
			dur := e.Sub(inc.Start).Seconds()
			inc.End, inc.Duration = &e, &dur
			if e.Before(end) {
				end = e
			}
		}
		for s := ch.time; s.Before(end); s = s.Add(time.Second) {
			if class[s.Unix()] == "down" {
				inc.Counted++
			}
		}
		if inc.Counted > 0 {
			incidents = append(incidents, inc)
		}
	}
	return days, total, incidents
}

func inHours(b BusinessHours, local time.Time) bool {
	wd := int(local.Weekday())
	if wd == 0 {
		wd = 7
	}
	m := local.Hour()*60 + local.Minute()
	return slices.Contains(b.Days, wd) && m >= minutes(b.Start) && m < minutes(b.End)
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func local(zone, s string) time.Time {
	loc, _ := time.LoadLocation(zone)
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
	if err != nil {
		panic(err)
	}
	return t
}

// scenarios cover a month end, the end of daylight saving time in Europe/Berlin (2026-10-25, 25-hour
// day) and its start in America/Sao_Paulo's history (2018-11-04, clocks from 00:00 to 01:00: a
// 23-hour day beginning at 01:00), business hours, maintenance excluded and not, poller gaps and a
// check created mid-period.
func scenarios() []scenario {
	berlin := "Europe/Berlin"
	sp := "America/Sao_Paulo"
	return []scenario{{
		name: "berlin month end and DST", zone: berlin, interval: time.Minute, exclude: true, target: 99.5,
		from:    local(berlin, "2026-10-20 00:00:00"),
		to:      local(berlin, "2026-11-04 00:00:00"),
		created: local(berlin, "2026-10-22 13:17:23"), // mid-period
		down: []span{
			{utc("2026-10-23T10:00:05Z"), utc("2026-10-23T10:07:40Z")}, // 7 min 35 s
			{utc("2026-10-25T00:30:10Z"), utc("2026-10-25T01:40:50Z")}, // across 02:00→02:00 CEST→CET
			{utc("2026-10-31T22:40:00Z"), utc("2026-10-31T23:20:30Z")}, // across local midnight into November
			{utc("2026-11-01T08:00:00Z"), utc("2026-11-01T09:00:00Z")}, // half of it in maintenance
			{utc("2026-11-02T03:00:00Z"), utc("2026-11-02T03:30:00Z")}, // partly a gap
		},
		gaps: []span{
			{utc("2026-10-28T03:00:00Z"), utc("2026-10-28T05:30:00Z")},
			{utc("2026-11-02T03:10:00Z"), utc("2026-11-02T03:20:00Z")},
		},
		maint: []span{
			{utc("2026-10-31T22:00:00Z"), utc("2026-10-31T22:50:00Z")},
			{utc("2026-11-01T08:30:00Z"), utc("2026-11-01T10:00:00Z")},
		},
	}, {
		name: "sao paulo DST and business hours", zone: sp, interval: 30 * time.Second, exclude: false, target: 99.9,
		hours:   &BusinessHours{Days: []int{1, 2, 3, 4, 5}, Start: "08:00", End: "18:00"},
		from:    local(sp, "2018-10-29 00:00:00"),
		to:      local(sp, "2018-11-09 12:00:00"),
		created: local(sp, "2018-10-28 10:00:00"),
		down: []span{
			{local(sp, "2018-10-29 17:30:00"), local(sp, "2018-10-29 18:45:00")}, // into the evening
			{local(sp, "2018-11-03 23:30:00"), local(sp, "2018-11-05 08:30:17")}, // across the skipped hour, into Monday
			{local(sp, "2018-11-07 12:00:05"), local(sp, "2018-11-07 12:07:40")}, // in maintenance, not excluded
			{local(sp, "2018-11-08 07:59:00"), local(sp, "2018-11-08 08:00:40")}, // at the opening
			{local(sp, "2018-11-09 11:50:00"), local(sp, "2018-11-09 12:30:00")}, // still down at the end
		},
		gaps:  []span{{local(sp, "2018-11-06 09:00:00"), local(sp, "2018-11-06 11:00:00")}},
		maint: []span{{local(sp, "2018-11-07 11:00:00"), local(sp, "2018-11-07 13:00:00")}},
	}}
}

// TestNumbersEqualAnIndependentComputation: every part of every day, the incidents (start, end,
// reason, counted downtime), MTTR, MTBF and the error budget equal a second-by-second computation in
// Go from the raw results and status changes — with gaps from the raw results, with part of them
// settled by the scheduler, and with all of them settled. Tenant B sees none of A's check.
func TestNumbersEqualAnIndependentComputation(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		for _, sc := range scenarios() {
			t.Run(sc.name, func(t *testing.T) {
				w := newWorld(t, flavor, sc)
				days, total, incidents := expected(sc)
				// The days across a change of daylight saving time are 25 and 23 hours long.
				for day, hours := range map[string]float64{"2026-10-25": 25, "2018-11-04": 23, "2026-10-26": 24} {
					if d := days[day]; d != nil {
						if sum := d.Up + d.Down + d.Unknown + d.Maintenance + d.OutsideHours + d.Unmonitored; sum != hours*3600 {
							t.Fatalf("day %s has %v s, want %v h", day, sum, hours)
						}
					}
				}
				t.Logf("%s: %+v, %d incidents", sc.name, total, len(incidents))
				scope := Scope{CheckIDs: []int64{w.checkA}}
				check := func(stage string) {
					n := w.compute(w.a, sc, scope)
					compareNumbers(t, stage, sc, n, days, total, incidents)
				}
				check("gaps from raw results")
				mid := sc.from.Add(sc.to.Sub(sc.from) / 2).Add(17 * time.Minute)
				settle(t, w, mid)
				check("gaps settled to the middle")
				settle(t, w, sc.to.Add(time.Hour))
				check("gaps settled")
				// Scopes by host and by labels name the same check.
				for _, s := range []Scope{{HostIDs: []int64{w.hostOf(w.checkA)}}, {HostLabels: map[string]string{"env": "prod"}}} {
					n := w.compute(w.a, sc, s)
					if len(n.Checks) != 1 || n.Checks[0].ID != w.checkA {
						t.Fatalf("scope %+v: checks %+v, want only %d", s, n.Checks, w.checkA)
					}
				}
				// Isolation: B asking for A's check by id gets nothing of it.
				n := w.compute(w.b, sc, scope)
				if len(n.Checks) != 0 || len(n.Incidents) != 0 || n.Seconds != (Seconds{}) {
					t.Fatalf("tenant B reads A's check: %+v", n)
				}
			})
		}
	})
}

func (w *world) hostOf(check int64) int64 {
	var h int64
	must(w.t, w.d.Pool.QueryRow(w.ctx, `SELECT host_id FROM app.checks WHERE id = $1`, check).Scan(&h))
	return h
}

func settle(t *testing.T, w *world, upTo time.Time) {
	t.Helper()
	for range 1000 {
		_, ran, err := SettleGapsOnce(w.ctx, w.d.System(), upTo, 6*time.Hour)
		must(t, err)
		if !ran {
			return
		}
	}
	t.Fatal("settling did not catch up")
}

func compareNumbers(t *testing.T, stage string, sc scenario, n Numbers, days map[string]*Seconds, total Seconds, incidents []Incident) {
	t.Helper()
	if len(n.Checks) != 1 {
		t.Fatalf("%s: %d checks, want 1", stage, len(n.Checks))
	}
	if len(n.Days) != len(days) {
		t.Fatalf("%s: %d days, want %d", stage, len(n.Days), len(days))
	}
	for _, d := range n.Days {
		want := days[d.Day]
		if want == nil || d.Seconds != *want {
			t.Errorf("%s: day %s: got %+v, want %+v", stage, d.Day, d.Seconds, want)
		}
	}
	if n.Seconds != total {
		t.Errorf("%s: total %+v, want %+v", stage, n.Seconds, total)
	}
	if len(n.Incidents) != len(incidents) {
		t.Fatalf("%s: incidents %+v, want %+v", stage, n.Incidents, incidents)
	}
	var down float64
	for i, got := range n.Incidents {
		want := incidents[i]
		down += want.Counted
		if !got.Start.Equal(want.Start) || (got.End == nil) != (want.End == nil) || (got.End != nil && !got.End.Equal(*want.End)) ||
			got.Counted != want.Counted || got.Reason != want.Reason || !eqp(got.Duration, want.Duration) {
			t.Errorf("%s: incident %d: got %+v, want %+v", stage, i, got, want)
		}
	}
	wantAvail := 100 * total.Up / (total.Up + total.Down)
	if n.Availability == nil || !near(*n.Availability, wantAvail) {
		t.Errorf("%s: availability %v, want %v", stage, n.Availability, wantAvail)
	}
	k := float64(len(incidents))
	if !eqp(n.MTTR, ptr(down/k)) || !eqp(n.MTBF, ptr(total.Up/k)) {
		t.Errorf("%s: MTTR %v MTBF %v, want %v %v", stage, n.MTTR, n.MTBF, down/k, total.Up/k)
	}
	allowed := (1 - sc.target/100) * (total.Up + total.Down)
	b := n.Budget
	if b == nil || !near(b.Allowed, allowed) || b.Spent != total.Down || !near(b.Left, allowed-total.Down) ||
		!near(b.BurnRate, total.Down/allowed) {
		t.Errorf("%s: budget %+v, want allowed %v spent %v", stage, b, allowed, total.Down)
	}
}

func ptr(f float64) *float64 { return &f }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func eqp(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || near(*a, *b)) }

// The example: a check down from 10:00:05 to 10:07:40 is 7 min 35 s down.
func TestDowntimeIsFromTransitionsNotSamples(t *testing.T) {
	sc := scenarios()[0]
	_, _, incidents := expected(sc)
	if incidents[0].Counted != 455 || *incidents[0].Duration != 455 {
		t.Fatalf("first incident %+v, want 455 s", incidents[0])
	}
}
