package maintenance

import (
	"context"
	"fmt"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// refreshStepBuckets bounds one refresh_continuous_aggregate call of a rollup that infrawatch refreshes
// for TimescaleDB: an hour of 5-minute buckets, 12 hours of hourly ones, 12 days of daily ones. Each call
// commits what it materialized, so a backlog (weeks, after TimescaleDB's jobs failed unnoticed) is worked
// off a window at a time, finest tier first, and a pass that runs out of time or is stopped loses at
// most one window's work. An hour of 5-minute buckets is 36,000 raw rows per 10-second series.
const refreshStepBuckets = 12

// refreshKind is the refresh of one rollup tier: TimescaleDB's refresh policy of a continuous aggregate
// in the timescale flavor, infrawatch.refresh_rollups in the postgres flavor (RefreshOnce).
type refreshKind struct{}

func (refreshKind) name() string { return "refresh" }

func (refreshKind) cost() string {
	return "new buckets are aggregated from the tier below at query time only, so queries over long ranges slow down, " +
		"and samples that arrive late for materialized buckets stay missing from them"
}

// behind reports a watermark older than the rollup's schedule explains: a bucket is materialized once
// it is end_offset old (the postgres flavor's RefreshLag), by a run that comes every interval, so a
// healthy watermark is at most a bucket, the end offset and twice the interval old (one run may be late).
func (refreshKind) behind(j *Job, now time.Time) (string, string) {
	if j.WatermarkLag == nil {
		return "", ""
	}
	every, endOffset := j.Infrawatch.Every, j.endOffset
	switch {
	case j.TimescaleDB == nil: // postgres flavor: refresh_rollups leaves RefreshLag, which has no flag
		endOffset = DefaultConfig().RefreshLag
	case j.Runner == RunnerTimescaleDB:
		every = j.TimescaleDB.Every
	}
	allowed := j.bucketWidth + endOffset + 2*every + time.Minute
	if *j.WatermarkLag <= allowed {
		return "", ""
	}
	problem := fmt.Sprintf("%s is materialized up to %s, %s behind (at most %s expected).", j.Relation,
		stamp(*j.Watermark), j.WatermarkLag.Round(time.Second), allowed)
	if j.Runner == RunnerInfrawatch {
		return problem, fmt.Sprintf("infrawatch's scheduler is catching up, %d buckets per step and as many steps as "+
			"fit in a pass; queries aggregate the rest at read time meanwhile. If the lag keeps growing, see the "+
			"scheduler's log and the database's load.", refreshStepBuckets)
	}
	return problem, "TimescaleDB's runs succeed but do not keep up: compare last_run_duration in " +
		"timescaledb_information.job_stats with the schedule; --timescale-jobs=infrawatch makes infrawatch refresh it in bounded steps."
}

// step refreshes the rollup as its TimescaleDB policy would, over the policy's window, from now minus
// start_offset to now minus end_offset: first once below the watermark, where only the buckets that late
// rows invalidated are materialized again (nothing to do costs about a millisecond), then forward from
// the watermark in windows of refreshStepBuckets until the end of the window or the deadline. Each
// window is one CALL, committed on its own.
func (refreshKind) step(ctx context.Context, s *Service, q *dbsqlc.Queries, j *Job, deadline time.Time) (*time.Time, error) {
	width := j.bucketWidth
	if width <= 0 {
		return nil, fmt.Errorf("refresh %s: no bucket width", j.Relation)
	}
	now := s.clock.Now()
	lo := alignUp(now.Add(-j.startOffset), width)
	hi := now.Add(-j.endOffset).Truncate(width)
	if !hi.After(lo) {
		return nil, nil
	}
	// Where materializing starts: the watermark, after a pass over what is below it for late rows; with
	// nothing materialized yet, the oldest data (no empty windows before it); with no data, nowhere.
	cursor, late := lo, false
	switch {
	case j.Watermark != nil && j.Watermark.After(lo):
		cursor, late = j.Watermark.Truncate(width), true
	case j.Watermark == nil && j.oldestData == nil:
		cursor = hi
	case j.Watermark == nil && j.oldestData.After(lo):
		cursor = j.oldestData.Truncate(width)
	}
	if cursor.After(hi) {
		cursor = hi
	}
	refresh := func(from, to time.Time) error {
		if err := q.RollupsRefreshWindow(ctx, dbsqlc.RollupsRefreshWindowParams{Rollup: j.Relation, WindowStart: from, WindowEnd: to}); err != nil {
			return fmt.Errorf("refresh %s from %s to %s: %w", j.Relation, stamp(from), stamp(to), err)
		}
		return nil
	}
	if late && cursor.After(lo) {
		if err := refresh(lo, cursor); err != nil {
			return nil, err
		}
	}
	through := cursor
	for through.Before(hi) && s.clock.Now().Before(deadline) {
		end := through.Add(refreshStepBuckets * width)
		if end.After(hi) {
			end = hi
		}
		if err := refresh(through, end); err != nil {
			return &through, err
		}
		through = end
	}
	return &through, nil
}

// lateRows materializes again the buckets below the rollup's watermark that rows arriving late
// invalidated (an agent replaying its spool after an outage), within the policy's window. TimescaleDB's
// own policy does so only at its next run — an hour away for the hourly tier, a day for the daily one —
// and until then real-time aggregation does not show them (it aggregates above the watermark only). In
// auto mode the scheduler calls it at every check for the refresh jobs TimescaleDB runs, finest tier
// first, so that a late sample reaches every tier within a check; with nothing invalidated it costs
// about a millisecond. It is not a run of the job and is not recorded as one.
func (refreshKind) lateRows(ctx context.Context, s *Service, q *dbsqlc.Queries, j *Job) error {
	width := j.bucketWidth
	if j.Watermark == nil || width <= 0 {
		return nil
	}
	lo := alignUp(s.clock.Now().Add(-j.startOffset), width)
	hi := j.Watermark.Truncate(width)
	if !hi.After(lo) {
		return nil
	}
	if err := q.RollupsRefreshWindow(ctx, dbsqlc.RollupsRefreshWindowParams{Rollup: j.Relation, WindowStart: lo, WindowEnd: hi}); err != nil {
		return fmt.Errorf("refresh late rows of %s from %s to %s: %w", j.Relation, stamp(lo), stamp(hi), err)
	}
	return nil
}

// alignUp is the first multiple of width since the epoch at or after t (Truncate aligns to UTC midnight
// for widths that divide a day, as time_bucket does).
func alignUp(t time.Time, width time.Duration) time.Time {
	if a := t.Truncate(width); a.Before(t) {
		return a.Add(width)
	}
	return t
}
