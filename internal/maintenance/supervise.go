package maintenance

import (
	"context"
	"fmt"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// checkJobs is the scheduler's check of the storage jobs (see jobs.go), after each rollup refresh, on a
// connection that holds the maintenance lock: it records the refresh that just ran (postgres flavor),
// decides who runs each of TimescaleDB's jobs (Config.TimescaleJobs), runs those that are infrawatch's,
// a bounded step each (in auto mode it also materializes the late rows below the watermark of the
// refreshes TimescaleDB runs), then reads every job again, assesses it, logs each state that changed,
// once, and saves what it found. refreshErr is the outcome of the refresh of the postgres flavor's rollups.
func (s *Service) checkJobs(ctx context.Context, q *dbsqlc.Queries, refreshErr error) error {
	now := s.clock.Now()
	jobs, err := readJobs(ctx, q)
	if err != nil {
		return err
	}
	for i := range jobs {
		j := &jobs[i]
		if j.Kind == "refresh" && j.TimescaleDB == nil { // postgres flavor: RefreshOnce's refresh_rollups ran it
			if err := s.recordRun(ctx, q, j.Name, s.cfg.RefreshInterval, now, refreshErr, nil); err != nil {
				return err
			}
			continue
		}
		if j.TimescaleDB == nil {
			continue
		}
		s.decideRunner(j, now)
		if err := s.saveCheck(ctx, q, j, now, j.savedState); err != nil {
			return err
		}
		if j.Runner != RunnerInfrawatch {
			if j.Kind == "refresh" && s.cfg.TimescaleJobs == ModeAuto {
				if err := (refreshKind{}).lateRows(ctx, s, q, j); err != nil {
					if ctx.Err() != nil {
						return err
					}
					s.log.Warn("late samples not materialized yet", "job", j.Name, "err", err)
				}
			}
			continue
		}
		through, err := lookupKind(j.Kind).step(ctx, s, q, j, now.Add(s.cfg.RefreshInterval))
		if err != nil && ctx.Err() != nil {
			return err // stopped or out of time: not the job's failure
		}
		if err := s.recordRun(ctx, q, j.Name, s.cfg.RefreshInterval, s.clock.Now(), err, through); err != nil {
			return err
		}
	}

	// What the work changed, assessed.
	now = s.clock.Now()
	if jobs, err = readJobs(ctx, q); err != nil {
		return err
	}
	for i := range jobs {
		j := &jobs[i]
		j.mode = s.cfg.TimescaleJobs
		j.assess(now)
		if j.State != j.savedState {
			s.logState(j)
		}
		if err := s.saveCheck(ctx, q, j, now, j.State); err != nil {
			return err
		}
	}
	return nil
}

// decideRunner decides who runs one of TimescaleDB's jobs now, by the mode: in auto, infrawatch takes
// the job once TimescaleDB's run of it has not succeeded for twice its schedule interval, and gives it
// back once TimescaleDB's own run has succeeded since (a run of TimescaleDB's scheduler, which is what
// its record counts: CALL run_job in a session leaves no record).
func (s *Service) decideRunner(j *Job, now time.Time) {
	t := j.TimescaleDB
	if t.succeeding(now) {
		j.silentSince = nil
	} else if j.silentSince == nil {
		j.silentSince = &now
	}
	takeOver := func(why string) {
		if j.Runner == RunnerInfrawatch {
			return
		}
		j.Runner, j.TakenOverAt = RunnerInfrawatch, &now
		s.log.Warn("infrawatch takes over a TimescaleDB job", "job", j.Name, "timescaledb_job", t.ID, "why", why,
			"problem", j.timescaleDBProblem(now))
	}
	giveBack := func(why string) {
		if j.Runner == RunnerTimescaleDB {
			return
		}
		j.Runner, j.TakenOverAt = RunnerTimescaleDB, nil
		s.log.Info("infrawatch gives a job back to TimescaleDB", "job", j.Name, "timescaledb_job", t.ID, "why", why)
	}
	switch s.cfg.TimescaleJobs {
	case ModeInfrawatch:
		takeOver("--timescale-jobs=infrawatch")
	case ModeTimescaleDB:
		giveBack("--timescale-jobs=timescaledb")
	default:
		if overdue, _ := t.overdue(now, j.silentSince); overdue {
			takeOver(fmt.Sprintf("TimescaleDB's run has not succeeded for longer than twice its interval (%s)", t.Every))
		} else if j.TakenOverAt != nil && t.succeeding(now) && t.LastSuccess.After(*j.TakenOverAt) {
			giveBack("TimescaleDB's own run succeeded again at " + stamp(*t.LastSuccess))
		}
	}
}

// logState logs a job's new state: a warning when something is wrong, else that it is fine again.
func (s *Service) logState(j *Job) {
	if j.State == StateOK {
		if j.savedState != "" {
			s.log.Info("storage job is fine again", "job", j.Name, "was", j.savedState, "runner", j.Runner)
		}
		return
	}
	s.log.Warn("storage job "+string(j.State), "job", j.Name, "was", j.savedState, "runner", j.Runner,
		"problem", j.Problem, "advice", j.Advice)
}

func (s *Service) saveCheck(ctx context.Context, q *dbsqlc.Queries, j *Job, now time.Time, state State) error {
	mode, st := string(s.cfg.TimescaleJobs), string(state)
	var statePtr *string
	if st != "" {
		statePtr = &st
	}
	err := q.StorageJobSaveCheck(ctx, dbsqlc.StorageJobSaveCheckParams{Job: j.Name, Runner: string(j.Runner), Mode: &mode,
		CheckedAt: &now, CheckInterval: s.cfg.RefreshInterval, TakenOverAt: j.TakenOverAt,
		TimescaledbSilentSince: j.silentSince, State: statePtr})
	if err != nil {
		return fmt.Errorf("save the check of storage job %s: %w", j.Name, err)
	}
	return nil
}

// recordRun records one run of a job by infrawatch, at, every how often it runs, its error, and for a
// refresh how far it got. Its error is only the recording's.
func (s *Service) recordRun(ctx context.Context, q *dbsqlc.Queries, job string, every time.Duration, at time.Time,
	runErr error, through *time.Time) error {
	err := q.StorageJobRecordRun(ctx, dbsqlc.StorageJobRecordRunParams{Job: job, RunInterval: every, At: at,
		Error: errText(runErr), DoneThrough: through})
	if err != nil {
		return fmt.Errorf("record a run of storage job %s: %w", job, err)
	}
	if runErr != nil {
		// Not an error of the check: the job's state says so, logged once when it changes.
		s.log.Debug("storage job run failed", "job", job, "err", runErr)
	}
	return nil
}
