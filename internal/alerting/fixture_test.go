package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// fakeClock is a clock the test moves; After fires when the test moves it past the deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) DatabaseNow() *time.Time {
	n := c.Now()
	return &n
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	return ch
}

// set moves the clock to t and wakes the waits that are over.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// fixture is a database with one tenant (and a second for isolation), an alerter on a fake clock
// stepped by the test, and helpers that store data the way ingest and the poller do.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	d       *dbtest.DB
	tenant  uuid.UUID
	other   uuid.UUID
	clock   *fakeClock
	engine  *Engine
	tenants *db.TenantRunner
	t0      time.Time
}

// quiet is the log of tests: errors only, on the test's output.
func quiet(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = testWriter{}

func newFixture(t *testing.T, flavor db.Flavor) *fixture {
	t.Helper()
	d := dbtest.New(t, flavor)
	f := &fixture{t: t, ctx: context.Background(), d: d, tenants: db.NewTenantRunner(d.Pool),
		t0: time.Now().Add(-3 * time.Hour).Truncate(time.Minute)}
	f.clock = &fakeClock{now: f.t0}
	f.tenant = f.newTenant("acme")
	f.other = f.newTenant("other")
	f.engine = f.newEngine("alerter-a")
	return f
}

func (f *fixture) newEngine(owner string) *Engine {
	e := New(Config{Owner: owner, Batch: 500}, f.d.System(), quiet(f.t), nil)
	e.clock = f.clock
	return e
}

func (f *fixture) newTenant(slug string) uuid.UUID {
	var id uuid.UUID
	f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.tenants (slug, name) VALUES ($1, $1) RETURNING id`, slug).Scan(&id))
	return id
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.d.Pool.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) host(tenant uuid.UUID, name string, labels map[string]string) int64 {
	f.t.Helper()
	if labels == nil {
		labels = map[string]string{}
	}
	var id int64
	f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.hosts (tenant_id, name, labels) VALUES ($1, $2, $3) RETURNING id`,
		tenant, name, mustJSON(labels)).Scan(&id))
	return id
}

// series makes a series of host with the host label, as ingest does.
func (f *fixture) series(tenant uuid.UUID, host int64, hostName, name string, labels map[string]string) int64 {
	f.t.Helper()
	l := map[string]string{"host": hostName}
	for k, v := range labels {
		l[k] = v
	}
	var id int64
	f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.series (tenant_id, host_id, name, labels) VALUES ($1, $2, $3, $4) RETURNING id`,
		tenant, host, name, mustJSON(l)).Scan(&id))
	return id
}

// samples stores values of a series every step from from.
func (f *fixture) samples(tenant uuid.UUID, series int64, from time.Time, step time.Duration, values ...float64) {
	f.t.Helper()
	times := make([]time.Time, len(values))
	for i := range values {
		times[i] = from.Add(time.Duration(i) * step)
	}
	f.exec(`INSERT INTO ts.samples (time, tenant_id, series_id, value)
	        SELECT unnest($1::timestamptz[]), $2, $3, unnest($4::float8[])`, times, tenant, series, values)
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func (f *fixture) channel(tenant uuid.UUID, name string) int64 {
	f.t.Helper()
	var id int64
	f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.channels (tenant_id, name, kind) VALUES ($1, $2, 'webhook') RETURNING id`,
		tenant, name).Scan(&id))
	return id
}

// rule creates a rule of tenant as the API does, due at the clock's time.
func (f *fixture) rule(tenant uuid.UUID, r RuleSpec) int64 {
	f.t.Helper()
	c, ps := r.Compile()
	if len(ps) > 0 {
		f.t.Fatalf("rule %q: %v", r.Name, ps)
	}
	var id int64
	f.must(f.tenants.WithTenant(f.ctx, tenant, func(q *dbsqlc.Queries) error {
		row, err := q.AlertRuleCreate(f.ctx, createParams(c))
		id = row.ID
		return err
	}))
	f.exec(`UPDATE app.alert_rules SET next_eval_at = $2 WHERE id = $1`, id, f.clock.Now())
	return id
}

func createParams(c CompiledRule) dbsqlc.AlertRuleCreateParams {
	return dbsqlc.AlertRuleCreateParams{Name: c.Name, Kind: c.Kind, Severity: c.Severity, Labels: mustJSON(c.Labels),
		Summary: c.Summary, Description: c.Description, ForSeconds: seconds(c.For), IntervalSeconds: seconds(c.Interval),
		RepeatSeconds: seconds(c.Repeat), FlapChanges: c.FlapChanges, FlapWindowSeconds: seconds(c.FlapWindow),
		Enabled: c.Enabled, Channels: c.Channels, Escalation: EscalationJSON(c.Escalation), Settings: c.Compiled.Settings,
		Eval: c.Eval}
}

// spec is a rule of kind with settings, every minute, the other fields at their defaults.
func spec(name, kind string, settings string) RuleSpec {
	r := DefaultRule()
	r.Name, r.Kind, r.Settings = name, kind, json.RawMessage(settings)
	return r
}

// tick moves the clock to at and runs the alerter until nothing is due.
func (f *fixture) tick(at time.Time) {
	f.t.Helper()
	f.clock.set(at)
	for {
		n, err := f.engine.RunOnce(f.ctx, &at)
		if err != nil {
			f.t.Fatalf("alerter at %s: %v", at.Sub(f.t0), err)
		}
		if n == 0 {
			return
		}
	}
}

// minutes ticks every minute from the clock's time to it plus n minutes, running check after each.
func (f *fixture) minutes(n int, check func(i int)) {
	f.t.Helper()
	start := f.clock.Now()
	for i := 1; i <= n; i++ {
		f.tick(start.Add(time.Duration(i) * time.Minute))
		if check != nil {
			check(i)
		}
	}
}

type alertView struct {
	dbsqlc.AppAlert
	labels map[string]string
}

func (f *fixture) alerts(rule int64) []alertView {
	f.t.Helper()
	rows, err := f.d.Pool.Query(f.ctx, `SELECT id, state, fingerprint, labels, value, flapping, acked_at, silenced_by, maintenance_by,
	                                          suppressed_reason, host_id, check_id, series_id
	                                     FROM app.alerts WHERE rule_id = $1 ORDER BY id`, rule)
	f.must(err)
	defer rows.Close()
	var out []alertView
	for rows.Next() {
		var a alertView
		var labels []byte
		f.must(rows.Scan(&a.ID, &a.State, &a.Fingerprint, &labels, &a.Value, &a.Flapping, &a.AckedAt, &a.SilencedBy,
			&a.MaintenanceBy, &a.SuppressedReason, &a.HostID, &a.CheckID, &a.SeriesID))
		f.must(json.Unmarshal(labels, &a.labels))
		out = append(out, a)
	}
	f.must(rows.Err())
	return out
}

// state is the state of the rule's only alert, or "none".
func (f *fixture) state(rule int64) string {
	f.t.Helper()
	as := f.alerts(rule)
	switch len(as) {
	case 0:
		return "none"
	case 1:
		return as[0].State
	}
	f.t.Fatalf("rule %d has %d alerts, want at most one", rule, len(as))
	return ""
}

// history is an alert's state changes, "from>to" each.
func (f *fixture) history(alert int64) []string {
	f.t.Helper()
	rows, err := f.d.Pool.Query(f.ctx, `SELECT kind, coalesce(from_state, ''), coalesce(to_state, '') FROM app.alert_events
	                                     WHERE alert_id = $1 ORDER BY id`, alert)
	f.must(err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, from, to string
		f.must(rows.Scan(&kind, &from, &to))
		if kind == "state" {
			out = append(out, from+">"+to)
		} else {
			out = append(out, kind)
		}
	}
	return out
}

// notifications are an alert's outbox rows, "kind@channel" each, in order.
func (f *fixture) notifications(alert int64) []string {
	f.t.Helper()
	rows, err := f.d.Pool.Query(f.ctx, `SELECT kind, channel_id FROM app.notifications WHERE alert_id = $1 ORDER BY id`, alert)
	f.must(err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind string
		var ch int64
		f.must(rows.Scan(&kind, &ch))
		out = append(out, fmt.Sprintf("%s@%d", kind, ch))
	}
	return out
}

// payload is the payload of an alert's n-th outbox row.
func (f *fixture) payload(alert int64, n int) Payload {
	f.t.Helper()
	var raw []byte
	f.must(f.d.Pool.QueryRow(f.ctx, `SELECT payload FROM app.notifications WHERE alert_id = $1 ORDER BY id OFFSET $2 LIMIT 1`,
		alert, n).Scan(&raw))
	var p Payload
	f.must(json.Unmarshal(raw, &p))
	return p
}

func expect(t *testing.T, what string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func expectSlice(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
