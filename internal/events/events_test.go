package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/events"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// Whatever a producer puts in an event, its payload fits PostgreSQL's 8,000-byte NOTIFY limit: a long
// reason is cut on a character boundary (one that JSON escapes to six times its size included), and
// the transaction publishing it commits.
func TestPublishKeepsEveryPayloadUnderTheNotifyLimit(t *testing.T) {
	d := dbtest.New(t, dbtest.Flavors(t)[0])
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	channel, err := events.PrivateChannel(ctx, dbsqlc.New(listener))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	tenant := uuid.New()
	reasons := []string{
		"body does not contain " + strings.Repeat("é", 4500), // 9,000 bytes, two-byte characters
		strings.Repeat("\x01", 9000),                         // each escaped to \u0001
	}
	evs := []events.Event{}
	for i, r := range reasons {
		evs = append(evs, events.Event{Type: events.CheckResult, Tenant: tenant, CheckID: int64(i + 1), Status: "down",
			Reason: r, Time: time.Now()})
	}
	if err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error { return events.Publish(ctx, dbsqlc.New(tx), evs...) }); err != nil {
		t.Fatalf("publish: %v", err)
	}
	for range reasons {
		waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second) // a guard against hanging
		n, err := listener.WaitForNotification(waitCtx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var ev events.Event
		if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil {
			t.Fatalf("payload %s: %v", n.Payload, err)
		}
		want := reasons[ev.CheckID-1]
		if len(ev.Reason) > events.MaxReasonBytes || !utf8.ValidString(ev.Reason) || !strings.HasSuffix(ev.Reason, "…") ||
			!strings.HasPrefix(want, strings.TrimSuffix(ev.Reason, "…")) {
			t.Errorf("check %d: reason of %d bytes %q, want the start of the reason within %d bytes, marked cut with …",
				ev.CheckID, len(ev.Reason), ev.Reason, events.MaxReasonBytes)
		}
	}
}

func TestTruncateReason(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"connection refused", "connection refused"},
		{strings.Repeat("a", events.MaxReasonBytes), strings.Repeat("a", events.MaxReasonBytes)},
		{strings.Repeat("a", events.MaxReasonBytes+1), strings.Repeat("a", events.MaxReasonBytes-3) + "…"},
		// A cut never splits a character: 2-byte é, the cut falls after 254 of them (508 bytes) + "…".
		{strings.Repeat("é", 300), strings.Repeat("é", 254) + "…"},
	} {
		got := events.TruncateReason(tc.in)
		if got != tc.want {
			t.Errorf("TruncateReason(%d bytes) = %d bytes %q, want %d bytes", len(tc.in), len(got), got, len(tc.want))
		}
	}
}

// A tenant's transaction (an acknowledgement through the API) publishes as infrawatch_api, which may
// not read the channel's secret: it publishes through app.publish_events, and only events of its own
// tenant — never into another tenant's stream.
func TestTenantTransactionsPublishOnlyTheirTenantsEvents(t *testing.T) {
	d := dbtest.New(t, dbtest.Flavors(t)[0])
	alpha, bravo := dbtest.SeedTenant(t, d, "alpha"), dbtest.SeedTenant(t, d, "bravo")
	ctx := context.Background()
	publish := func(as uuid.UUID, of uuid.UUID) error {
		return db.NewTenantRunner(d.Pool).WithTenant(ctx, as, func(q *dbsqlc.Queries) error {
			return events.Publish(ctx, q, events.Event{Type: events.CheckStatus, Tenant: of, Time: time.Now()})
		})
	}
	if err := publish(alpha.ID, alpha.ID); err != nil {
		t.Errorf("alpha publishing its own event: %v", err)
	}
	if err := publish(alpha.ID, bravo.ID); !errors.Is(err, db.ErrForbidden) {
		t.Errorf("alpha publishing bravo's event: %v, want ErrForbidden", err)
	}
}
