package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/events"
)

// addCheck inserts a check of tenant due now, bypassing the API's validation (as a check saved before
// a validation rule existed would be), and answers its id.
func (w *pollerWorld) addCheck(t *testing.T, tenant uuid.UUID, kind, target, settings string) int64 {
	t.Helper()
	var id int64
	if err := w.d.Pool.QueryRow(context.Background(), `
	    INSERT INTO app.checks (tenant_id, name, kind, target, interval_seconds, timeout_seconds, settings, next_run_at)
	    VALUES ($1, $2 || ' ' || $3, $2, $3, 60, 5, $4, now()) RETURNING id`, tenant, kind, target, settings).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// secondTenant seeds another tenant into w, its seeded check disabled like the first one's.
func (w *pollerWorld) secondTenant(t *testing.T, slug string) dbtest.Tenant {
	t.Helper()
	ten := dbtest.SeedTenant(t, w.d, slug)
	if _, err := w.d.Pool.Exec(context.Background(), `UPDATE app.checks SET enabled = false WHERE id = $1`, ten.CheckID); err != nil {
		t.Fatal(err)
	}
	return ten
}

// claimAndProbe plays an engine's round up to storing: it claims every due check and runs each. The
// runs are then stored together with e.store, as the engine's store loop stores runs that finish
// together.
func claimAndProbe(t *testing.T, e *Engine) []Run {
	t.Helper()
	ctx := context.Background()
	claimed, err := e.claim(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var runs []Run
	for _, c := range claimed {
		r, ok := e.probe(ctx, c)
		e.release(c.TenantID)
		if !ok {
			t.Fatalf("check %d was not run", c.ID)
		}
		runs = append(runs, r)
	}
	return runs
}

// checkState is what the database holds about a check's schedule, status and results; zero values
// stand for NULL.
type checkState struct {
	status, reason     string
	lastRun, nextRun   time.Time
	leaseOwner         string
	results, changes   int
	storedResultReason string
}

func (w *pollerWorld) state(t *testing.T, id int64) checkState {
	t.Helper()
	var s checkState
	var status, lease *string
	var lastRun *time.Time
	if err := w.d.Pool.QueryRow(context.Background(), `
	    SELECT c.status, c.status_reason, c.last_run_at, c.next_run_at, c.lease_owner,
	           (SELECT count(*) FROM ts.check_results r WHERE r.check_id = c.id),
	           (SELECT count(*) FROM app.check_events e WHERE e.check_id = c.id),
	           coalesce((SELECT r.detail->>'reason' FROM ts.check_results r WHERE r.check_id = c.id LIMIT 1), '')
	      FROM app.checks c WHERE c.id = $1`, id).
		Scan(&status, &s.reason, &lastRun, &s.nextRun, &lease, &s.results, &s.changes, &s.storedResultReason); err != nil {
		t.Fatal(err)
	}
	if status != nil {
		s.status = *status
	}
	if lease != nil {
		s.leaseOwner = *lease
	}
	if lastRun != nil {
		s.lastRun = *lastRun
	}
	return s
}

// A check whose failure reason is huge (an HTTP check's body_contains of 9,000 characters, quoted in
// its reason) once made pg_notify refuse the payload inside the poller's shared transaction, losing the
// results of every tenant in the batch. The reason is now bounded where it is produced, and the other
// tenant's check is stored and moves on.
func TestOversizedReasonDoesNotLoseOtherTenantsResults(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newPollerWorld(t, flavor)
		ctx := context.Background()
		bravo := w.secondTenant(t, "bravo")
		site := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("ok")) }))
		defer site.Close()
		settings, _ := json.Marshal(map[string]any{"body_contains": strings.Repeat("é", 4500)}) // 9,000 bytes
		huge := w.addCheck(t, bravo.ID, "http", site.URL, string(settings))
		good := w.addCheck(t, w.tenant.ID, "tcp", tcpTarget(t), "{}")

		listener, err := pgx.Connect(ctx, w.d.URL)
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

		e := New(Config{Owner: "poller-1"}, w.runner, quiet, nil)
		runs := claimAndProbe(t, e)
		if len(runs) != 2 {
			t.Fatalf("claimed %d runs, want 2", len(runs))
		}
		e.store(runs)

		for _, r := range runs {
			got := w.state(t, r.CheckID)
			if !got.lastRun.Equal(r.Time.Truncate(time.Microsecond)) || !got.nextRun.Equal(r.next.Truncate(time.Microsecond)) ||
				got.leaseOwner != "" || got.results != 1 || got.changes != 1 {
				t.Errorf("check %d after its run: %+v; want last run %s, next run %s, no lease, 1 result, 1 status change",
					r.CheckID, got, r.Time, r.next)
			}
		}
		if got := w.state(t, good); got.status != "up" {
			t.Errorf("the good check of tenant A is %q, want up", got.status)
		}
		got := w.state(t, huge)
		if got.status != "down" || !strings.HasPrefix(got.reason, `body does not contain "éé`) || len(got.reason) > checks.MaxReasonBytes ||
			!utf8.ValidString(got.reason) || !strings.HasSuffix(got.reason, "…") || got.storedResultReason != got.reason {
			t.Errorf("the huge check's status %q, reason of %d bytes %q (result's reason %q); want down, cut to at most %d bytes with …",
				got.status, len(got.reason), got.reason, got.storedResultReason, checks.MaxReasonBytes)
		}

		// The stream hears of both runs, with the reason as stored.
		heard := map[int64]string{}
		for len(heard) < 2 {
			waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second) // a guard against hanging
			n, err := listener.WaitForNotification(waitCtx)
			cancel()
			if err != nil {
				t.Fatalf("results announced: %v, then %v", heard, err)
			}
			var ev events.Event
			if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil {
				t.Fatalf("payload %s: %v", n.Payload, err)
			}
			if ev.Type == events.CheckResult {
				heard[ev.CheckID] = ev.Reason
			}
		}
		if heard[good] != "" || heard[huge] != got.reason {
			t.Errorf("announced reasons %v, want none for check %d and the stored one for check %d", heard, good, huge)
		}
	})
}

// A run the database refuses to store fails alone: the other runs of its batch, another tenant's
// included, are stored and their checks move on; the bad run's check moves on to its next slot too
// (it cannot freeze), and its error is logged with the check id.
func TestUnstorableRunDoesNotFailItsBatch(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newPollerWorld(t, flavor)
		var logged bytes.Buffer
		w.runner.store.log = slog.New(slog.NewTextHandler(&logged, nil))
		bravo := w.secondTenant(t, "bravo")
		target := tcpTarget(t)
		good := []int64{w.addCheck(t, w.tenant.ID, "tcp", target, "{}"), w.addCheck(t, w.tenant.ID, "tcp", target, "{}")}
		bad := w.addCheck(t, bravo.ID, "tcp", target, "{}")

		e := New(Config{Owner: "poller-1"}, w.runner, quiet, nil)
		runs := claimAndProbe(t, e)
		if len(runs) != 3 {
			t.Fatalf("claimed %d runs, want 3", len(runs))
		}
		var badRun Run
		for i := range runs {
			if runs[i].CheckID == bad {
				// What an SNMP agent's NUL-terminated string would bring, had the probe not cleaned it:
				// PostgreSQL refuses \u0000 in jsonb, for real.
				runs[i].Detail["sys_descr"] = "edge-1\x00"
				badRun = runs[i]
			}
		}
		e.store(runs)

		for _, id := range good {
			got := w.state(t, id)
			if got.status != "up" || got.lastRun.IsZero() || got.leaseOwner != "" || got.results != 1 || got.changes != 1 {
				t.Errorf("good check %d after the batch: %+v, want up with its run stored", id, got)
			}
		}
		got := w.state(t, bad)
		if !got.lastRun.Equal(badRun.Time.Truncate(time.Microsecond)) || !got.nextRun.Equal(badRun.next.Truncate(time.Microsecond)) ||
			got.leaseOwner != "" {
			t.Errorf("the bad run's check: %+v; want it moved on to %s with its lease released", got, badRun.next)
		}
		if got.results != 0 || got.status != "" {
			t.Errorf("the bad run's check: %d results, status %q; want its unstorable run not stored", got.results, got.status)
		}
		if want := fmt.Sprintf("check_id=%d", bad); !strings.Contains(logged.String(), want) {
			t.Errorf("log %q does not name %s", logged.String(), want)
		}
	})
}
