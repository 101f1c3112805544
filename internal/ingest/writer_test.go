package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/events"
	"github.com/infrawatch/infrawatch/internal/stream"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// testRows makes n samples of series first… first+series-1 (n/series points each) for tenant, from start.
func testRows(tenant uuid.UUID, first int64, series, n int, start time.Time) *rows {
	r := &rows{tenant: pgtype.UUID{Bytes: tenant, Valid: true}}
	for i := range n {
		r.times = append(r.times, start.Add(time.Duration(i/series)*time.Second))
		r.series = append(r.series, first+int64(i%series))
		r.values = append(r.values, float64(i))
	}
	return r
}

// The writer announces what it committed, on both of its paths: one samples event per tenant of a
// batch, each series once.
func TestWriterPublishesSamplesEvents(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		d := dbtest.New(t, flavor)
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
		w := NewWriter(WriterConfig{}, d.Pool, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		a, b := uuid.New(), uuid.New()
		now := time.Now().Truncate(time.Second)
		batch := []*request{{rows: testRows(a, 1, 3, 9, now)}, {rows: testRows(b, 100, 2, 2, now)}, {rows: testRows(a, 2, 3, 3, now.Add(time.Hour))}}
		if err := w.commit(batch, 0); err != nil {
			t.Fatal(err)
		}
		// A retried push (samples already stored) goes the de-duplicating way and is announced.
		if err := w.commit([]*request{{rows: testRows(b, 100, 1, 1, now)}}, 0); err != nil {
			t.Fatal(err)
		}

		want := map[uuid.UUID][]int64{a: {1, 2, 3, 4}, b: {100, 101}}
		got := map[uuid.UUID][]int64{}
		for range 3 {
			waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
			n, err := listener.WaitForNotification(waitCtx)
			cancel()
			if err != nil {
				t.Fatalf("notifications: got %v, then %v", got, err)
			}
			var ev events.Event
			if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil || ev.Type != events.Samples {
				t.Fatalf("payload %s: %v", n.Payload, err)
			}
			if _, seen := got[ev.Tenant]; seen && ev.Tenant == a {
				t.Fatalf("a second event for tenant A: %s", n.Payload)
			}
			got[ev.Tenant] = append(got[ev.Tenant], ev.SeriesIDs...)
		}
		slices.Sort(got[a])
		if !slices.Equal(got[a], want[a]) || !slices.Equal(got[b], []int64{100, 101, 100}) {
			t.Fatalf("series announced: %v, want A %v and B %v then (the retry) 100", got, want[a], want[b])
		}
	})
}

// BenchmarkCommitEvents measures what the samples events cost a group-commit transaction, two writers
// side by side as in production, with a stream hub listening: large batches (a busy server) and small
// ones (a quiet server, where the commit dominates). Compare each copy with its copy+events, and that
// with copy+events+usage (the writer's commit: also the tenants' usage count of the minute); point
// INFRAWATCH_TEST_DATABASE_URL at a server with fsync on to include the commit serialization NOTIFY brings.
func BenchmarkCommitEvents(b *testing.B) {
	d := dbtest.New(b, db.FlavorPostgres)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := stream.New(stream.Config{}, d.Pool, log, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	if err := hub.WaitListening(ctx); err != nil {
		b.Fatal(err)
	}
	tenant := uuid.New()
	w := NewWriter(WriterConfig{}, d.Pool, log, nil)
	var clock sync.Mutex
	next := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	for _, size := range []struct{ rows, series int }{{10_000, 1000}, {400, 100}} {
		batch := func() []*request {
			clock.Lock()
			defer clock.Unlock()
			start := next
			next = next.Add(time.Duration(size.rows/size.series) * time.Second)
			return []*request{{rows: testRows(tenant, 1, size.series, size.rows, start)}}
		}
		// copy+events was the writer's transaction before the usage count; copy+events+usage is the
		// writer's commit as it is (w.commit).
		for _, variant := range []string{"copy", "copy+events", "copy+events+usage"} {
			name := fmt.Sprintf("rows=%d/%s", size.rows, variant)
			b.Run(name, func(b *testing.B) {
				var wg sync.WaitGroup
				errs := make(chan error, 2)
				for worker := range 2 {
					wg.Go(func() {
						for i := worker; i < b.N; i += 2 {
							rs := batch()
							var err error
							if variant == "copy+events+usage" {
								err = w.commit(rs, int16(worker))
							} else {
								err = pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
									if err := copySamples(ctx, tx, "ts.samples", rs); err != nil || variant == "copy" {
										return err
									}
									return events.Publish(ctx, dbsqlc.New(tx), samplesEvents(rs, time.Now())...)
								})
							}
							if err != nil {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N*size.rows)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}

// One bad submission in a merged batch fails only its own caller: the others of the batch, another
// tenant's included, are committed once each, and a retried submission among them (samples already
// stored) is still acknowledged without a second copy.
func TestWriterBatchWithOneBadSubmission(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		d := dbtest.New(t, flavor)
		ctx := context.Background()
		w := NewWriter(WriterConfig{}, d.Pool, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		a, b := uuid.New(), uuid.New()
		now := time.Now().Truncate(time.Second)
		if err := w.commit([]*request{{rows: testRows(a, 1, 2, 4, now)}}, 0); err != nil {
			t.Fatal(err)
		}
		// PostgreSQL refuses a timestamp before 4714 BC: a data error, not an outage.
		poisoned := testRows(b, 200, 1, 1, time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC))
		batch := []*request{
			{rows: testRows(a, 1, 2, 4, now), done: make(chan error, 1)},   // a retry: stored already
			{rows: testRows(b, 100, 2, 4, now), done: make(chan error, 1)}, // new, another tenant
			{rows: poisoned, done: make(chan error, 1)},
			{rows: testRows(a, 10, 1, 3, now), done: make(chan error, 1)}, // new
		}
		w.commitAndAck(batch, 12, 0)
		for i, req := range batch {
			err := <-req.done
			if bad := req.rows == poisoned; bad != (err != nil) {
				t.Errorf("submission %d (bad: %v) answered %v", i, bad, err)
			} else if bad && errors.Is(err, ErrUnavailable) {
				t.Errorf("the bad submission was answered as an outage: %v", err)
			}
		}
		counts := map[string]int{}
		rows, err := d.Pool.Query(ctx, `SELECT tenant_id::text, count(*), count(DISTINCT (series_id, time)) FROM ts.samples GROUP BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var tenant string
			var n, distinct int
			if err := rows.Scan(&tenant, &n, &distinct); err != nil {
				t.Fatal(err)
			}
			if n != distinct {
				t.Errorf("tenant %s: %d samples stored, %d distinct", tenant, n, distinct)
			}
			counts[tenant] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if counts[a.String()] != 7 || counts[b.String()] != 4 {
			t.Fatalf("stored %v, want A 7 (4 before, 3 new) and B 4", counts)
		}
		// The tenants' usage counts exactly the samples stored, whatever the path: not the retried ones
		// (stored before and counted then), not the refused submission's.
		usage := map[string]int{}
		urows, err := d.Pool.Query(ctx, `SELECT tenant_id::text, sum(samples)::int FROM app.ingest_usage GROUP BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer urows.Close()
		for urows.Next() {
			var tenant string
			var n int
			if err := urows.Scan(&tenant, &n); err != nil {
				t.Fatal(err)
			}
			usage[tenant] = n
		}
		if err := urows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(usage) != 2 || usage[a.String()] != 7 || usage[b.String()] != 4 {
			t.Errorf("ingest usage %v, want the samples stored: A 7 and B 4", usage)
		}
	})
}

// A replica paused in the middle of its transaction (SIGSTOP, a starved VM) holds its uncommitted rows;
// the agent's retry of the same push on another replica waits on them. PostgreSQL ends the paused
// transaction after the writer's idle-in-transaction limit, so the retry is stored, and the paused
// writer learns that its transaction is gone as an outage (its push is answered 503 and retried).
func TestWriterPausedMidTransactionDoesNotHoldARetryOfItsRows(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		d := dbtest.New(t, flavor)
		ctx := context.Background()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg := WriterConfig{IdleInTransactionTimeout: time.Second}
		paused := NewWriter(cfg, d.Pool, log, nil)
		reached, release := make(chan struct{}), make(chan struct{})
		paused.beforeCommit = func() { close(reached); <-release }
		tenant := uuid.New()
		now := time.Now().Truncate(time.Second)
		pausedErr := make(chan error, 1)
		go func() { pausedErr <- paused.commit([]*request{{rows: testRows(tenant, 1, 4, 8, now)}}, 0) }()
		<-reached

		retryErr := make(chan error, 1)
		go func() {
			retryErr <- NewWriter(cfg, d.Pool, log, nil).commit([]*request{{rows: testRows(tenant, 1, 4, 8, now)}}, 1)
		}()
		select {
		case err := <-retryErr:
			if err != nil {
				t.Fatalf("the retry on the other writer: %v", err)
			}
		case <-time.After(20 * time.Second):
			close(release)
			t.Fatal("the retry still waits for the paused writer's uncommitted rows after 20 s")
		}
		close(release)
		if err := <-pausedErr; !errors.Is(err, ErrUnavailable) {
			t.Fatalf("the paused writer's commit answered %v, want ErrUnavailable (the push is retried)", err)
		}
		var n, distinct int
		if err := d.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (series_id, time)) FROM ts.samples WHERE tenant_id = $1`,
			tenant).Scan(&n, &distinct); err != nil {
			t.Fatal(err)
		}
		if n != 8 || distinct != 8 {
			t.Fatalf("%d samples stored (%d distinct), want the 8 of the push once", n, distinct)
		}
	})
}
