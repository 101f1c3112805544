package maintenance

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infrawatch/infrawatch/internal/db"
)

// Health tells how the storage jobs are doing (jobs.go), for the operator's GET /api/v1/operator/health
// and /metrics. It reads the database, not the scheduler's memory, so any process may hold one and every
// one answers the same, whichever replica runs the scheduler, and even when none does.
type Health struct {
	sys        *db.System
	now        func() time.Time
	readErrors prometheus.Counter
}

// NewHealth returns a Health that reads through sys.
func NewHealth(sys *db.System) *Health {
	return &Health{sys: sys, now: time.Now, readErrors: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "infrawatch_storage_jobs_read_errors_total",
		Help: "Scrapes whose read of the storage jobs failed (the database did not answer in time); they carry no storage job metrics.",
	})}
}

// Report is how storage is doing now.
type Report struct {
	// Status is ok when every job is, failing when one is, else degraded.
	Status string
	// Flavor is the storage flavor: timescale or postgres.
	Flavor string
	// Scheduler is what the scheduler role's last check says of itself.
	Scheduler SchedulerStatus
	// Jobs are the storage jobs, refreshes finest tier first, then compression, then retention.
	Jobs []Job
}

// SchedulerStatus is the scheduler role's last check of the storage jobs.
type SchedulerStatus struct {
	Mode          Mode       // its --timescale-jobs; empty before its first check
	CheckedAt     *time.Time // nil before its first check
	CheckInterval time.Duration
	// Problem and Advice say what is wrong when no scheduler has checked the jobs lately.
	Problem, Advice string
}

// Report reads and assesses every storage job.
func (h *Health) Report(ctx context.Context) (Report, error) {
	q := h.sys.Queries()
	flavor, err := q.StorageFlavor(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("read the storage flavor: %w", err)
	}
	jobs, err := readJobs(ctx, q)
	if err != nil {
		return Report{}, err
	}
	now := h.now()
	rep := Report{Status: "ok", Flavor: flavor, Jobs: jobs}
	sch := &rep.Scheduler
	for i := range jobs {
		j := &jobs[i]
		j.assess(now)
		if j.checkedAt != nil && (sch.CheckedAt == nil || j.checkedAt.After(*sch.CheckedAt)) {
			sch.CheckedAt, sch.Mode, sch.CheckInterval = j.checkedAt, j.mode, j.checkInterval
		}
		switch {
		case j.State == StateFailing:
			rep.Status = "failing"
		case j.State != StateOK && rep.Status == "ok":
			rep.Status = "degraded"
		}
	}
	switch {
	case sch.CheckedAt == nil:
		sch.Problem = "No scheduler has checked the storage jobs yet."
		sch.Advice = "Run a process with --roles scheduler (every deployment needs one): it checks them every minute."
	case now.Sub(*sch.CheckedAt) > 3*sch.CheckInterval+time.Minute:
		sch.Problem = "The scheduler last checked the storage jobs at " + stamp(*sch.CheckedAt) + "."
		sch.Advice = "Check that a process with --roles scheduler runs and reaches the database; until one does, " +
			"nobody refreshes the rollups of the postgres flavor, runs retention or takes over TimescaleDB's failing jobs."
	}
	if sch.Problem != "" && rep.Status == "ok" {
		rep.Status = "degraded"
	}
	return rep, nil
}

// Collector exports the storage jobs on /metrics, read at each scrape. The scheduler role's processes
// register it (README: Storage flavors).
func (h *Health) Collector() prometheus.Collector { return healthCollector{h} }

type healthCollector struct{ h *Health }

var (
	descState = prometheus.NewDesc("infrawatch_storage_job_state",
		"1 for the storage job's state (ok, taken_over, lagging, unknown, failing), 0 for the others.", []string{"job", "state"}, nil)
	descRunner = prometheus.NewDesc("infrawatch_storage_job_runner",
		"1 for who runs the storage job now (infrawatch or timescaledb), 0 for the other.", []string{"job", "runner"}, nil)
	descLastSuccess = prometheus.NewDesc("infrawatch_storage_job_last_success_timestamp_seconds",
		"When the runner's last run of the storage job succeeded (Unix time); absent while it never did.", []string{"job", "runner"}, nil)
	descFailures = prometheus.NewDesc("infrawatch_storage_job_consecutive_failures",
		"How many of the runner's runs of the storage job failed in a row, up to now.", []string{"job", "runner"}, nil)
	descLag = prometheus.NewDesc("infrawatch_storage_job_watermark_lag_seconds",
		"Refresh jobs: age of the oldest rollup bucket not yet materialized (now minus the watermark).", []string{"job"}, nil)
	descBacklog = prometheus.NewDesc("infrawatch_storage_job_backlog_chunks",
		"Compression jobs: chunks older than compress_after not yet compressed.", []string{"job"}, nil)
	descChecked = prometheus.NewDesc("infrawatch_storage_jobs_checked_timestamp_seconds",
		"When the scheduler role last checked the storage jobs (Unix time).", nil, nil)
)

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descRunner, descLastSuccess, descFailures, descLag, descBacklog, descChecked} {
		ch <- d
	}
	c.h.readErrors.Describe(ch)
}

// Collect reads the jobs, within a few seconds: a database that does not answer costs the scrape its
// storage job metrics (and counts a read error), not the whole of /metrics.
func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.h.readErrors.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := c.h.Report(ctx)
	if err != nil {
		c.h.readErrors.Inc()
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	one := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	if at := rep.Scheduler.CheckedAt; at != nil {
		gauge(descChecked, unix(*at))
	}
	for _, j := range rep.Jobs {
		for _, st := range States {
			gauge(descState, one(j.State == st), j.Name, string(st))
		}
		gauge(descRunner, one(j.Runner == RunnerInfrawatch), j.Name, string(RunnerInfrawatch))
		gauge(descFailures, float64(j.Infrawatch.ConsecutiveFailures), j.Name, string(RunnerInfrawatch))
		if t := j.Infrawatch.LastSuccess; t != nil {
			gauge(descLastSuccess, unix(*t), j.Name, string(RunnerInfrawatch))
		}
		if t := j.TimescaleDB; t != nil {
			gauge(descRunner, one(j.Runner == RunnerTimescaleDB), j.Name, string(RunnerTimescaleDB))
			gauge(descFailures, float64(t.ConsecutiveFailures), j.Name, string(RunnerTimescaleDB))
			if t.LastSuccess != nil {
				gauge(descLastSuccess, unix(*t.LastSuccess), j.Name, string(RunnerTimescaleDB))
			}
		}
		if j.WatermarkLag != nil {
			gauge(descLag, j.WatermarkLag.Seconds(), j.Name)
		}
		if j.BacklogChunks != nil {
			gauge(descBacklog, float64(*j.BacklogChunks), j.Name)
		}
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
