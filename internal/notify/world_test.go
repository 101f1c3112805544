package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// world is a database with one tenant, and a sender on a fake clock that starts at the database's now,
// so that rows written with the database's default times and claims made on the clock agree.
type world struct {
	d      *dbtest.DB
	sys    *db.System
	tenant uuid.UUID
	clock  *fakeClock
	sender *Sender
	cfg    Config
}

func newWorld(t *testing.T, flavor db.Flavor, cfg Config) *world {
	t.Helper()
	d := dbtest.New(t, flavor)
	w := &world{d: d, sys: d.System()}
	ctx := context.Background()
	if err := d.Pool.QueryRow(ctx, `INSERT INTO app.tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id`).Scan(&w.tenant); err != nil {
		t.Fatal(err)
	}
	var now time.Time
	if err := d.Pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = 10 * time.Second
	}
	w.cfg = cfg
	w.sender, w.clock = testSender(t, cfg)
	w.clock.now = now
	return w
}

// newTenant adds another tenant.
func (w *world) newTenant(t *testing.T, slug string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := w.d.Pool.QueryRow(context.Background(), `INSERT INTO app.tenants (slug, name) VALUES ($1, $1) RETURNING id`,
		slug).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// channel stores a channel of kind with settings, its secrets sealed as the API seals them; grouping
// is off unless wait and interval say otherwise (-1 keeps the defaults).
func (w *world) channel(t *testing.T, kind string, settings any, groupWait, groupInterval int) int64 {
	t.Helper()
	return w.channelOf(t, w.tenant, kind, settings, groupWait, groupInterval)
}

func (w *world) channelOf(t *testing.T, tenant uuid.UUID, kind string, settings any, groupWait, groupInterval int) int64 {
	t.Helper()
	raw, _ := json.Marshal(settings)
	k, _ := Lookup(kind)
	public, secret, err := secrets.Split(raw, k.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	var sealed []byte
	if secret != nil {
		if sealed, err = testKeys(t).Seal(secret, secrets.For(SecretsColumn, tenant)); err != nil {
			t.Fatal(err)
		}
	}
	if groupWait < 0 {
		groupWait = 30
	}
	if groupInterval < 0 {
		groupInterval = 300
	}
	var id int64
	if err := w.d.Pool.QueryRow(context.Background(), `
		INSERT INTO app.channels (tenant_id, name, kind, settings, secrets, group_wait_seconds, group_interval_seconds)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, tenant, fmt.Sprintf("%s-%d", kind, time.Now().UnixNano()), kind,
		public, sealed, groupWait, groupInterval).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// payload is a firing alert of rule (0: none) with the given alert id.
func payload(rule, alert int64, state string) Payload {
	p := Payload{Rule: PayloadRule{ID: rule, Name: fmt.Sprintf("rule %d", rule), Kind: "threshold"},
		Tenant: PayloadTenant{Slug: "acme", Name: "Acme"},
		Alert: PayloadAlert{ID: alert, Fingerprint: fmt.Sprintf("fp-%d", alert), State: state, Severity: "warning",
			StartedAt: testStart, Summary: fmt.Sprintf("alert %d", alert)}}
	return p
}

// enqueue writes a notification as alerting does: in the outbox, with the default schedule.
func (w *world) enqueue(t *testing.T, channel int64, kind string, p Payload) int64 {
	t.Helper()
	return w.enqueueFor(t, w.tenant, channel, kind, p)
}

func (w *world) enqueueFor(t *testing.T, tenant uuid.UUID, channel int64, kind string, p Payload) int64 {
	t.Helper()
	raw, _ := json.Marshal(p)
	var alert *int64
	if p.Alert.ID > 0 {
		alert = &p.Alert.ID
	}
	var id int64
	var at time.Time
	if err := w.d.Pool.QueryRow(context.Background(), `
		INSERT INTO app.notifications (tenant_id, alert_id, channel_id, kind, payload) VALUES ($1, $2, $3, $4, $5)
		RETURNING id, created_at`, tenant, alert, channel, kind, raw).Scan(&id, &at); err != nil {
		t.Fatal(err)
	}
	// The row is stamped with the database's time: the clock catches up with it, as time does.
	w.clock.catchUp(at)
	return id
}

// notifier starts a notifier on the world's sender, with test signals; it stops with the test.
func (w *world) notifier(t *testing.T, owner string) *Notifier {
	t.Helper()
	cfg := w.cfg
	cfg.Owner = owner
	n := New(cfg, w.sys, w.sender, quiet, nil)
	n.testSignals.init()
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// recorded waits for the notifier to record an outcome (a minute at most: a hang guard).
func recorded(t *testing.T, n *Notifier) Recorded {
	t.Helper()
	select {
	case r := <-n.testSignals.recorded:
		return r
	case <-time.After(time.Minute):
		t.Fatal("the notifier recorded nothing within a minute")
		return Recorded{}
	}
}

// idle waits until the notifier has claimed at the clock's current time and has nothing under way.
func idle(t *testing.T, n *Notifier, clock *fakeClock) {
	t.Helper()
	want := clock.Now()
	deadline := time.After(time.Minute)
	for {
		select {
		case at := <-n.testSignals.idle:
			if !at.Before(want) {
				return
			}
		case <-deadline:
			t.Fatal("the notifier did not go idle within a minute")
		}
	}
}

// row is a notification as stored.
type row struct {
	State, LastError string
	Attempts         int
	NextAttemptAt    time.Time
	SentAt           *time.Time
}

func (w *world) row(t *testing.T, id int64) row {
	t.Helper()
	var r row
	if err := w.d.Pool.QueryRow(context.Background(), `
		SELECT state, last_error, attempts, next_attempt_at, sent_at FROM app.notifications WHERE id = $1`, id).
		Scan(&r.State, &r.LastError, &r.Attempts, &r.NextAttemptAt, &r.SentAt); err != nil {
		t.Fatal(err)
	}
	return r
}

// attempt is a recorded attempt.
type attempt struct {
	Attempt    int
	Outcome    string
	StatusCode *int
	Error      string
	MessageKey int64
}

func (w *world) attempts(t *testing.T, id int64) []attempt {
	t.Helper()
	rows, err := w.d.Pool.Query(context.Background(), `
		SELECT attempt, outcome, status_code, error, message_key FROM app.notification_attempts
		 WHERE notification_id = $1 ORDER BY attempt`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []attempt
	for rows.Next() {
		var a attempt
		if err := rows.Scan(&a.Attempt, &a.Outcome, &a.StatusCode, &a.Error, &a.MessageKey); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// saasSender is a sender in SaaS mode: the guard refuses loopback and private addresses.
func saasSender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	s, err := NewSender(cfg, &checks.Guard{}, testKeys(t), quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func isNotFound(err error) bool { return errors.Is(err, db.ErrNotFound) }
