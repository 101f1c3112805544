package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Health reads what readiness needs to know of the database: that it answers, that its schema is the
// one this binary carries, and that it takes writes. It runs on the owner's pool, which it never hands
// out, so the HTTP layer probes readiness without holding the pool.
type Health struct {
	pool *pgxpool.Pool
}

// NewHealth wraps the owner's pool. Only the process wiring and tests call it.
func NewHealth(pool *pgxpool.Pool) *Health { return &Health{pool: pool} }

// Status is what Check found.
type Status struct {
	// Schema is the schema's flavor, version and dirt, and the version this binary expects.
	Schema MigrationStatus
	// InRecovery: the server is a standby, which takes no writes.
	InRecovery bool
	// ReadOnly: this connection's transactions are read-only (default_transaction_read_only).
	ReadOnly bool
	// NewConnectionsReadOnly: a connection opened now would be read-only, by a setting made with
	// ALTER DATABASE or ALTER ROLE … SET, which reaches only new connections.
	NewConnectionsReadOnly bool
}

// Check reads the status. An error means the database did not answer.
func (h *Health) Check(ctx context.Context) (Status, error) {
	schema, err := ReadStatus(ctx, h.pool)
	if err != nil {
		return Status{}, err
	}
	w, err := dbsqlc.New(h.pool).DatabaseWritability(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("read writability: %w", Translate(err))
	}
	return Status{Schema: schema, InRecovery: w.InRecovery, ReadOnly: w.ReadOnly, NewConnectionsReadOnly: w.NewConnectionsReadOnly}, nil
}
