package db

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// System runs system work: work that spans tenants, or that comes before any tenant is known
// (authentication, the bookkeeping of ingest, polling, maintenance, the operator's tenant work). It runs
// as the owning login, which row-level security does not restrict, so only the process wiring makes one
// and request handlers never hold one: a handler's path to system work is a narrow method of a service
// that takes the tenant as a parameter (auth.Service, poller.Runner, …).
//
// Errors it answers are translated (Translate): callers test errors.Is(err, ErrNotFound), never driver
// errors.
type System struct {
	pool *pgxpool.Pool
}

// NewSystem wraps the owner's pool. Only the process wiring and tests call it.
func NewSystem(pool *Pool) *System { return &System{pool: pool} }

// Queries runs each statement on its own, outside any transaction.
func (s *System) Queries() *dbsqlc.Queries { return dbsqlc.New(translating{s.pool}) }

// InTx runs fn in one transaction, committed when fn returns nil and rolled back otherwise.
func (s *System) InTx(ctx context.Context, fn func(q *dbsqlc.Queries) error) error {
	return Translate(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(dbsqlc.New(translating{tx})) }))
}

// translating is a dbsqlc.DBTX whose every error is translated, so that sqlc's methods answer
// ErrNotFound, ErrConflict, … and no caller needs the driver's errors.
type translating struct{ db dbsqlc.DBTX }

func (t translating) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.db.Exec(ctx, sql, args...)
	return tag, Translate(err)
}

func (t translating) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := t.db.Query(ctx, sql, args...)
	if err != nil {
		return rows, Translate(err)
	}
	return translatingRows{rows}, nil
}

func (t translating) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return translatingRow{t.db.QueryRow(ctx, sql, args...)}
}

type translatingRows struct{ pgx.Rows }

func (r translatingRows) Err() error { return Translate(r.Rows.Err()) }

func (r translatingRows) Scan(dest ...any) error { return Translate(r.Rows.Scan(dest...)) }

type translatingRow struct{ row pgx.Row }

func (r translatingRow) Scan(dest ...any) error { return Translate(r.row.Scan(dest...)) }
