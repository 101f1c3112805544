package bi_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/events"
)

// LISTEN and NOTIFY take no privilege, so the events channel's name is private to the database: a BI
// login can neither hear another tenant's live events on the channel's public name nor put forged ones
// on the channel the server listens to, and cannot ask for the private name. Notifications arrive in
// the order their transactions commit, so a control notification sent after the one under test shows,
// by coming first, that the one under test never came.
func TestLoginCannotHearOrForgeEvents(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, db.FlavorPostgres)
	login := connect(t, w.issue(t, w.alpha))
	if _, err := login.Exec(ctx, "SELECT infrawatch.event_channel('infrawatch_events')"); sqlState(err) != "42501" {
		t.Errorf("the login asking for the private channel: %v, want permission denied", err)
	}

	// Hearing: the login listens on the public name; bravo's event is published, then the control.
	if _, err := login.Exec(ctx, "LISTEN "+events.Channel+"; LISTEN bi_test_control"); err != nil {
		t.Fatal(err)
	}
	ev := events.Event{Type: events.CheckResult, Tenant: w.bravo.id, CheckID: w.bravo.checkID, Status: "down",
		Reason: "bravo's secret reason", Time: time.Now()}
	if err := pgx.BeginFunc(ctx, w.d.Pool, func(tx pgx.Tx) error { return events.Publish(ctx, dbsqlc.New(tx), ev) }); err != nil {
		t.Fatal(err)
	}
	if _, err := w.d.Pool.Exec(ctx, "NOTIFY bi_test_control"); err != nil {
		t.Fatal(err)
	}
	if n := firstNotification(t, login); n.Channel != "bi_test_control" {
		t.Errorf("the login heard %q on %s", n.Payload, n.Channel)
	}

	// Forging: the server's listener hears the login's notification neither on the public name nor on
	// the private one, which the login cannot name.
	server, err := pgx.Connect(ctx, w.d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close(ctx)
	private, err := events.PrivateChannel(ctx, dbsqlc.New(server))
	if err != nil {
		t.Fatal(err)
	}
	if private == events.Channel || len(private) < len(events.Channel)+33 {
		t.Fatalf("private channel %q: want the public name and a secret", private)
	}
	if _, err := server.Exec(ctx, "LISTEN "+pgx.Identifier{private}.Sanitize()+"; LISTEN bi_test_control"); err != nil {
		t.Fatal(err)
	}
	forged := `{"type":"check.status","tenant_id":"` + w.bravo.id.String() + `","check_id":1,"status":"down","reason":"forged"}`
	if _, err := login.Exec(ctx, "SELECT pg_notify($1, $2)", events.Channel, forged); err != nil {
		t.Fatal(err)
	}
	if _, err := w.d.Pool.Exec(ctx, "NOTIFY bi_test_control"); err != nil {
		t.Fatal(err)
	}
	if n := firstNotification(t, server); n.Channel != "bi_test_control" {
		t.Errorf("the server heard %q on %s from the login", n.Payload, n.Channel)
	}
}

func firstNotification(t *testing.T, conn *pgx.Conn) *pgconn.Notification {
	t.Helper()
	guard, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang guard only
	defer cancel()
	n, err := conn.WaitForNotification(guard)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return n
}
