package db

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// TenantRunner runs queries on behalf of one tenant at a time. It is what request handlers get instead
// of a pool: there is no way through it to run a query without a tenant, or without a time limit.
type TenantRunner struct {
	pool             *pgxpool.Pool
	statementTimeout time.Duration
}

// NewTenantRunner wraps the owner's pool, with DefaultStatementTimeout. Only the process wiring calls it.
func NewTenantRunner(pool *Pool) *TenantRunner {
	return &TenantRunner{pool: pool, statementTimeout: DefaultStatementTimeout}
}

// WithStatementTimeout returns a runner like r whose statements stop after d instead. d must be positive.
func (r *TenantRunner) WithStatementTimeout(d time.Duration) *TenantRunner {
	return &TenantRunner{pool: r.pool, statementTimeout: d}
}

// StatementTimeout is how long each statement of a tenant's transaction may run.
func (r *TenantRunner) StatementTimeout() time.Duration { return r.statementTimeout }

// PoolSize is how many connections the runner's pool opens at most, for limits that keep a share of
// them free.
func (r *TenantRunner) PoolSize() int { return int(r.pool.Config().MaxConns) }

// statementTimeoutSetting is the setting that bounds each statement of a tenant's transaction.
func (r *TenantRunner) statementTimeoutSetting() Setting {
	return Setting{Name: "statement_timeout", Value: strconv.FormatInt(r.statementTimeout.Milliseconds(), 10)}
}

// WithTenant runs fn in a transaction as role infrawatch_api with the current tenant set to tenantID,
// and commits when fn returns nil. Every statement of fn stops after the runner's statement timeout
// (statement_timeout; the error then translates to ErrTimeout). The settings are transaction-local
// (set_config(…, true); the role through its setting, which is what SET LOCAL ROLE sets), so they end
// with the transaction and never leak to the next user of the connection. Row-level security and the
// api views then show fn only that tenant's rows.
func (r *TenantRunner) WithTenant(ctx context.Context, tenantID uuid.UUID, fn func(q *dbsqlc.Queries) error) error {
	setup, err := newTenantSetup(tenantID, []Setting{r.statementTimeoutSetting()})
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, tenantSetup, setup...); err != nil {
			return fmt.Errorf("set tenant: %w", Translate(err))
		}
		return fn(dbsqlc.New(translating{tx}))
	})
}

// Setting is a transaction-local setting: set_config(Name, Value, true).
type Setting struct {
	Name, Value string
}

// StatementOptions tune each statement that WithTenantReadOnly runs.
type StatementOptions struct {
	// Settings are made for each statement after the tenant, the role and the statement timeout.
	Settings []Setting
}

// WithTenantReadOnly runs fn as the tenant, like WithTenant, for work that only reads and needs no
// transaction around its statements: each statement of fn runs in a read-only transaction of its own,
// sent in one round trip behind the statement that sets the tenant, the role and the settings (a
// pipeline of two statements, which PostgreSQL runs as one transaction up to its Sync). A request of
// two statements then costs two round trips instead of five (BEGIN, the tenant, the two, COMMIT). Each
// statement sees what was committed when it began, as in one READ COMMITTED transaction; writes are
// refused (transaction_read_only); and the settings end with each statement's transaction.
//
// Each statement is bounded by the runner's statement timeout on the server, and by a second more
// for the whole round trip on this side, for what statement_timeout does not cover (pgx prepares a
// statement on its first use on a connection, before the statement that sets the timeout, and that can
// wait for a lock held by DDL). A statement past the latter fails with an error that wraps
// context.DeadlineExceeded.
func (r *TenantRunner) WithTenantReadOnly(ctx context.Context, tenantID uuid.UUID, opts StatementOptions,
	fn func(q *dbsqlc.Queries) error) error {
	settings := make([]Setting, 0, len(opts.Settings)+2)
	settings = append(settings, r.statementTimeoutSetting())
	settings = append(append(settings, opts.Settings...), Setting{Name: "transaction_read_only", Value: "on"})
	setup, err := newTenantSetup(tenantID, settings)
	if err != nil {
		return err
	}
	return fn(dbsqlc.New(translating{&tenantPipeline{pool: r.pool, setup: setup, timeout: r.statementTimeout}}))
}

// tenantSetup sets the tenant, switches to role infrawatch_api and makes the settings $2 = $3, each for
// the rest of the transaction, in one statement.
const tenantSetup = `SELECT set_config('infrawatch.tenant_id', $1, true),
       set_config('role', 'infrawatch_api', true),
       (SELECT count(set_config(s.name, s.value, true)) FROM unnest($2::text[], $3::text[]) AS s (name, value))`

// newTenantSetup returns the arguments of tenantSetup. A setting may not undo the tenant or the role.
func newTenantSetup(tenantID uuid.UUID, settings []Setting) ([]any, error) {
	if tenantID == uuid.Nil {
		return nil, fmt.Errorf("tenant transaction: %w", ErrNoTenant)
	}
	names, values := make([]string, len(settings)), make([]string, len(settings))
	for i, st := range settings {
		switch strings.ToLower(st.Name) {
		case "infrawatch.tenant_id", "role", "session_authorization":
			return nil, fmt.Errorf("tenant transaction: setting %s is the runner's", st.Name)
		}
		names[i], values[i] = st.Name, st.Value
	}
	return []any{tenantID.String(), names, values}, nil
}

// tenantPipeline is the dbsqlc.DBTX of WithTenantReadOnly: it sends each statement in a pipeline behind
// tenantSetup.
type tenantPipeline struct {
	pool    *pgxpool.Pool
	setup   []any
	timeout time.Duration
}

// pipeline is one statement's round trip: the connection, the results and the end of its deadline.
type pipeline struct {
	conn    *pgxpool.Conn
	results pgx.BatchResults
	ctx     context.Context
	cancel  context.CancelFunc
}

// send acquires a connection, sends tenantSetup and the statement, and reads the result of tenantSetup.
// On success the caller reads the statement's result and then calls close.
func (p *tenantPipeline) send(ctx context.Context, sql string, args []any) (*pipeline, error) {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	pl := &pipeline{conn: conn, ctx: ctx, cancel: func() {}}
	if p.timeout > 0 {
		pl.ctx, pl.cancel = context.WithTimeout(ctx, p.timeout+time.Second)
	}
	b := &pgx.Batch{}
	b.Queue(tenantSetup, p.setup...)
	b.Queue(sql, args...)
	pl.results = conn.SendBatch(pl.ctx, b)
	if _, err := pl.results.Exec(); err != nil {
		return nil, pl.close(fmt.Errorf("tenant pipeline: %w", Translate(err)))
	}
	return pl, nil
}

// close reads the end of the pipeline, releases the connection (closed rather than reused unless the
// pipeline ended cleanly) and returns err, or else what went wrong in closing.
func (pl *pipeline) close(err error) error {
	if closeErr := pl.results.Close(); err == nil {
		err = closeErr
	}
	pl.conn.Release()
	pl.cancel()
	return err
}

func (p *tenantPipeline) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	pl, err := p.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := pl.results.Exec()
	return tag, pl.close(err)
}

func (p *tenantPipeline) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	pl, err := p.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := pl.results.Query()
	if err != nil {
		rows.Close()
		return nil, pl.close(err)
	}
	return &pipelineRows{Rows: rows, pl: pl}, nil
}

func (p *tenantPipeline) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := p.Query(ctx, sql, args...)
	return pipelineRow{rows: rows, err: err}
}

// pipelineRows are a statement's rows; once they are read to the end or closed, so is the pipeline.
type pipelineRows struct {
	pgx.Rows
	pl  *pipeline
	err error
}

func (r *pipelineRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *pipelineRows) Close() {
	if r.pl == nil {
		return
	}
	r.Rows.Close()
	r.err = r.pl.close(r.Rows.Err())
	r.pl = nil
}

func (r *pipelineRows) Err() error {
	if r.pl == nil {
		return r.err
	}
	return r.Rows.Err()
}

// pipelineRow is the first row of a statement's rows, read as pgx.Conn.QueryRow reads it.
type pipelineRow struct {
	rows pgx.Rows
	err  error
}

func (r pipelineRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
