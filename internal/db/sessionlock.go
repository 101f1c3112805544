package db

import (
	"context"
	"fmt"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// WithSessionLock runs fn on a connection of its own, outside any transaction, while that connection
// holds the session-level advisory lock key; locked says whether it got the lock (false: another session
// holds it, and fn did not run). It is for system work that cannot run in a transaction, such as
// TimescaleDB's refresh_continuous_aggregate, which commits as it goes: each statement of fn commits on
// its own. Session and transaction advisory locks on one key exclude each other across sessions, so the
// lock also keeps out the InTx work of other replicas that takes key with pg_try_advisory_xact_lock.
//
// The lock never outlives the call: it is released when fn returns, and a connection that could not
// release it (ctx ended in the middle of a statement, say) is closed rather than handed back to the pool,
// which ends the session and its lock with it.
func (s *System) WithSessionLock(ctx context.Context, key int64, fn func(q *dbsqlc.Queries) error) (locked bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("acquire a connection: %w", Translate(err))
	}
	q := dbsqlc.New(translating{conn})
	locked, err = q.MaintenanceTrySessionLock(ctx, key)
	if err != nil || !locked {
		conn.Release()
		return false, err
	}
	fnErr := fn(q)

	// ctx may have ended; the unlock gets a moment of its own.
	unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if unlocked, err := q.MaintenanceSessionUnlock(unlockCtx, key); err != nil || !unlocked {
		_ = conn.Hijack().Close(unlockCtx)
	} else {
		conn.Release()
	}
	return true, fnErr
}
