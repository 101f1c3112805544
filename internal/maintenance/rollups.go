package maintenance

import (
	"context"
	"errors"
	"fmt"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// refreshMaxBuckets bounds the work of one refresh transaction per tier: a day of 5-minute buckets, 12
// days of hourly ones. A larger backlog (after an outage, or the rows stored before the rollups existed)
// is worked off in several transactions of one RefreshOnce.
const refreshMaxBuckets = 288

// RefreshOnce brings the postgres flavor's rollups up to date (see infrawatch.refresh_rollups) if no
// other replica holds the lock; ran says whether it did. It calls the refresh again, each call in a
// transaction of its own, while a tier reports a backlog, until the timeout. In the timescale flavor
// that refresh does nothing: TimescaleDB's policies do that work, or infrawatch does it for them. Then
// it checks the storage jobs (checkJobs), which is where infrawatch runs the jobs of TimescaleDB's it
// has taken over.
func (s *Service) RefreshOnce(ctx context.Context) (ran bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ran, err = s.refreshRollups(ctx)
	if !ran {
		return false, err
	}
	// Another replica may take the lock in between; then it checks the jobs.
	_, checkErr := s.sys.WithSessionLock(ctx, LockKey, func(q *dbsqlc.Queries) error { return s.checkJobs(ctx, q, err) })
	if checkErr != nil {
		checkErr = fmt.Errorf("check storage jobs: %w", checkErr)
	}
	return true, errors.Join(err, checkErr)
}

// refreshRollups is the postgres flavor's refresh of RefreshOnce.
func (s *Service) refreshRollups(ctx context.Context) (ran bool, err error) {
	for {
		backlog := false
		err := s.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
			locked, err := q.MaintenanceTryLock(ctx, LockKey)
			if err != nil || !locked {
				return err
			}
			ran = true
			// By the service's clock, like everything it schedules; the database's would do as well.
			tiers, err := q.RollupsRefresh(ctx, dbsqlc.RollupsRefreshParams{Upto: s.clock.Now().Add(-s.cfg.RefreshLag),
				MaxBuckets: refreshMaxBuckets})
			if err != nil {
				return fmt.Errorf("refresh rollups: %w", err)
			}
			for _, t := range tiers {
				if t.RowsWritten > 0 {
					s.log.Debug("refreshed rollup", "rollup", t.Name, "rows", t.RowsWritten, "watermark", t.Watermark,
						"backlog", t.Backlog)
				}
				backlog = backlog || t.Backlog
			}
			return nil
		})
		if err != nil || !ran || !backlog {
			return ran, err
		}
	}
}
