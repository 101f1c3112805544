package maintenance_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/maintenance"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestPassCreatesPartitionsAheadAndHonoursTheLock(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		svc := maintenance.New(maintenance.Config{Ahead: 20 * 24 * time.Hour}, d.System(), slog.New(slog.NewTextHandler(io.Discard, nil)))

		partitionsAt := func(at time.Time) int {
			var n int
			err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			    WHERE i.inhparent = 'ts.samples'::regclass
			      AND $1::timestamptz >= split_part(pg_get_expr(c.relpartbound, c.oid), '''', 2)::timestamptz
			      AND $1::timestamptz <  split_part(pg_get_expr(c.relpartbound, c.oid), '''', 4)::timestamptz`, at).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		in15Days := time.Now().Add(15 * 24 * time.Hour)

		// Another replica holds the lock: the pass steps aside.
		other, err := d.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", maintenance.LockKey); err != nil {
			t.Fatal(err)
		}
		ran, err := svc.RunOnce(ctx)
		if err != nil || ran {
			t.Fatalf("pass while locked: ran=%v err=%v, want a skip", ran, err)
		}
		if ran, err := svc.RefreshOnce(ctx); err != nil || ran {
			t.Fatalf("refresh while locked: ran=%v err=%v, want a skip", ran, err)
		}
		other.Rollback(ctx)

		ran, err = svc.RunOnce(ctx)
		if err != nil || !ran {
			t.Fatalf("pass: ran=%v err=%v", ran, err)
		}
		want := map[db.Flavor]int{db.FlavorPostgres: 1, db.FlavorTimescale: 0}[flavor]
		if got := partitionsAt(in15Days); got != want {
			t.Errorf("partitions of ts.samples covering 15 days ahead = %d, want %d", got, want)
		}
	})
}
