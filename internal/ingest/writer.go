package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/events"
)

// Errors that Submit returns; the API answers both with a Retry-After.
var (
	// ErrBusy: the queue is full; the client should slow down (429).
	ErrBusy = errors.New("ingest queue is full")
	// ErrUnavailable: the database cannot be reached or refused the write for now (503).
	ErrUnavailable = errors.New("database unavailable")
)

// rows are samples ready for COPY, column by column.
type rows struct {
	times  []time.Time
	tenant pgtype.UUID
	series []int64
	values []float64
}

func (r *rows) len() int { return len(r.times) }

// request is one caller's rows waiting to be committed.
type request struct {
	rows *rows
	done chan error // receives exactly one result
}

// WriterConfig tunes the group-commit writer. Zero fields take the values of DefaultConfig().Writer.
type WriterConfig struct {
	// Writers is the number of concurrent COPY transactions.
	Writers int
	// MaxBatchRows caps the rows merged into one transaction.
	MaxBatchRows int
	// MaxQueuedRows bounds the rows waiting for a writer; beyond it Submit answers ErrBusy.
	MaxQueuedRows int
	// CommitTimeout bounds one transaction.
	CommitTimeout time.Duration
	// IdleInTransactionTimeout is how long a transaction of the writer may wait between its statements
	// before PostgreSQL ends its session. A replica paused or starved in the middle of a transaction
	// holds its uncommitted rows, and a retry of the same push on another replica waits on them: this
	// bounds that wait (the paused replica's push fails and is retried; it was never acknowledged).
	IdleInTransactionTimeout time.Duration
}

func (c WriterConfig) withDefaults() WriterConfig {
	def := DefaultConfig().Writer
	if c.Writers <= 0 {
		c.Writers = def.Writers
	}
	if c.MaxBatchRows <= 0 {
		c.MaxBatchRows = def.MaxBatchRows
	}
	if c.MaxQueuedRows <= 0 {
		c.MaxQueuedRows = def.MaxQueuedRows
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = def.CommitTimeout
	}
	if c.IdleInTransactionTimeout <= 0 {
		c.IdleInTransactionTimeout = def.IdleInTransactionTimeout
	}
	return c
}

// Writer merges concurrent requests into large COPY transactions (group commit) and tells each request
// when its rows are committed. While one transaction commits, the requests that arrive queue up and
// go together in the next: the busier the server, the larger the batches.
type Writer struct {
	cfg    WriterConfig
	pool   *pgxpool.Pool
	log    *slog.Logger
	queue  chan *request
	queued atomic.Int64
	m      *writerMetrics

	// beforeCommit, when set (by tests), runs inside each transaction just before its COMMIT.
	beforeCommit func()
}

// NewWriter returns a writer; Run starts its workers.
func NewWriter(cfg WriterConfig, pool *pgxpool.Pool, log *slog.Logger, reg prometheus.Registerer) *Writer {
	cfg = cfg.withDefaults()
	w := &Writer{cfg: cfg, pool: pool, log: log, queue: make(chan *request, 65536), m: newWriterMetrics(reg)}
	return w
}

// Run writes until ctx ends, then finishes what is queued (bounded by the commit timeout).
//
// Each worker counts what it stores in app.ingest_usage under a slot of its own, so that two workers
// never wait for each other's row lock on a tenant's minute; the slots of a process start at a random
// number, so that those of two replicas seldom meet either.
func (w *Writer) Run(ctx context.Context) {
	done := make(chan struct{})
	first := rand.IntN(math.MaxInt16 - w.cfg.Writers)
	for i := range w.cfg.Writers {
		slot := int16(first + i)
		go func() {
			defer func() { done <- struct{}{} }()
			w.work(ctx, slot)
		}()
	}
	for range w.cfg.Writers {
		<-done
	}
}

// Submit queues rows and waits until they are committed (nil) or failed. When ctx ends first, the rows
// may still be committed later; they are simply not acknowledged.
func (w *Writer) Submit(ctx context.Context, r *rows) error {
	n := int64(r.len())
	if n == 0 {
		return nil
	}
	if w.queued.Add(n) > int64(w.cfg.MaxQueuedRows) {
		w.queued.Add(-n)
		return ErrBusy
	}
	w.m.queued.Set(float64(w.queued.Load()))
	req := &request{rows: r, done: make(chan error, 1)}
	select {
	case w.queue <- req:
	default:
		w.queued.Add(-n)
		return ErrBusy
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) work(ctx context.Context, slot int16) {
	for {
		var first *request
		select {
		case first = <-w.queue:
		case <-ctx.Done():
			// Finish what is queued, so that shutting down loses nothing that was waiting.
			select {
			case first = <-w.queue:
			default:
				return
			}
		}
		batch := []*request{first}
		n := first.rows.len()
	drain:
		for n < w.cfg.MaxBatchRows {
			select {
			case r := <-w.queue:
				batch = append(batch, r)
				n += r.rows.len()
			default:
				break drain
			}
		}
		w.queued.Add(int64(-n))
		w.m.queued.Set(float64(w.queued.Load()))
		w.commitAndAck(batch, n, slot)
	}
}

// commitAndAck writes a batch and answers its requests. If the batch fails for a reason other than the
// database being unreachable, each request is retried alone, so one bad request cannot fail the others.
func (w *Writer) commitAndAck(batch []*request, n int, slot int16) {
	start := time.Now()
	err := w.commit(batch, slot)
	w.m.commit.Observe(time.Since(start).Seconds())
	w.m.batchRows.Observe(float64(n))
	if err != nil && len(batch) > 1 && !errors.Is(err, ErrUnavailable) {
		for _, r := range batch {
			r.done <- w.commit([]*request{r}, slot)
		}
		return
	}
	for _, r := range batch {
		r.done <- err
	}
}

// commit writes the rows of batch in one transaction: a plain COPY, or when a row already exists (a
// retried request), COPY into a temporary table and INSERT … ON CONFLICT DO NOTHING, so duplicates never
// fail a batch and are never stored twice. The same transaction publishes a samples event per tenant for
// the live stream, so the event goes out only if the samples are stored, and adds the samples it stored
// to each tenant's usage of the minute (app.ingest_usage, in slot): one statement per batch, last, so
// the usage row stays locked only while the transaction commits.
func (w *Writer) commit(batch []*request, slot int16) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.CommitTimeout)
	defer cancel()
	evs := samplesEvents(batch, time.Now())
	idleLimit := strconv.FormatInt(w.cfg.IdleInTransactionTimeout.Milliseconds(), 10)
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if err := limitIdleInTransaction(ctx, tx, idleLimit); err != nil {
			return err
		}
		if err := copySamples(ctx, tx, "ts.samples", batch); err != nil {
			return err
		}
		q := dbsqlc.New(tx)
		if err := events.Publish(ctx, q, evs...); err != nil {
			return err
		}
		if err := q.IngestUsageAdd(ctx, usageOf(batch, slot)); err != nil {
			return err
		}
		w.pauseBeforeCommit()
		return nil
	})
	if isUniqueViolation(err) {
		w.m.duplicateBatches.Inc()
		err = pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
			if err := limitIdleInTransaction(ctx, tx, idleLimit); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS samples_incoming (LIKE ts.samples) ON COMMIT DELETE ROWS`); err != nil {
				return err
			}
			if err := copySamples(ctx, tx, "samples_incoming", batch); err != nil {
				return err
			}
			if err := events.Publish(ctx, dbsqlc.New(tx), evs...); err != nil {
				return err
			}
			// Only the rows inserted count as usage: those already stored were counted when they were.
			_, err := tx.Exec(ctx, `WITH stored AS (
			                            INSERT INTO ts.samples (time, tenant_id, series_id, value)
			                            SELECT time, tenant_id, series_id, value FROM samples_incoming
			                            ON CONFLICT (series_id, time) DO NOTHING
			                            RETURNING tenant_id)
			                        INSERT INTO app.ingest_usage AS u (tenant_id, minute, slot, samples)
			                        SELECT tenant_id, date_trunc('minute', now()), $1::smallint, count(*) FROM stored GROUP BY tenant_id
			                        ON CONFLICT (tenant_id, minute, slot) DO UPDATE SET samples = u.samples + excluded.samples`, slot)
			if err != nil {
				return err
			}
			w.pauseBeforeCommit()
			return nil
		})
	}
	if err != nil {
		if db.IsUnavailable(err) {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return fmt.Errorf("write samples: %w", err)
	}
	return nil
}

// limitIdleInTransaction sets the transaction's idle_in_transaction_session_timeout (milliseconds).
func limitIdleInTransaction(ctx context.Context, tx pgx.Tx, ms string) error {
	_, err := tx.Exec(ctx, "SELECT set_config('idle_in_transaction_session_timeout', $1, true)", ms)
	return err
}

func (w *Writer) pauseBeforeCommit() {
	if w.beforeCommit != nil {
		w.beforeCommit()
	}
}

// usageOf counts the samples of batch by tenant, for IngestUsageAdd.
func usageOf(batch []*request, slot int16) dbsqlc.IngestUsageAddParams {
	p := dbsqlc.IngestUsageAddParams{Slot: slot}
	index := make(map[pgtype.UUID]int, 1)
	for _, req := range batch {
		i, ok := index[req.rows.tenant]
		if !ok {
			i = len(p.TenantIds)
			index[req.rows.tenant] = i
			p.TenantIds = append(p.TenantIds, uuid.UUID(req.rows.tenant.Bytes))
			p.Samples = append(p.Samples, 0)
		}
		p.Samples[i] += int64(req.rows.len())
	}
	return p
}

// samplesEvents names the series of batch, one event per tenant, each series once.
func samplesEvents(batch []*request, now time.Time) []events.Event {
	var evs []events.Event
	byTenant := make(map[pgtype.UUID]int, 1)
	seen := make(map[int64]struct{}) // series ids are unique across tenants
	for _, req := range batch {
		r := req.rows
		i, ok := byTenant[r.tenant]
		if !ok {
			i = len(evs)
			byTenant[r.tenant] = i
			evs = append(evs, events.Event{Type: events.Samples, Tenant: uuid.UUID(r.tenant.Bytes), Time: now})
		}
		for _, id := range r.series {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				evs[i].SeriesIDs = append(evs[i].SeriesIDs, id)
			}
		}
	}
	return evs
}

func isUniqueViolation(err error) bool { return errors.Is(db.Translate(err), db.ErrConflict) }

type writerMetrics struct {
	queued           prometheus.Gauge
	batchRows        prometheus.Histogram
	commit           prometheus.Histogram
	duplicateBatches prometheus.Counter
}

func newWriterMetrics(reg prometheus.Registerer) *writerMetrics {
	m := &writerMetrics{
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "infrawatch_ingest_queue_rows",
			Help: "Samples waiting for the group-commit writer."}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "infrawatch_ingest_batch_rows",
			Help: "Samples per group-commit transaction.", Buckets: prometheus.ExponentialBuckets(10, 2.5, 9)}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "infrawatch_ingest_commit_seconds",
			Help: "Time to COPY and commit one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		duplicateBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_ingest_duplicate_batches_total",
			Help: "Batches that held samples already stored (retries) and went through the de-duplicating path."}),
	}
	if reg != nil {
		reg.MustRegister(m.queued, m.batchRows, m.commit, m.duplicateBatches)
	}
	return m
}
