package maintenance

import (
	"strings"
	"testing"
	"time"
)

// A job's state, problem and advice follow from its record alone: who runs it, how that runner's runs
// went, and how far behind its rollup or compression is.
func TestAssessSaysWhatIsWrongAndWhatToDo(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { at := now.Add(-d); return &at }
	const portal = `cannot drop portal "" while it is being set up`
	// refresh5m is the 5-minute tier with TimescaleDB's policy (end offset 5m, every 5m).
	refresh5m := func(edit func(j *Job)) Job {
		j := Job{Name: "refresh_samples_5m", Kind: "refresh", Relation: "ts.samples_5m", Runner: RunnerTimescaleDB,
			bucketWidth: 5 * time.Minute, endOffset: 5 * time.Minute, startOffset: 30 * day, mode: ModeAuto,
			TimescaleDB: &TimescaleDBJob{ID: 1003, Scheduled: true, Runs: Runs{Every: 5 * time.Minute, LastSuccess: ago(3 * time.Minute)}},
			Watermark:   ago(10 * time.Minute), Infrawatch: Runs{Every: time.Minute}}
		if edit != nil {
			edit(&j)
		}
		return j
	}
	failingTimescaleDB := func(j *Job) {
		j.TimescaleDB.LastSuccess, j.TimescaleDB.ConsecutiveFailures, j.TimescaleDB.LastError = nil, 3, portal
		j.TimescaleDB.FailingSince, j.Watermark = ago(2*time.Minute), nil
	}
	takenOver := func(j *Job) {
		failingTimescaleDB(j)
		j.Runner, j.TakenOverAt, j.TimescaleDB.FailingSince = RunnerInfrawatch, ago(time.Hour), ago(2*time.Hour)
		j.Infrawatch.LastSuccess, j.Watermark = ago(30*time.Second), ago(5*time.Minute)
	}
	for _, tc := range []struct {
		name              string
		job               Job
		state             State
		problem, advice   []string // substrings
		lag               time.Duration
		noLag             bool
		consecutiveFailed int
	}{
		{name: "TimescaleDB's runs succeed and keep up", job: refresh5m(nil), state: StateOK, lag: 10 * time.Minute},
		{name: "TimescaleDB's runs fail, auto waits twice the interval",
			job:   refresh5m(failingTimescaleDB),
			state: StateFailing, consecutiveFailed: 3,
			problem: []string{"TimescaleDB's background job 1003 (refresh of ts.samples_5m) has never succeeded", "its last 3 runs failed", portal},
			advice:  []string{"(--timescale-jobs=auto) takes it over at 2030-01-01T12:08:00Z"}},
		{name: "TimescaleDB's runs fail and timescaledb mode only reports",
			job:   refresh5m(func(j *Job) { failingTimescaleDB(j); j.mode = ModeTimescaleDB }),
			state: StateFailing, consecutiveFailed: 3,
			problem: []string{portal},
			advice:  []string{"--timescale-jobs=auto (or infrawatch)", "timescaledb_information.job_errors", "aggregated from the tier below at query time only"}},
		{name: "TimescaleDB's job paused",
			job: refresh5m(func(j *Job) {
				j.TimescaleDB.Scheduled, j.TimescaleDB.LastSuccess, j.Watermark = false, nil, nil
			}),
			state: StateFailing, problem: []string{"job 1003 (refresh of ts.samples_5m) is paused (scheduled => false)"},
			lag: 0}, // no data: nothing waits
		{name: "TimescaleDB's job has not run yet",
			job:   refresh5m(func(j *Job) { j.TimescaleDB.LastSuccess, j.Watermark, j.oldestData = nil, nil, ago(40*day) }),
			state: StateUnknown, problem: []string{"no run on record yet"},
			lag: 30 * day}, // materialized nothing, data older than the policy's window: the window's start waits
		{name: "taken over: nothing lost",
			job:     refresh5m(takenOver),
			state:   StateTakenOver,
			problem: []string{"has never succeeded (failing or silent since 2030-01-01T10:00:00Z)", portal},
			advice:  []string{"Nothing is lost", "since 2030-01-01T11:00:00Z (--timescale-jobs=auto)", "gives it back", "alter_job(1003, next_start => now())"},
			lag:     5 * time.Minute},
		{name: "taken over, and infrawatch's runs fail",
			job: refresh5m(func(j *Job) {
				takenOver(j)
				j.Infrawatch.ConsecutiveFailures, j.Infrawatch.LastError = 2, "refresh ts.samples_5m: statement timed out"
			}),
			state: StateFailing, consecutiveFailed: 2,
			problem: []string{"infrawatch's last 2 runs of it failed: refresh ts.samples_5m: statement timed out"},
			advice:  []string{"scheduler's log"}, lag: 5 * time.Minute},
		{name: "taken over, and the scheduler stopped",
			job:   refresh5m(func(j *Job) { takenOver(j); j.Infrawatch.LastSuccess = ago(10 * time.Minute) }),
			state: StateFailing, problem: []string{"infrawatch has not run it since 2030-01-01T11:50:00Z (it runs every 1m0s)"},
			advice: []string{"--roles scheduler"}, lag: 5 * time.Minute},
		{name: "TimescaleDB's runs succeed but do not keep up",
			job:     refresh5m(func(j *Job) { j.Watermark = ago(3 * time.Hour) }),
			state:   StateLagging,
			problem: []string{"ts.samples_5m is materialized up to 2030-01-01T09:00:00Z, 3h0m0s behind (at most 21m0s expected)"},
			advice:  []string{"last_run_duration"}, lag: 3 * time.Hour},
		{name: "compression catching up",
			job: Job{Name: "compress_samples", Kind: "compression", Relation: "ts.samples", Runner: RunnerInfrawatch, mode: ModeAuto,
				compressAfter: 7 * day, BacklogChunks: new(9), OldestBacklogEnd: ago(16 * day),
				TimescaleDB: &TimescaleDBJob{ID: 1000, Scheduled: true, Runs: Runs{Every: 12 * time.Hour, ConsecutiveFailures: 1}, FailingSince: ago(2 * day)},
				Infrawatch:  Runs{Every: time.Minute, LastSuccess: ago(time.Minute)}},
			state:   StateLagging,
			problem: []string{"9 chunks of ts.samples older than 7d are not compressed; the oldest has waited since 2029-12-23T12:00:00Z"},
			advice:  []string{"at most 4 chunks per pass"}, noLag: true},
		{name: "postgres flavor's refresh keeps up",
			job: Job{Name: "refresh_samples_1d", Kind: "refresh", Relation: "ts.samples_1d", Runner: RunnerInfrawatch, bucketWidth: day,
				Watermark: ago(12 * time.Hour), Infrawatch: Runs{Every: time.Minute, LastSuccess: ago(time.Minute)}},
			state: StateOK, lag: 12 * time.Hour},
		{name: "retention never ran",
			job:   Job{Name: "retention", Kind: "retention", Runner: RunnerInfrawatch},
			state: StateUnknown, problem: []string{"infrawatch has not run it yet"}, noLag: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := tc.job
			j.assess(now)
			if j.State != tc.state {
				t.Fatalf("state %s (problem %q), want %s", j.State, j.Problem, tc.state)
			}
			if (j.State == StateOK) != (j.Problem == "" && j.Advice == "") {
				t.Errorf("state %s with problem %q and advice %q: want both exactly when not ok", j.State, j.Problem, j.Advice)
			}
			for _, want := range tc.problem {
				if !strings.Contains(j.Problem, want) {
					t.Errorf("problem %q lacks %q", j.Problem, want)
				}
			}
			for _, want := range tc.advice {
				if !strings.Contains(j.Advice, want) {
					t.Errorf("advice %q lacks %q", j.Advice, want)
				}
			}
			switch {
			case tc.noLag && j.WatermarkLag != nil:
				t.Errorf("watermark lag %s, want none", *j.WatermarkLag)
			case !tc.noLag && (j.WatermarkLag == nil || *j.WatermarkLag != tc.lag):
				t.Errorf("watermark lag %v, want %s", j.WatermarkLag, tc.lag)
			}
			if got := j.ConsecutiveFailures(); got != tc.consecutiveFailed {
				t.Errorf("consecutive failures of the runner in charge = %d, want %d", got, tc.consecutiveFailed)
			}
		})
	}
}
