package maintenance

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// The error every TimescaleDB background job fails with on PostgreSQL 15.20 with TimescaleDB 2.28.3.
const portalError = `cannot drop portal "" while it is being set up`

// syncBuffer is a log the service writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// count counts the log lines that hold every one of parts.
func (b *syncBuffer) count(parts ...string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for line := range strings.SplitSeq(b.b.String(), "\n") {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			n++
		}
	}
	return n
}

// storageTest is a maintenance service on a fake clock over a database of its own, with a Health on
// the same clock, as an operator's process would read it.
type storageTest struct {
	t      *testing.T
	d      *dbtest.DB
	svc    *Service
	clock  *fakeClock
	health *Health
	logs   *syncBuffer
	next   time.Duration // until the service's next wake-up
}

// startStorageTest starts the service; it has done its first storage pass and check when this returns.
func startStorageTest(t *testing.T, d *dbtest.DB, cfg Config) *storageTest {
	t.Helper()
	st := &storageTest{t: t, d: d, clock: &fakeClock{now: time.Now()}, logs: &syncBuffer{}}
	st.svc = New(cfg, d.System(), slog.New(slog.NewTextHandler(st.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	st.svc.clock = st.clock
	st.svc.signals.init()
	st.health = NewHealth(d.System())
	st.health.now = st.clock.Now
	if err := st.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.svc.Stop)
	st.wake(0)
	return st
}

// wake moves the clock by d, at least to the service's next wake-up, and waits for what it did then:
// a rollup refresh with its check of the storage jobs, and a storage pass if one was due.
func (st *storageTest) wake(d time.Duration) woke {
	st.t.Helper()
	w := wake(st.t, st.svc, st.clock, max(d, st.next))
	if slices.Contains(w.refreshes, false) || len(w.refreshes) == 0 {
		st.t.Fatalf("the service's refreshes at a wake-up: %v, want one that ran", w.refreshes)
	}
	st.next = w.next
	return w
}

// runFor wakes the service at each of its wake-ups until d has passed.
func (st *storageTest) runFor(d time.Duration) {
	st.t.Helper()
	for end := st.clock.Now().Add(d); st.clock.Now().Before(end); {
		st.wake(0)
	}
}

func (st *storageTest) report() Report {
	st.t.Helper()
	rep, err := st.health.Report(context.Background())
	if err != nil {
		st.t.Fatalf("health report: %v", err)
	}
	return rep
}

func (st *storageTest) job(name string) Job {
	st.t.Helper()
	rep := st.report()
	for _, j := range rep.Jobs {
		if j.Name == name {
			return j
		}
	}
	st.t.Fatalf("no storage job %s in %v", name, rep.Jobs)
	panic("unreachable")
}

// scrape reads the storage job metrics as /metrics serves them: "name{label=\"value\",…}" → value.
func (st *storageTest) scrape() map[string]float64 {
	st.t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(st.health.Collector())
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := map[string]float64{}
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			st.t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// metric is the value of one series of scrape, failing the test when it is missing.
func metric(t *testing.T, m map[string]float64, series string) float64 {
	t.Helper()
	v, ok := m[series]
	if !ok {
		t.Fatalf("/metrics lacks %s", series)
	}
	return v
}

// timescaleDB returns a timescale-flavor database whose TimescaleDB refresh and compression jobs are
// paused and have no run on record, and their ids by storage job name, so that the test alone says what
// TimescaleDB's scheduler did: here its jobs fail for real, elsewhere they may succeed. It skips the test
// when the server has no TimescaleDB.
func timescaleDB(t *testing.T) (*dbtest.DB, map[string]int) {
	t.Helper()
	if !slices.Contains(dbtest.Flavors(t), db.FlavorTimescale) {
		t.Skip("TimescaleDB is not available on the test server: taking over its jobs is a matter of the timescale flavor only")
	}
	d := dbtest.New(t, db.FlavorTimescale)
	ctx := context.Background()
	for _, stmt := range []string{
		`SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs
		  WHERE proc_name IN ('policy_refresh_continuous_aggregate', 'policy_compression')`,
		`DELETE FROM _timescaledb_internal.bgw_job_stat_history WHERE job_id >= 1000`,
		`DELETE FROM _timescaledb_internal.bgw_job_stat WHERE job_id >= 1000`,
	} {
		if _, err := d.Pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("silence TimescaleDB's jobs: %s: %v", stmt, err)
		}
	}
	ids := map[string]int{}
	rows, err := d.Pool.Query(ctx, `SELECT job, timescaledb_job_id FROM infrawatch.storage_job_facts WHERE timescaledb_job_id IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var id int
		if err := rows.Scan(&name, &id); err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	if rows.Err() != nil || len(ids) != 8 {
		t.Fatalf("TimescaleDB's jobs: %v (%v), want 5 refresh and 3 compression policies", ids, rows.Err())
	}
	return d, ids
}

// recordTimescaleDBRun writes one run of TimescaleDB's job id into its record, as TimescaleDB's
// scheduler does: a failure with message msg, or a success when msg is empty.
func recordTimescaleDBRun(t *testing.T, d *dbtest.DB, id int, at time.Time, msg string) {
	t.Helper()
	ok := msg == ""
	_, err := d.Pool.Exec(context.Background(), `
	    WITH history AS (
	        INSERT INTO _timescaledb_internal.bgw_job_stat_history (job_id, pid, execution_start, execution_finish, succeeded, data)
	        VALUES ($1, 0, $2, $2, $3, CASE WHEN $3 THEN '{}' ELSE jsonb_build_object('error_data', jsonb_build_object('message', $4::text)) END))
	    INSERT INTO _timescaledb_internal.bgw_job_stat AS s (job_id, last_start, last_finish, next_start, last_successful_finish,
	        last_run_success, total_runs, total_duration, total_duration_failures, total_successes, total_failures, total_crashes,
	        consecutive_failures, consecutive_crashes)
	    VALUES ($1, $2, $2, $2 + interval '1 hour', CASE WHEN $3 THEN $2 ELSE '-infinity' END, $3, 1, '0', '0', $3::int,
	            (NOT $3)::int, 0, (NOT $3)::int, 0)
	    ON CONFLICT (job_id) DO UPDATE
	       SET last_start = $2, last_finish = $2,
	           last_successful_finish = CASE WHEN $3 THEN $2 ELSE s.last_successful_finish END, last_run_success = $3,
	           total_runs = s.total_runs + 1, total_successes = s.total_successes + $3::int,
	           total_failures = s.total_failures + (NOT $3)::int,
	           consecutive_failures = CASE WHEN $3 THEN 0 ELSE s.consecutive_failures + 1 END`, id, at, ok, msg)
	if err != nil {
		t.Fatalf("record a run of TimescaleDB's job %d: %v", id, err)
	}
}

// insertSamples writes a sample a minute for series from from to to (real time, as the database's).
func insertSamples(t *testing.T, d *dbtest.DB, tenant uuid.UUID, series int64, from, to time.Time) {
	t.Helper()
	_, err := d.Pool.Exec(context.Background(), `INSERT INTO ts.samples (time, tenant_id, series_id, value)
	    SELECT g, $1, $2, extract(epoch FROM g) / 60 % 97 FROM generate_series($3::timestamptz, $4::timestamptz, interval '1 minute') g`,
		tenant, series, from, to)
	if err != nil {
		t.Fatalf("insert samples: %v", err)
	}
}

type agg struct {
	count int64
	sum   float64
}

// rawBuckets aggregates series' raw samples into buckets of width that end by upto: what a rollup must
// hold, computed with date_bin from the raw rows, apart from TimescaleDB.
func rawBuckets(t *testing.T, d *dbtest.DB, series int64, width time.Duration, upto time.Time) map[time.Time]agg {
	t.Helper()
	return readAggs(t, d, `SELECT date_bin($2::interval, time, 'epoch') AS b, count(*), sum(value) FROM ts.samples
	                        WHERE series_id = $1 GROUP BY 1 HAVING date_bin($2::interval, time, 'epoch') + $2::interval <= $3`,
		series, width, upto)
}

// materialized reads series' buckets from the rollup's materialization hypertable: what TimescaleDB
// materialized, without real-time aggregation's help.
func materialized(t *testing.T, d *dbtest.DB, rollup string, series int64) map[time.Time]agg {
	t.Helper()
	var table string
	err := d.Pool.QueryRow(context.Background(), `SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
	    FROM timescaledb_information.continuous_aggregates WHERE format('%I.%I', view_schema, view_name)::regclass = $1::regclass`,
		rollup).Scan(&table)
	if err != nil {
		t.Fatalf("find the materialization of %s: %v", rollup, err)
	}
	return readAggs(t, d, `SELECT bucket, count, sum FROM `+table+` WHERE series_id = $1`, series)
}

func readAggs(t *testing.T, d *dbtest.DB, query string, args ...any) map[time.Time]agg {
	t.Helper()
	rows, err := d.Pool.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[time.Time]agg{}
	for rows.Next() {
		var b time.Time
		var a agg
		if err := rows.Scan(&b, &a.count, &a.sum); err != nil {
			t.Fatal(err)
		}
		out[b.UTC()] = a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// keepsUp checks that every bucket of series the rollup should have materialized by the clock's now
// (its policy's end offset before) is materialized, with the raw rows' count and sum.
func (st *storageTest) keepsUp(rollup string, series int64, width, endOffset time.Duration) {
	st.t.Helper()
	upto := st.clock.Now().Add(-endOffset).Truncate(width)
	want, got := rawBuckets(st.t, st.d, series, width, upto), materialized(st.t, st.d, rollup, series)
	if len(want) == 0 {
		st.t.Fatalf("%s: no raw bucket to compare", rollup)
	}
	for b, w := range want {
		if g, ok := got[b]; !ok || g.count != w.count || g.sum != w.sum {
			st.t.Errorf("%s bucket %s materialized as %+v (present %v), want %+v from the raw rows", rollup, stamp(b), g, ok, w)
		}
	}
}

// In auto mode the scheduler takes a TimescaleDB job over once TimescaleDB's run of it has not succeeded
// for twice its interval, each job on its own schedule, and then the rollups keep up: every bucket is
// materialized, a late sample included, and old chunks are compressed. The operator endpoint's report
// and /metrics say who runs what and why, and the log says it once per change.
func TestAutoTakesOverTimescaleJobsThatFail(t *testing.T) {
	d, ids := timescaleDB(t)
	tenant := uuid.New()
	realNow := time.Now().Truncate(time.Minute)
	insertSamples(t, d, tenant, 1, realNow.Add(-3*time.Hour), realNow.Add(-10*time.Minute))
	insertSamples(t, d, tenant, 1, realNow.Add(-9*day), realNow.Add(-9*day+time.Hour)) // a chunk for compression
	st := startStorageTest(t, d, Config{TimescaleJobs: ModeAuto})
	// The 5-minute tier's job fails as every TimescaleDB job does on this project's machine.
	recordTimescaleDBRun(t, d, ids["refresh_samples_5m"], st.clock.Now().Add(-time.Minute), portalError)

	// At first TimescaleDB runs everything, and its failing 5-minute job and paused others are reported.
	st.wake(0)
	j := st.job("refresh_samples_5m")
	if j.Runner != RunnerTimescaleDB || j.State != StateFailing || !strings.Contains(j.Problem, portalError) ||
		!strings.Contains(j.Advice, "takes it over at") {
		t.Fatalf("a minute after its failure, the 5-minute tier: %s, %s: %q / %q; want TimescaleDB's, failing, with its error and "+
			"when infrawatch takes it over", j.Runner, j.State, j.Problem, j.Advice)
	}
	if n := len(materialized(t, d, "ts.samples_5m", 1)); n != 0 {
		t.Fatalf("%d buckets materialized before any takeover", n)
	}

	// Twice its interval (5 minutes) after its failure, infrawatch takes the 5-minute tier over, and
	// only that tier: the hourly tiers' jobs run every 30 minutes, the daily ones every hour.
	st.runFor(10 * time.Minute)
	for name := range ids {
		want := RunnerTimescaleDB
		if name == "refresh_samples_5m" {
			want = RunnerInfrawatch
		}
		if got := st.job(name).Runner; got != want {
			t.Errorf("after 10 minutes %s runs %s, want %s", name, got, want)
		}
	}
	st.keepsUp("ts.samples_5m", 1, 5*time.Minute, 5*time.Minute)
	if j := st.job("refresh_samples_5m"); j.State != StateTakenOver || !strings.Contains(j.Problem, portalError) ||
		!strings.Contains(j.Advice, "Nothing is lost") {
		t.Errorf("the 5-minute tier taken over: %s: %q / %q", j.State, j.Problem, j.Advice)
	}

	// A day later every job is infrawatch's (the compression jobs run every 12 hours), every tier keeps
	// up and the old chunk is compressed.
	st.wake(25 * time.Hour)
	rep := st.report()
	if rep.Status != "degraded" || rep.Flavor != "timescale" || rep.Scheduler.Mode != ModeAuto || rep.Scheduler.Problem != "" {
		t.Errorf("report: status %s, flavor %s, scheduler %+v; want degraded (taken over), timescale, auto, checking", rep.Status,
			rep.Flavor, rep.Scheduler)
	}
	for _, j := range rep.Jobs {
		want := StateTakenOver
		if j.Kind == "retention" {
			want = StateOK
		}
		if j.State != want {
			t.Errorf("a day later %s is %s (%s runs it): %q; want %s", j.Name, j.State, j.Runner, j.Problem, want)
		}
	}
	st.keepsUp("ts.samples_5m", 1, 5*time.Minute, 5*time.Minute)
	st.keepsUp("ts.samples_1h", 1, time.Hour, time.Hour)
	st.keepsUp("ts.samples_1d", 1, day, 3*time.Hour)
	if j := st.job("compress_samples"); j.BacklogChunks == nil || *j.BacklogChunks != 0 {
		t.Errorf("compression backlog of ts.samples: %v, want 0", j.BacklogChunks)
	}
	var compressed int
	if err := d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM timescaledb_information.chunks
	      WHERE hypertable_name = 'samples' AND is_compressed AND range_end < $1`, realNow.Add(-7*day)).Scan(&compressed); err != nil || compressed != 1 {
		t.Errorf("compressed chunks of ts.samples older than 7 days: %d (%v), want 1", compressed, err)
	}

	// A sample that arrives late for a materialized bucket is in the materialized 5-minute and hourly
	// tiers after the next check.
	late := realNow.Add(-2*time.Hour - 30*time.Second)
	if _, err := d.Pool.Exec(context.Background(), `INSERT INTO ts.samples VALUES ($1, $2, 1, 1000)`, late, tenant); err != nil {
		t.Fatal(err)
	}
	st.wake(0)
	st.keepsUp("ts.samples_5m", 1, 5*time.Minute, 5*time.Minute)
	st.keepsUp("ts.samples_1h", 1, time.Hour, time.Hour)
	if got := materialized(t, d, "ts.samples_5m", 1)[late.Truncate(5*time.Minute).UTC()]; got.count != 6 {
		t.Errorf("the late sample's bucket holds %d samples, want 6", got.count)
	}

	// /metrics says the same.
	m := st.scrape()
	for _, name := range []string{"refresh_samples_5m", "refresh_samples_1d", "compress_samples"} {
		if v := metric(t, m, `infrawatch_storage_job_state{job="`+name+`",state="taken_over"}`); v != 1 {
			t.Errorf("%s taken_over = %v, want 1", name, v)
		}
		if v := metric(t, m, `infrawatch_storage_job_runner{job="`+name+`",runner="infrawatch"}`); v != 1 {
			t.Errorf("%s runner infrawatch = %v, want 1", name, v)
		}
		last := unix(st.clock.Now().Truncate(time.Microsecond)) // as PostgreSQL keeps it
		if v := metric(t, m, `infrawatch_storage_job_last_success_timestamp_seconds{job="`+name+`",runner="infrawatch"}`); v != last {
			t.Errorf("%s last success = %v, want the last check's %v", name, v, last)
		}
	}
	if v := metric(t, m, `infrawatch_storage_job_consecutive_failures{job="refresh_samples_5m",runner="timescaledb"}`); v != 1 {
		t.Errorf("TimescaleDB's consecutive failures of the 5-minute tier = %v, want 1", v)
	}
	if v := metric(t, m, `infrawatch_storage_job_watermark_lag_seconds{job="refresh_samples_5m"}`); v < 300 || v > 600 {
		t.Errorf("watermark lag of the 5-minute tier = %vs, want 5 to 10 minutes (its end offset and bucket)", v)
	}
	if v := metric(t, m, `infrawatch_storage_job_backlog_chunks{job="compress_samples"}`); v != 0 {
		t.Errorf("compression backlog = %v, want 0", v)
	}

	// Each change was logged once, over dozens of checks.
	for _, c := range []struct {
		parts []string
		want  int
	}{
		{[]string{`msg="storage job failing"`, "job=refresh_samples_5m"}, 1},
		{[]string{`msg="infrawatch takes over a TimescaleDB job"`, "job=refresh_samples_5m"}, 1},
		{[]string{`msg="storage job taken_over"`, "job=refresh_samples_5m"}, 1},
		{[]string{`msg="infrawatch takes over a TimescaleDB job"`}, 8},
		{[]string{"level=WARN", "job=retention"}, 0},
	} {
		if got := st.logs.count(c.parts...); got != c.want {
			t.Errorf("log lines with %q: %d, want %d", c.parts, got, c.want)
		}
	}
}

// In timescaledb mode infrawatch never runs TimescaleDB's jobs, however long they fail: it reports them
// failing, with the error on record and what to do, in the report and on /metrics.
func TestTimescaleDBModeOnlyReports(t *testing.T) {
	d, ids := timescaleDB(t)
	realNow := time.Now().Truncate(time.Minute)
	insertSamples(t, d, uuid.New(), 1, realNow.Add(-3*time.Hour), realNow.Add(-10*time.Minute))
	st := startStorageTest(t, d, Config{TimescaleJobs: ModeTimescaleDB})
	recordTimescaleDBRun(t, d, ids["refresh_samples_5m"], st.clock.Now().Add(-time.Minute), portalError)
	st.wake(48 * time.Hour)
	st.wake(0)

	if n := len(materialized(t, d, "ts.samples_5m", 1)); n != 0 {
		t.Errorf("%d buckets materialized: infrawatch ran TimescaleDB's job", n)
	}
	rep := st.report()
	if rep.Status != "failing" || rep.Scheduler.Mode != ModeTimescaleDB {
		t.Errorf("report status %s, mode %s; want failing, timescaledb", rep.Status, rep.Scheduler.Mode)
	}
	for _, j := range rep.Jobs {
		if j.TimescaleDB == nil {
			continue
		}
		if j.Runner != RunnerTimescaleDB || j.State != StateFailing || !strings.Contains(j.Advice, "--timescale-jobs=auto") {
			t.Errorf("%s: %s runs it, %s: %q; want TimescaleDB's, failing, advising --timescale-jobs=auto", j.Name, j.Runner, j.State, j.Advice)
		}
	}
	j := st.job("refresh_samples_5m")
	if !strings.Contains(j.Problem, portalError) || j.WatermarkLag == nil || *j.WatermarkLag < 48*time.Hour {
		t.Errorf("the 5-minute tier: %q, lag %v; want its error and a lag of the whole data", j.Problem, j.WatermarkLag)
	}
	m := st.scrape()
	if v := metric(t, m, `infrawatch_storage_job_state{job="refresh_samples_5m",state="failing"}`); v != 1 {
		t.Errorf("failing = %v, want 1", v)
	}
	if v := metric(t, m, `infrawatch_storage_job_runner{job="refresh_samples_5m",runner="timescaledb"}`); v != 1 {
		t.Errorf("runner timescaledb = %v, want 1", v)
	}
	if v := metric(t, m, `infrawatch_storage_job_watermark_lag_seconds{job="refresh_samples_5m"}`); v < (48 * time.Hour).Seconds() {
		t.Errorf("watermark lag = %vs, want at least 48h", v)
	}
	if _, ok := m[`infrawatch_storage_job_last_success_timestamp_seconds{job="refresh_samples_5m",runner="timescaledb"}`]; ok {
		t.Error("a last success of TimescaleDB's job that never succeeded")
	}
	if n := st.logs.count(`msg="infrawatch takes over a TimescaleDB job"`); n != 0 {
		t.Errorf("%d takeovers logged in timescaledb mode", n)
	}
}

// In auto mode a job goes back to TimescaleDB once TimescaleDB's own run of it succeeds again, and
// infrawatch stops running it.
func TestAutoGivesJobsBackWhenTimescaleDBSucceedsAgain(t *testing.T) {
	d, ids := timescaleDB(t)
	st := startStorageTest(t, d, Config{TimescaleJobs: ModeAuto})
	st.runFor(11 * time.Minute)
	if j := st.job("refresh_samples_5m"); j.Runner != RunnerInfrawatch {
		t.Fatalf("after 11 minutes without a run, the 5-minute tier runs %s, want infrawatch", j.Runner)
	}
	ranBefore := st.job("refresh_samples_5m").Infrawatch.LastSuccess

	// TimescaleDB's scheduler runs it again, successfully (written as TimescaleDB would: on this
	// machine its runs fail), and it is scheduled again (its next run a day away, so that it does not
	// really run during the test).
	exec(t, d, fmt.Sprintf(`SELECT alter_job(%d, scheduled => true, next_start => now() + interval '1 day')`, ids["refresh_samples_5m"]))
	recordTimescaleDBRun(t, d, ids["refresh_samples_5m"], st.clock.Now(), "")
	st.wake(0)
	j := st.job("refresh_samples_5m")
	if j.Runner != RunnerTimescaleDB || j.State != StateOK || j.TakenOverAt != nil {
		t.Errorf("after TimescaleDB's success: %s runs it, %s (%q), taken over at %v; want TimescaleDB, ok", j.Runner, j.State, j.Problem, j.TakenOverAt)
	}
	if !j.Infrawatch.LastSuccess.Equal(*ranBefore) {
		t.Errorf("infrawatch ran the job after giving it back (last run %s, before %s)", j.Infrawatch.LastSuccess, ranBefore)
	}
	if n := st.logs.count(`msg="infrawatch gives a job back to TimescaleDB"`, "job=refresh_samples_5m"); n != 1 {
		t.Errorf("give-backs logged: %d, want 1", n)
	}
	if n := st.logs.count(`msg="storage job is fine again"`, "job=refresh_samples_5m"); n != 1 {
		t.Errorf("'fine again' logged %d times, want 1", n)
	}
}

// In both flavors the refresh tiers and retention are infrawatch's own jobs: they are reported ok while
// they run, failing with their error when they fail (and the log says so once), fine again after, and
// failing when no scheduler runs them any more.
func TestInfrawatchJobsReportTheirRuns(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		d := dbtest.New(t, flavor)
		mode := ModeAuto
		if flavor == db.FlavorTimescale {
			mode = ModeInfrawatch
		}
		st := startStorageTest(t, d, Config{TimescaleJobs: mode})
		realNow := time.Now().Truncate(time.Minute)
		insertSamples(t, d, uuid.New(), 1, realNow.Add(-3*time.Hour), realNow.Add(-10*time.Minute))
		st.wake(0)
		rep := st.report()
		wantOK := StateOK
		if flavor == db.FlavorTimescale {
			wantOK = StateTakenOver // --timescale-jobs=infrawatch: infrawatch runs TimescaleDB's jobs
		}
		for _, j := range rep.Jobs {
			want := wantOK
			if j.Kind == "retention" {
				want = StateOK
			}
			if j.State != want || j.Runner != RunnerInfrawatch {
				t.Errorf("%s: %s, runner %s (%q); want %s, infrawatch", j.Name, j.State, j.Runner, j.Problem, want)
			}
		}
		if j := st.job("refresh_samples_5m"); j.WatermarkLag == nil || *j.WatermarkLag > 15*time.Minute {
			t.Errorf("watermark lag of the 5-minute tier: %v, want at most a bucket, the lag and an interval or two", j.WatermarkLag)
		}

		// The 5-minute tier's refresh fails: a trigger refuses the rows it writes. A late sample gives it
		// a bucket to write again.
		store := "ts.samples_5m_store"
		if flavor == db.FlavorTimescale {
			store = materializationOf(t, d, "ts.samples_5m")
		}
		exec(t, d, `CREATE FUNCTION public.refuse_rows() RETURNS trigger LANGUAGE plpgsql
		            AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$`,
			`CREATE TRIGGER refuse_rows BEFORE INSERT ON `+store+` FOR EACH ROW EXECUTE FUNCTION public.refuse_rows()`,
			`INSERT INTO ts.samples SELECT time - interval '30 seconds', tenant_id, series_id, 1 FROM ts.samples
			  WHERE series_id = 1 ORDER BY time DESC LIMIT 1 OFFSET 60`)
		st.wake(0)
		st.wake(0)
		// TimescaleDB reports the trigger's error as "invalid transaction termination".
		j := st.job("refresh_samples_5m")
		if j.State != StateFailing || !strings.Contains(j.Problem, "infrawatch's last 2 runs of it failed") ||
			(flavor == db.FlavorPostgres && !strings.Contains(j.Problem, "injected failure")) {
			t.Errorf("after two failed refreshes: %s: %q", j.State, j.Problem)
		}
		m := st.scrape()
		if v := metric(t, m, `infrawatch_storage_job_consecutive_failures{job="refresh_samples_5m",runner="infrawatch"}`); v != 2 {
			t.Errorf("consecutive failures = %v, want 2", v)
		}
		if v := metric(t, m, `infrawatch_storage_job_state{job="refresh_samples_5m",state="failing"}`); v != 1 {
			t.Errorf("failing = %v, want 1", v)
		}
		if st.report().Status != "failing" {
			t.Errorf("report status %s, want failing", st.report().Status)
		}

		exec(t, d, `DROP TRIGGER refuse_rows ON `+store)
		st.wake(0)
		st.wake(0)
		if j := st.job("refresh_samples_5m"); j.State != wantOK || j.Infrawatch.ConsecutiveFailures != 0 {
			t.Errorf("after the trigger is gone: %s with %d failures (%q), want %s", j.State, j.Infrawatch.ConsecutiveFailures, j.Problem, wantOK)
		}
		if n := st.logs.count(`msg="storage job failing"`, "job=refresh_samples_5m"); n != 1 {
			t.Errorf("'failing' logged %d times for two failed runs, want once", n)
		}
		fine, times := `msg="storage job is fine again"`, 1
		if flavor == db.FlavorTimescale {
			fine, times = `msg="storage job taken_over"`, 2 // at the first check, and after the failure
		}
		if n := st.logs.count(fine, "job=refresh_samples_5m"); n != times {
			t.Errorf("%s logged %d times, want %d", fine, n, times)
		}

		// No scheduler any more: an hour later the refreshes are failing, retention not yet.
		st.svc.Stop()
		st.health.now = func() time.Time { return st.clock.Now().Add(time.Hour) }
		rep = st.report()
		for _, j := range rep.Jobs {
			want := StateFailing
			if j.Kind == "retention" {
				want = StateOK
			}
			if j.State != want {
				t.Errorf("an hour without a scheduler, %s is %s (%q), want %s", j.Name, j.State, j.Problem, want)
			}
		}
		if rep.Status != "failing" || !strings.Contains(rep.Scheduler.Problem, "last checked the storage jobs at") {
			t.Errorf("an hour without a scheduler: status %s, scheduler %+v", rep.Status, rep.Scheduler)
		}
	})
}

func materializationOf(t *testing.T, d *dbtest.DB, rollup string) string {
	t.Helper()
	var table string
	err := d.Pool.QueryRow(context.Background(), `SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
	    FROM timescaledb_information.continuous_aggregates WHERE format('%I.%I', view_schema, view_name)::regclass = $1::regclass`,
		rollup).Scan(&table)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func exec(t *testing.T, d *dbtest.DB, statements ...string) {
	t.Helper()
	for _, stmt := range statements {
		if _, err := d.Pool.Exec(context.Background(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// tierAnswer is what a rollup tier answers for series' bucket b: materialized or, above the watermark,
// aggregated on the fly by real-time aggregation.
func tierAnswer(t *testing.T, d *dbtest.DB, rollup string, series int64, b time.Time) agg {
	t.Helper()
	got := readAggs(t, d, `SELECT bucket, count, sum FROM `+rollup+` WHERE series_id = $1 AND bucket = $2`, series, b)
	return got[b.UTC()]
}

// While TimescaleDB runs the refreshes fine, a sample that arrives late for buckets already materialized
// is missing from every tier's answer until TimescaleDB's next run of the tier's policy (an hour away for
// the hourly tier, a day for the daily one): real-time aggregation adds only what is above the
// watermark. In auto mode the scheduler's next check (a minute) materializes it, in every tier, without
// running the jobs for TimescaleDB.
func TestAutoMaterializesLateSamplesWhileTimescaleDBRunsTheRefreshes(t *testing.T) {
	d, ids := timescaleDB(t)
	tenant := uuid.New()
	realNow := time.Now().Truncate(time.Minute)
	insertSamples(t, d, tenant, 1, realNow.Add(-3*time.Hour), realNow.Add(-10*time.Minute))
	// TimescaleDB's policies ran, successfully, and materialized what was there.
	for _, rollup := range []string{"ts.samples_5m", "ts.samples_1h", "ts.samples_1d"} {
		exec(t, d, fmt.Sprintf(`CALL refresh_continuous_aggregate('%s', NULL, now() - interval '1 hour')`, rollup))
	}
	for name, id := range ids {
		if strings.HasPrefix(name, "refresh_") {
			recordTimescaleDBRun(t, d, id, realNow.Add(-time.Minute), "")
		}
	}
	st := startStorageTest(t, d, Config{TimescaleJobs: ModeAuto})

	// An agent replays its spool: a sample two hours late, in buckets every tier has materialized or (the
	// daily one, whose day is not over) aggregates from the hourly tier's materialized buckets.
	late := realNow.Add(-2*time.Hour + 30*time.Second)
	exec(t, d, fmt.Sprintf(`INSERT INTO ts.samples (time, tenant_id, series_id, value) VALUES ('%s', '%s', 1, 1000)`,
		late.Format(time.RFC3339Nano), tenant))
	tiers := []struct {
		rollup string
		width  time.Duration
	}{{"ts.samples_5m", 5 * time.Minute}, {"ts.samples_1h", time.Hour}, {"ts.samples_1d", day}}
	for _, tier := range tiers {
		b := late.Truncate(tier.width)
		if got, want := tierAnswer(t, d, tier.rollup, 1, b), rawBuckets(t, d, 1, tier.width, b.Add(tier.width))[b.UTC()]; got == want {
			t.Fatalf("%s bucket %s answers the late sample before the scheduler's check: %+v (then this test proves nothing)",
				tier.rollup, stamp(b), got)
		}
	}

	st.wake(0)
	for _, tier := range tiers {
		b := late.Truncate(tier.width)
		if got, want := tierAnswer(t, d, tier.rollup, 1, b), rawBuckets(t, d, 1, tier.width, b.Add(tier.width))[b.UTC()]; got != want {
			t.Errorf("%s bucket %s answers %+v a check after the late sample, want %+v from the raw rows", tier.rollup, stamp(b), got, want)
		}
	}
	for name := range ids {
		if j := st.job(name); strings.HasPrefix(name, "refresh_") && (j.Runner != RunnerTimescaleDB || j.Infrawatch.LastSuccess != nil) {
			t.Errorf("%s: %s runs it, infrawatch's last run %v; want TimescaleDB's, none of infrawatch's", name, j.Runner, j.Infrawatch.LastSuccess)
		}
	}
}
