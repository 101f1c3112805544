package replicas_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/replicas"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// A process counts from its Start to its Stop, with its roles; a process that died without leaving
// stops counting once its last beat is older than Alive, and its row goes once older than Dead.
func TestHeartbeatCountsAProcessFromStartToStop(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ctx := context.Background()
	q := d.System().Queries()
	live := func(role string) int64 {
		t.Helper()
		n, err := q.ReplicasCountLive(ctx, dbsqlc.ReplicasCountLiveParams{Role: role, AliveWithin: replicas.Alive})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := replicas.NewHeartbeat(d.System(), []string{"api", "ingest"}, log)
	b := replicas.NewHeartbeat(d.System(), []string{"poller"}, log)
	if a.ID() == b.ID() {
		t.Fatalf("two heartbeats of one process share the id %s", a.ID())
	}
	for _, h := range []*replicas.Heartbeat{a, b} {
		if err := h.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := [3]int64{live("ingest"), live("api"), live("poller")}; got != [3]int64{1, 1, 1} {
		t.Fatalf("live ingest, api, poller replicas: %v, want one each", got)
	}
	a.Stop()
	if n := live("ingest"); n != 0 {
		t.Fatalf("live ingest replicas after the only one stopped: %d", n)
	}

	// A killed process: its last beat ages (written as time passing would leave it).
	if _, err := d.Pool.Exec(ctx, `UPDATE infrawatch.replicas SET seen_at = now() - $1::interval WHERE id = $2`,
		replicas.Alive+1e9, b.ID()); err != nil {
		t.Fatal(err)
	}
	if n := live("poller"); n != 0 {
		t.Fatalf("a replica silent for longer than %s still counts: %d", replicas.Alive, n)
	}
	c := replicas.NewHeartbeat(d.System(), []string{"ingest"}, log)
	if _, err := d.Pool.Exec(ctx, `UPDATE infrawatch.replicas SET seen_at = now() - $1::interval WHERE id = $2`,
		replicas.Dead+1e9, b.ID()); err != nil {
		t.Fatal(err)
	}
	if err := c.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	var rows []string
	r, err := d.Pool.Query(ctx, `SELECT id FROM infrawatch.replicas ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id string
		_ = r.Scan(&id)
		rows = append(rows, id)
	}
	if len(rows) != 1 || rows[0] != c.ID() {
		t.Fatalf("rows after a beat: %v, want only %s (the dead one forgotten)", rows, c.ID())
	}
	b.Stop()
}
