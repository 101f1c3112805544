package maintenance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Storage jobs are the work that keeps storage in shape: the refresh of each rollup tier, the
// compression of each raw hypertable (timescale flavor) and retention. In the timescale flavor
// TimescaleDB's job scheduler runs the refreshes and compressions (its policies), and its background
// jobs can fail for good while everything else looks healthy (on PostgreSQL 15.20 with TimescaleDB
// 2.28.3 every one fails with `cannot drop portal "" while it is being set up`): rollups stop being
// materialized, which real-time aggregation hides until long queries slow down, and chunks stop being
// compressed until the disk fills. So infrawatch watches every job, whoever runs it, and its scheduler
// role can run TimescaleDB's jobs itself (Config.TimescaleJobs):
//
//   - every check (each rollup refresh, every RefreshInterval) reads what the database says of each job
//     (infrawatch.storage_job_facts: TimescaleDB's record of its runs, the rollups' watermarks, the chunks
//     waiting for compression) with what infrawatch did (infrawatch.storage_jobs), decides who runs each
//     of TimescaleDB's jobs, runs those that are infrawatch's in bounded steps, and saves the state it
//     finds, logging a warning when a job's state changes, once;
//   - any process reads the same (Health): GET /api/v1/operator/health and the scheduler's /metrics.
//
// A job's state is ok; taken_over (infrawatch runs a TimescaleDB job because TimescaleDB's runs of it do
// not succeed; nothing is lost); lagging (its runs succeed but its rollup or compression is further
// behind than its schedule explains: catching up); failing (its runs fail, or nobody ran it for twice its
// interval); or unknown (no check yet, nothing says it works).
//
// Each kind of job is one file — job_refresh.go, job_compression.go, job_retention.go — holding a type
// that implements jobKind.
//
// Adding a kind of job:
//
//  1. List its jobs in infrawatch.storage_job_facts (a migration replacing the view in both flavors;
//     the timescale flavor's comes from infrawatch.timescale_job_facts), with what the database knows of
//     them.
//  2. Write its file: a type implementing jobKind (how far behind a job is; how infrawatch runs one
//     step of it, if it may take it over from TimescaleDB), and its tests beside it.
//  3. Register it in kinds and in the compile-time assertion list below.
//  4. Document it: the storage jobs in README.md (Storage flavors), with its metrics.

// Mode says who runs TimescaleDB's jobs, the rollups' refresh policies and the raw tables' compression
// policies (--timescale-jobs; the timescale flavor only: in the postgres flavor infrawatch runs every
// storage job).
type Mode string

const (
	// ModeAuto leaves a job to TimescaleDB while its runs succeed, and lets infrawatch's scheduler run
	// it once TimescaleDB's run of it has not succeeded for longer than twice its schedule interval; it
	// gives the job back once TimescaleDB's own run of it succeeds again.
	ModeAuto Mode = "auto"
	// ModeTimescaleDB leaves the jobs to TimescaleDB: infrawatch only reports on them.
	ModeTimescaleDB Mode = "timescaledb"
	// ModeInfrawatch makes infrawatch's scheduler run every job. TimescaleDB's policies stay scheduled
	// (infrawatch never changes their schedule); where they run too, the second run finds nothing to do.
	ModeInfrawatch Mode = "infrawatch"
)

// String and Set make a Mode a flag.Value.
func (m *Mode) String() string { return string(*m) }

func (m *Mode) Set(s string) error {
	if !Mode(s).valid() {
		return fmt.Errorf("want auto, timescaledb or infrawatch, got %q", s)
	}
	*m = Mode(s)
	return nil
}

func (m Mode) valid() bool { return m == ModeAuto || m == ModeTimescaleDB || m == ModeInfrawatch }

// Runner is who runs a job now.
type Runner string

const (
	RunnerTimescaleDB Runner = "timescaledb" // TimescaleDB's job scheduler, its policy
	RunnerInfrawatch  Runner = "infrawatch"  // infrawatch's scheduler role
)

// State is how a job is doing; see the top of this file.
type State string

const (
	StateOK        State = "ok"
	StateTakenOver State = "taken_over"
	StateLagging   State = "lagging"
	StateFailing   State = "failing"
	StateUnknown   State = "unknown"
)

// States lists every state, best first.
var States = []State{StateOK, StateTakenOver, StateLagging, StateUnknown, StateFailing}

// Job is one storage job as the operator sees it.
type Job struct {
	Name     string // refresh_samples_5m, compress_samples, retention, …
	Kind     string // refresh, compression or retention
	Relation string // the rollup or hypertable it works on; empty for retention
	Runner   Runner
	State    State
	// Problem says what is wrong and Advice what to do, when State is not ok.
	Problem, Advice string

	// Infrawatch are infrawatch's own runs of the job.
	Infrawatch Runs
	// TimescaleDB is TimescaleDB's job (policy) of the same work, in the timescale flavor; nil otherwise.
	TimescaleDB *TimescaleDBJob
	// TakenOverAt is when infrawatch took the job over from TimescaleDB (Runner infrawatch, timescale flavor).
	TakenOverAt *time.Time

	// Refresh jobs: buckets before Watermark are materialized (nil: none is, as far as anyone knows), and
	// WatermarkLag is the age of the oldest bucket not yet materialized, now minus Watermark.
	Watermark    *time.Time
	WatermarkLag *time.Duration
	// Compression jobs: the chunks older than the compression policy's compress_after that are not
	// compressed yet, and the end of the oldest of them.
	BacklogChunks    *int
	OldestBacklogEnd *time.Time

	// What the scheduler's last check saved.
	checkedAt     *time.Time
	checkInterval time.Duration
	mode          Mode
	silentSince   *time.Time // the first check that found no recent success of TimescaleDB's run
	oldestData    *time.Time // refresh, timescale: the start of the oldest chunk of the rollup's raw table
	savedState    State      // "" before the first check
	bucketWidth   time.Duration
	startOffset   time.Duration // TimescaleDB's refresh policy's window, before now
	endOffset     time.Duration
	compressAfter time.Duration
}

// Runs are the runs of a job by one runner.
type Runs struct {
	LastSuccess         *time.Time
	LastFailure         *time.Time
	ConsecutiveFailures int
	LastError           string
	// Every is how often the runner runs the job (infrawatch: its interval; TimescaleDB: the policy's
	// schedule interval).
	Every time.Duration
}

// TimescaleDBJob is TimescaleDB's job of the same work and its record of its runs.
type TimescaleDBJob struct {
	ID        int
	Scheduled bool // false: paused (alter_job(id, scheduled => false))
	Runs
	// FailingSince is the start of the oldest failed run after its last success (TimescaleDB keeps a
	// month of history).
	FailingSince *time.Time
}

// jobKind is one kind of storage job; see the top of this file.
type jobKind interface {
	// name is the kind as infrawatch.storage_job_facts names it.
	name() string
	// behind says how far behind the job is, beyond what its schedule explains: a problem and advice
	// when it is lagging, empty when it is not. Only called while the job's runs succeed.
	behind(j *Job, now time.Time) (problem, advice string)
	// step runs the job once in infrawatch's scheduler, in bounded steps, starting no step after
	// deadline (by the service's clock); through is how far a refresh got. Only for jobs TimescaleDB
	// would run (the kinds infrawatch may take over); the others run elsewhere in the service.
	step(ctx context.Context, s *Service, q *dbsqlc.Queries, j *Job, deadline time.Time) (through *time.Time, err error)
	// cost is what a job of this kind that does not run costs, for the advice.
	cost() string
}

// kinds holds every kind of job.
var kinds = []jobKind{refreshKind{}, compressionKind{}, retentionKind{}}

// Every kind implements jobKind, checked when the package compiles.
var (
	_ jobKind = refreshKind{}
	_ jobKind = compressionKind{}
	_ jobKind = retentionKind{}
)

func lookupKind(name string) jobKind {
	for _, k := range kinds {
		if k.name() == name {
			return k
		}
	}
	return nil
}

// readJobs reads every storage job: what the database says of it now and what the scheduler saved.
// States are not assessed yet (assess).
func readJobs(ctx context.Context, q *dbsqlc.Queries) ([]Job, error) {
	rows, err := q.StorageJobsRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("read storage jobs: %w", err)
	}
	jobs := make([]Job, 0, len(rows))
	for _, r := range rows {
		if lookupKind(r.Kind) == nil {
			return nil, fmt.Errorf("read storage jobs: %s is of an unknown kind %q", r.Job, r.Kind)
		}
		j := Job{Name: r.Job, Kind: r.Kind, Relation: deref(r.Relation), Watermark: r.Watermark,
			OldestBacklogEnd: r.OldestBacklogEnd, oldestData: r.OldestData, checkedAt: r.CheckedAt, TakenOverAt: r.TakenOverAt,
			silentSince: r.TimescaledbSilentSince, bucketWidth: deref(r.BucketWidth), startOffset: deref(r.StartOffset),
			endOffset: deref(r.EndOffset), compressAfter: deref(r.CompressAfter), checkInterval: deref(r.CheckInterval),
			mode: Mode(deref(r.Mode)), savedState: State(deref(r.State)),
			Infrawatch: Runs{LastSuccess: r.LastSuccess, LastFailure: r.LastFailure, ConsecutiveFailures: int(deref(r.ConsecutiveFailures)),
				LastError: deref(r.LastError), Every: deref(r.RunInterval)},
		}
		if r.BacklogChunks != nil {
			n := int(*r.BacklogChunks)
			j.BacklogChunks = &n
		}
		if r.DoneThrough != nil && (j.Watermark == nil || r.DoneThrough.After(*j.Watermark)) {
			j.Watermark = r.DoneThrough // infrawatch refreshed that far: a window without rows moves no watermark of TimescaleDB's
		}
		if r.TimescaledbJobID != nil {
			j.TimescaleDB = &TimescaleDBJob{ID: int(*r.TimescaledbJobID), Scheduled: deref(r.TimescaledbScheduled),
				FailingSince: r.TimescaledbFailingSince,
				Runs: Runs{LastSuccess: r.TimescaledbLastSuccess, ConsecutiveFailures: int(deref(r.TimescaledbConsecutiveFailures)),
					LastError: deref(r.TimescaledbLastError), Every: deref(r.ScheduleInterval)}}
			if j.TimescaleDB.ConsecutiveFailures > 0 {
				j.TimescaleDB.LastFailure = r.TimescaledbFailingSince // the first of them; TimescaleDB's last is not needed
			}
			// A successful policy run materialized its whole window, up to its end offset before it ran.
			if t := j.TimescaleDB.LastSuccess; t != nil && j.bucketWidth > 0 {
				through := t.Add(-j.endOffset).Truncate(j.bucketWidth)
				if j.Watermark == nil || through.After(*j.Watermark) {
					j.Watermark = &through
				}
			}
		}
		j.Runner = RunnerInfrawatch
		switch {
		case r.Runner != nil:
			j.Runner = Runner(*r.Runner)
		case j.TimescaleDB != nil:
			j.Runner = RunnerTimescaleDB // until the scheduler decides otherwise
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// overdue says whether TimescaleDB's run of the job has not succeeded for longer than twice its
// schedule interval, and since when it has not: its last success, or when it has never succeeded, its
// first recorded failure or else the first check that found it silent.
func (t *TimescaleDBJob) overdue(now time.Time, silentSince *time.Time) (bool, *time.Time) {
	since := t.LastSuccess
	if since == nil {
		since = t.FailingSince
	}
	if since == nil {
		since = silentSince
	}
	return since != nil && now.Sub(*since) > 2*t.Every, since
}

// succeeding says whether TimescaleDB's run of the job succeeded within twice its schedule interval.
func (t *TimescaleDBJob) succeeding(now time.Time) bool {
	return t.LastSuccess != nil && now.Sub(*t.LastSuccess) <= 2*t.Every
}

// assess sets the job's state, problem and advice as of now.
func (j *Job) assess(now time.Time) {
	kind := lookupKind(j.Kind)
	j.State, j.Problem, j.Advice = StateOK, "", ""
	j.WatermarkLag = nil
	switch {
	case j.Watermark != nil:
		lag := now.Sub(*j.Watermark)
		j.WatermarkLag = &lag
	case j.Kind == "refresh" && j.TimescaleDB != nil:
		// Nothing materialized: the oldest bucket waiting is the oldest data the policy's window reaches,
		// and with no data nothing waits.
		var lag time.Duration
		if j.oldestData != nil {
			lag = now.Sub(later(*j.oldestData, now.Add(-j.startOffset)))
		}
		j.WatermarkLag = &lag
	}
	if j.Runner == RunnerTimescaleDB {
		j.assessTimescaleDB(now, kind)
	} else {
		j.assessInfrawatch(now, kind)
	}
	if j.State != StateOK {
		return
	}
	if problem, advice := kind.behind(j, now); problem != "" {
		j.State, j.Problem, j.Advice = StateLagging, problem, advice
		return
	}
	if t := j.TimescaleDB; t != nil && j.Runner == RunnerInfrawatch {
		j.State = StateTakenOver
		j.Problem = j.timescaleDBProblem(now)
		j.Advice = "Nothing is lost: infrawatch's scheduler runs it"
		if j.TakenOverAt != nil {
			j.Advice += " since " + stamp(*j.TakenOverAt)
		}
		if j.mode == ModeInfrawatch {
			j.Advice += " (--timescale-jobs=infrawatch)."
		} else {
			j.Advice += " (--timescale-jobs=auto) and gives it back once TimescaleDB's own run of it succeeds again."
		}
		j.Advice += fmt.Sprintf(" To fix TimescaleDB's background jobs, read timescaledb_information.job_errors; "+
			"SELECT alter_job(%d, next_start => now()) makes it try again.", t.ID)
	}
}

// assessTimescaleDB judges a job that TimescaleDB runs by TimescaleDB's record of its runs: failing
// from its first failure on record (or once paused, or silent for twice its interval) until it succeeds.
func (j *Job) assessTimescaleDB(now time.Time, kind jobKind) {
	t := j.TimescaleDB
	overdue, since := t.overdue(now, j.silentSince)
	if !overdue && t.Scheduled && t.ConsecutiveFailures == 0 {
		if t.LastSuccess == nil {
			j.State, j.Problem = StateUnknown, fmt.Sprintf("TimescaleDB's job %d has no run on record yet.", t.ID)
			j.Advice = "Nothing to do unless this stays: infrawatch's scheduler checks it every minute."
		}
		return
	}
	j.State, j.Problem = StateFailing, j.timescaleDBProblem(now)
	switch {
	case j.mode == ModeAuto && !overdue && since != nil:
		j.Advice = fmt.Sprintf("infrawatch's scheduler (--timescale-jobs=auto) takes it over at %s unless TimescaleDB's "+
			"run of it succeeds before.", stamp(since.Add(2*t.Every)))
	case j.mode == ModeAuto:
		j.Advice = "infrawatch's scheduler (--timescale-jobs=auto) takes it over at its next check; if this stays, " +
			"check that a process with --roles scheduler runs."
	default:
		j.Advice = fmt.Sprintf("Run the scheduler role with --timescale-jobs=auto (or infrawatch) so that infrawatch runs "+
			"it, or fix TimescaleDB's background jobs (timescaledb_information.job_errors). Until then %s.", kind.cost())
	}
}

// timescaleDBProblem says how TimescaleDB's job of the work is failing.
func (j *Job) timescaleDBProblem(now time.Time) string {
	t := j.TimescaleDB
	what := fmt.Sprintf("TimescaleDB's background job %d (%s of %s)", t.ID, j.Kind, j.Relation)
	_, since := t.overdue(now, j.silentSince)
	var p string
	switch {
	case !t.Scheduled:
		p = what + " is paused (scheduled => false)"
	case t.LastSuccess == nil:
		p = what + " has never succeeded"
	default:
		p = what + " has not succeeded since " + stamp(*t.LastSuccess)
	}
	if t.LastSuccess == nil && since != nil {
		p += " (failing or silent since " + stamp(*since) + ")"
	}
	if t.ConsecutiveFailures > 0 {
		p += fmt.Sprintf("; its last %d runs failed", t.ConsecutiveFailures)
	}
	if t.LastError != "" {
		p += ": " + t.LastError
	}
	return p + "."
}

// assessInfrawatch judges a job that infrawatch runs by infrawatch's record of its runs.
func (j *Job) assessInfrawatch(now time.Time, kind jobKind) {
	r := j.Infrawatch
	switch {
	case r.ConsecutiveFailures > 0:
		j.State = StateFailing
		j.Problem = fmt.Sprintf("infrawatch's last %d runs of it failed: %s.", r.ConsecutiveFailures, r.LastError)
		j.Advice = "See the scheduler's log (\"maintenance … failed\"); infrawatch tries again at every pass. Until it succeeds " +
			kind.cost() + "."
	case r.LastSuccess == nil:
		j.State = StateUnknown
		j.Problem = "infrawatch has not run it yet."
		j.Advice = "Check that a process with --roles scheduler runs; it runs the job within a minute of its start."
	case r.Every > 0 && now.Sub(*r.LastSuccess) > 2*r.Every+time.Minute:
		j.State = StateFailing
		j.Problem = fmt.Sprintf("infrawatch has not run it since %s (it runs every %s).", stamp(*r.LastSuccess), r.Every)
		j.Advice = "Check that a process with --roles scheduler runs and reaches the database. Until it does " + kind.cost() + "."
	}
}

// LastSuccess is the job's most recent success, whoever ran it.
func (j *Job) LastSuccess() *time.Time {
	last := j.Infrawatch.LastSuccess
	if t := j.TimescaleDB; t != nil && t.LastSuccess != nil && (last == nil || t.LastSuccess.After(*last)) {
		last = t.LastSuccess
	}
	return last
}

// ConsecutiveFailures counts the failed runs in a row of the runner now in charge.
func (j *Job) ConsecutiveFailures() int {
	if j.Runner == RunnerTimescaleDB && j.TimescaleDB != nil {
		return j.TimescaleDB.ConsecutiveFailures
	}
	return j.Infrawatch.ConsecutiveFailures
}

// errText is err's message for the record, nil for no error.
func errText(err error) *string {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out: " + msg
	}
	return &msg
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
