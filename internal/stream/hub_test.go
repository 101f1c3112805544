package stream_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/events"
	"github.com/infrawatch/infrawatch/internal/service"
	"github.com/infrawatch/infrawatch/internal/stream"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// guard bounds every wait of these tests: it is a failure guard, never an expected duration.
const guard = 20 * time.Second

// startHub runs a hub on a database of its own and waits until it listens. The hub only carries
// notifications, which do not depend on the storage flavor: the postgres flavor is enough.
func startHub(t *testing.T, cfg stream.Config) (*stream.Hub, *pgxpool.Pool) {
	t.Helper()
	d := dbtest.New(t, db.FlavorPostgres)
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	hub := stream.New(cfg, d.Pool, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err := hub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Stop)
	waitCtx, stop := context.WithTimeout(context.Background(), guard)
	defer stop()
	if err := hub.WaitListening(waitCtx); err != nil {
		t.Fatalf("the hub does not listen: %v", err)
	}
	return hub, d.Pool
}

// The hub is a worker of the process: it listens between Start and Stop, and Stop ends every stream.
func TestHubListensBetweenStartAndStop(t *testing.T) {
	hub, pool := startHub(t, stream.DefaultConfig())
	var _ service.Service = hub
	tenant := uuid.New()
	sub := subscribe(t, hub, tenant, nil)
	publish(t, pool, result(tenant, 1))
	select {
	case ev := <-sub.Events():
		if ev.CheckID != 1 {
			t.Fatalf("event %+v, want check 1's", ev)
		}
	case <-time.After(guard):
		t.Fatal("no event while started")
	}
	hub.Stop()
	select {
	case <-sub.Done():
	default:
		t.Fatal("Stop returned with a stream still open")
	}
	if _, err := hub.Subscribe(tenant, nil); !errors.Is(err, stream.ErrClosed) {
		t.Errorf("Subscribe after Stop: %v, want ErrClosed", err)
	}
	hub.Stop() // a second Stop does nothing
}

// publish plays a producer: it publishes evs in a transaction of its own and commits.
func publish(t *testing.T, pool *pgxpool.Pool, evs ...events.Event) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return events.Publish(ctx, dbsqlc.New(tx), evs...) }); err != nil {
		t.Fatal(err)
	}
}

func result(tenant uuid.UUID, check int64) events.Event {
	return events.Event{Type: events.CheckResult, Tenant: tenant, CheckID: check, Status: "up", Time: time.Now()}
}

func subscribe(t *testing.T, hub *stream.Hub, tenant uuid.UUID, accept func(events.Event) bool) *stream.Subscription {
	t.Helper()
	sub, err := hub.Subscribe(tenant, accept)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	return sub
}

func recv(t *testing.T, sub *stream.Subscription) events.Event {
	t.Helper()
	select {
	case ev := <-sub.Events():
		return ev
	case <-sub.Done():
		t.Fatal("the subscription ended")
	case <-time.After(guard):
		t.Fatal("no event arrived")
	}
	return events.Event{}
}

func waitMissed(t *testing.T, sub *stream.Subscription) {
	t.Helper()
	select {
	case <-sub.Missed():
	case <-time.After(guard):
		t.Fatal("the subscriber was not told it missed events")
	}
}

// Each tenant's subscribers get that tenant's events, in the order they were committed, with their
// fields; another tenant's events never reach them. A sentinel published last proves the absence: the
// hub delivers in commit order, so whatever came before it has been delivered by then.
func TestHubRoutesByTenantInOrder(t *testing.T) {
	t.Parallel()
	hub, pool := startHub(t, stream.Config{})
	a, b := uuid.New(), uuid.New()
	subA := subscribe(t, hub, a, nil)
	subB := subscribe(t, hub, b, nil)
	latency := 12.5
	at := time.Now().Truncate(time.Millisecond).UTC()
	publish(t, pool,
		events.Event{Type: events.CheckStatus, Tenant: a, ID: 7, CheckID: 1, Status: "down", Reason: "refused", Time: at},
		events.Event{Type: events.CheckResult, Tenant: a, CheckID: 1, Status: "down", LatencyMS: &latency, Time: at})
	publish(t, pool, events.Event{Type: events.Samples, Tenant: a, SeriesIDs: []int64{3, 4}, Time: at})
	publish(t, pool, result(b, 99))

	first := recv(t, subA)
	if first.Type != events.CheckStatus || first.ID != 7 || first.CheckID != 1 || first.Status != "down" ||
		first.Reason != "refused" || !first.Time.Equal(at) || first.Tenant != a {
		t.Errorf("first event of A = %+v", first)
	}
	if second := recv(t, subA); second.Type != events.CheckResult || second.LatencyMS == nil || *second.LatencyMS != latency {
		t.Errorf("second event of A = %+v", second)
	}
	if third := recv(t, subA); third.Type != events.Samples || len(third.SeriesIDs) != 2 || third.SeriesIDs[1] != 4 {
		t.Errorf("third event of A = %+v", third)
	}
	if got := recv(t, subB); got.Tenant != b || got.CheckID != 99 {
		t.Fatalf("B's first event is not its own sentinel: %+v", got)
	}
	select {
	case ev := <-subA.Events():
		t.Errorf("A got B's event: %+v", ev)
	default:
	}
}

// A subscriber's filter picks its events; the rest never fill its buffer.
func TestHubFilter(t *testing.T) {
	t.Parallel()
	hub, pool := startHub(t, stream.Config{})
	tenant := uuid.New()
	sub := subscribe(t, hub, tenant, func(ev events.Event) bool { return ev.CheckID == 2 })
	publish(t, pool, result(tenant, 1), result(tenant, 2), result(tenant, 3), result(tenant, 2))
	for range 2 {
		if ev := recv(t, sub); ev.CheckID != 2 {
			t.Fatalf("got check %d, want only check 2", ev.CheckID)
		}
	}
}

// Events of a transaction that rolls back are never delivered, and neither are malformed notifications.
func TestHubIgnoresRolledBackAndMalformed(t *testing.T) {
	t.Parallel()
	hub, pool := startHub(t, stream.Config{})
	tenant := uuid.New()
	sub := subscribe(t, hub, tenant, nil)
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Publish(ctx, dbsqlc.New(tx), result(tenant, 1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{"not json", `{"type":"check.result"}`, `{"tenant_id":"` + tenant.String() + `"}`} {
		if _, err := pool.Exec(ctx, "SELECT pg_notify(infrawatch.event_channel($1), $2)", events.Channel, payload); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, pool, result(tenant, 2))
	if ev := recv(t, sub); ev.CheckID != 2 {
		t.Fatalf("first event delivered: %+v, want the committed one (check 2)", ev)
	}
}

// A subscriber that never reads does not hold up the others: it misses events, bounded by its buffer,
// and is told so, while a reading subscriber gets every event.
func TestHubSlowSubscriberDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	const buffer, rounds, perRound = 16, 10, 10
	hub, pool := startHub(t, stream.Config{Buffer: buffer})
	tenant := uuid.New()
	slow := subscribe(t, hub, tenant, nil)
	fast := subscribe(t, hub, tenant, nil)
	var check int64
	for range rounds {
		evs := make([]events.Event, perRound)
		for i := range evs {
			check++
			evs[i] = result(tenant, check)
		}
		publish(t, pool, evs...)
		for i := range evs {
			if ev := recv(t, fast); ev.CheckID != evs[i].CheckID {
				t.Fatalf("the reading subscriber got check %d, want %d", ev.CheckID, evs[i].CheckID)
			}
		}
	}
	waitMissed(t, slow)
	if n := len(slow.Events()); n != buffer {
		t.Errorf("the slow subscriber holds %d events, want its buffer (%d)", n, buffer)
	}
	if ev := recv(t, slow); ev.CheckID != 1 {
		t.Errorf("the slow subscriber's oldest event is check %d, want 1", ev.CheckID)
	}
}

// When the LISTEN connection is killed, the hub reconnects, tells subscribers they may have missed
// events, and delivers what is published afterwards.
func TestHubRecoversAfterItsConnectionIsKilled(t *testing.T) {
	t.Parallel()
	hub, pool := startHub(t, stream.Config{})
	tenant := uuid.New()
	sub := subscribe(t, hub, tenant, nil)
	ctx := context.Background()
	var killed int
	err := pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	                            WHERE application_name = $1 AND datname = current_database()`, stream.ApplicationName).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d hub connections (err %v), want 1", killed, err)
	}
	waitMissed(t, sub) // signalled once the hub listens again
	publish(t, pool, result(tenant, 5))
	if ev := recv(t, sub); ev.CheckID != 5 {
		t.Fatalf("after reconnecting: got %+v", ev)
	}
}

// Each tenant may hold MaxPerTenant subscriptions; closing one makes room. Close ends them all.
func TestHubLimitsAndClose(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, stream.Config{MaxPerTenant: 2})
	a, b := uuid.New(), uuid.New()
	first := subscribe(t, hub, a, nil)
	subscribe(t, hub, a, nil)
	if _, err := hub.Subscribe(a, nil); !errors.Is(err, stream.ErrTooManyStreams) {
		t.Fatalf("third subscription of A: %v, want ErrTooManyStreams", err)
	}
	other := subscribe(t, hub, b, nil)
	first.Close()
	first.Close()
	subscribe(t, hub, a, nil)

	hub.Close()
	select {
	case <-other.Done():
	case <-time.After(guard):
		t.Fatal("Close did not end the subscriptions")
	}
	if _, err := hub.Subscribe(b, nil); !errors.Is(err, stream.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
}
