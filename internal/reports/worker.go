package reports

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/notify"
	"github.com/infrawatch/infrawatch/internal/service"
	"github.com/infrawatch/infrawatch/internal/sla"
)

// Config says how the scheduler's report worker runs. Zero fields take DefaultConfig's values.
type Config struct {
	// Owner names this process in the runs' leases (default: host name and process id).
	Owner string
	// Poll is the wait between looks for due reports and runs.
	Poll time.Duration
	// Lease is how long a claimed run is this process's: rendering and sending must end within it, and a
	// run whose process died is sent again (with the same Message-ID) once it passes.
	Lease time.Duration
	// Batch bounds the reports and runs taken per look.
	Batch int32
	// MaxAttempts is how often a run is tried before it is marked failed.
	MaxAttempts int32
}

// DefaultConfig is the only copy of the defaults.
func DefaultConfig() Config {
	return Config{Poll: 30 * time.Second, Lease: 5 * time.Minute, Batch: 10, MaxAttempts: 8}
}

// AddFlags registers the scheduler role's report flags, with c's values as defaults.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Poll, "report-poll", c.Poll, "scheduler role: how often the report worker looks for due SLA reports")
	fs.DurationVar(&c.Lease, "report-lease", c.Lease,
		"scheduler role: how long a claimed report run is held; a dead scheduler's run is sent again after it, with the same Message-ID")
}

// Validate reports settings that cannot work, naming the flag that sets them.
func (c Config) Validate() error {
	if c.Poll < 0 || (c.Poll != 0 && c.Poll < 50*time.Millisecond) {
		return errors.New("--report-poll must be at least 50ms")
	}
	if c.Lease < 0 || (c.Lease != 0 && c.Lease < time.Second) {
		return errors.New("--report-lease must be at least 1s")
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.Owner == "" {
		host, _ := os.Hostname()
		c.Owner = host + ":" + strconv.Itoa(os.Getpid())
	}
	if c.Poll <= 0 {
		c.Poll = def.Poll
	}
	if c.Lease <= 0 {
		c.Lease = def.Lease
	}
	if c.Batch <= 0 {
		c.Batch = def.Batch
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = def.MaxAttempts
	}
	return c
}

// Mailer sends the reports' emails: internal/notify's Sender, through the deployment's relay.
type Mailer interface {
	SendEmail(ctx context.Context, e notify.Email) (retry bool, err error)
	EmailMessageID(key string) string
}

var _ Mailer = (*notify.Sender)(nil)

// Worker is the scheduler role's report worker. Each look (RunOnce) enqueues the run of every report
// whose period is due — one row per (report, period), whoever enqueues it and however often — and then
// claims due runs under a lease (FOR UPDATE SKIP LOCKED: replicas take different runs), renders each as
// its tenant, sends it and marks it sent. A process that dies between the send and the mark leaves the
// run leased; once the lease passes another claims it and sends the same email again, with the same
// Message-ID, so mail clients show it once.
type Worker struct {
	cfg     Config
	sys     *db.System
	tenants *db.TenantRunner
	mail    Mailer
	log     *slog.Logger
	clock   sla.Clock
	loop    service.Loop
	// Sent, when not nil, receives each run this worker marked sent, failed or put back (tests).
	Sent chan RunOutcome
}

// RunOutcome is what became of a claimed run.
type RunOutcome struct {
	RunID     int64
	State     string // sent, pending (retry later), failed
	MessageID string
	Err       error
}

var _ service.Service = (*Worker)(nil)

// NewWorker returns the worker; cfg's zero fields take the defaults.
func NewWorker(cfg Config, sys *db.System, tenants *db.TenantRunner, mail Mailer, log *slog.Logger) *Worker {
	w := &Worker{cfg: cfg.withDefaults(), sys: sys, tenants: tenants, mail: mail, log: log, clock: wallClock{}}
	w.loop.Run = w.run
	return w
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SetClock replaces the wall clock (tests).
func (w *Worker) SetClock(c sla.Clock) { w.clock = c }

// Start works until Stop.
func (w *Worker) Start(ctx context.Context) error { return w.loop.Start(ctx) }

// Stop ends the work; a send under way finishes first (within the sender's timeout).
func (w *Worker) Stop() { w.loop.Stop() }

func (w *Worker) run(ctx context.Context) {
	for {
		if err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("report worker", "err", db.Redact(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-w.clock.After(w.cfg.Poll):
		}
	}
}

// RunOnce enqueues the due periods' runs and sends the due runs.
func (w *Worker) RunOnce(ctx context.Context) error {
	now := w.clock.Now()
	if err := w.enqueueDue(ctx, now); err != nil {
		return err
	}
	var runs []dbsqlc.AppReportRun
	if err := w.sys.InTx(ctx, func(q *dbsqlc.Queries) (err error) {
		runs, err = q.ReportRunClaim(ctx, dbsqlc.ReportRunClaimParams{Now: now, Owner: w.cfg.Owner,
			LeaseUntil: now.Add(w.cfg.Lease), MaxRows: w.cfg.Batch})
		return err
	}); err != nil {
		return fmt.Errorf("claim report runs: %w", err)
	}
	for _, r := range runs {
		if ctx.Err() != nil {
			return nil // the lease runs out and another scheduler takes the run
		}
		w.deliver(ctx, r, now)
	}
	return nil
}

// enqueueDue makes the run of each due report's period and moves the report to its next period.
func (w *Worker) enqueueDue(ctx context.Context, now time.Time) error {
	return w.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		due, err := q.ReportClaimDue(ctx, dbsqlc.ReportClaimDueParams{Now: now, MaxRows: w.cfg.Batch})
		if err != nil {
			return fmt.Errorf("claim due reports: %w", err)
		}
		for _, r := range due {
			loc := Location(r.TimeZone)
			d := Definition{Period: r.Period, Schedule: r.Schedule}
			p, err := ParsePeriod(r.Period, r.NextPeriod, loc)
			if err != nil {
				return fmt.Errorf("report %d: next period: %w", r.ID, err)
			}
			if _, err := q.ReportRunEnqueue(ctx, dbsqlc.ReportRunEnqueueParams{TenantID: r.TenantID, ReportID: r.ID, Period: p.Name,
				PeriodStart: p.Start, PeriodEnd: p.End, Now: now}); err != nil {
				return fmt.Errorf("report %d: enqueue %s: %w", r.ID, p.Name, err)
			}
			next := p.Next(loc)
			at, err := d.RunAt(next, loc)
			if err != nil {
				return fmt.Errorf("report %d: schedule: %w", r.ID, err)
			}
			if err := q.ReportSetNext(ctx, dbsqlc.ReportSetNextParams{ID: r.ID, NextRunAt: at, NextPeriod: next.Name}); err != nil {
				return fmt.Errorf("report %d: next period: %w", r.ID, err)
			}
		}
		return nil
	})
}

// retryDelay is the wait before attempt n+1: 1, 2, 4 … minutes, at most an hour.
func retryDelay(attempts int32) time.Duration {
	d := time.Minute << min(attempts-1, 6)
	return min(d, time.Hour)
}

// deliver renders and sends one claimed run and records what became of it.
func (w *Worker) deliver(ctx context.Context, r dbsqlc.AppReportRun, now time.Time) {
	key := fmt.Sprintf("infrawatch.report.%d.%d", r.ID, r.Generation)
	out := RunOutcome{RunID: r.ID, MessageID: w.mail.EmailMessageID(key)}
	retry, err := w.send(ctx, r, key, now)
	q := w.sys.Queries()
	var n int64
	var markErr error
	switch {
	case err == nil:
		out.State = "sent"
		var recipients int32
		if p, e := q.ReportGetSystem(ctx, r.ReportID); e == nil {
			recipients = int32(len(p.Recipients))
		}
		n, markErr = q.ReportRunMarkSent(ctx, dbsqlc.ReportRunMarkSentParams{ID: r.ID, Now: w.clock.Now(), MessageID: out.MessageID,
			Recipients: recipients, Owner: w.cfg.Owner})
	case retry && r.Attempts < w.cfg.MaxAttempts:
		out.State, out.Err = "pending", err
		n, markErr = q.ReportRunMarkRetry(ctx, dbsqlc.ReportRunMarkRetryParams{ID: r.ID, NextAttemptAt: now.Add(retryDelay(r.Attempts)),
			LastError: bound(err.Error()), Owner: w.cfg.Owner})
	default:
		out.State, out.Err = "failed", err
		n, markErr = q.ReportRunMarkFailed(ctx, dbsqlc.ReportRunMarkFailedParams{ID: r.ID, LastError: bound(err.Error()), Owner: w.cfg.Owner})
	}
	if markErr != nil || n == 0 {
		// The lease was lost (another scheduler took the run after it passed): that one records it.
		w.log.Warn("report run: could not record the outcome", "run", r.ID, "state", out.State, "err", markErr)
	}
	if err != nil {
		w.log.Warn("report run not sent", "run", r.ID, "report", r.ReportID, "period", r.Period, "retry", retry, "err", err)
	}
	if w.Sent != nil {
		w.Sent <- out
	}
}

func (w *Worker) send(ctx context.Context, r dbsqlc.AppReportRun, key string, now time.Time) (retry bool, err error) {
	p, err := Prepare(ctx, w.sys, w.tenants, r.ReportID, r.Period, now, func(i Image) string { return "cid:" + i.CID })
	if errors.Is(err, db.ErrNotFound) {
		return false, errors.New("the report was deleted")
	}
	if err != nil {
		return db.IsUnavailable(err), err
	}
	// A report may be megabytes: it may take half the lease to send, but no more, so that the lease
	// does not pass while the relay still reads it.
	e := notify.Email{To: p.Stored.Recipients, Subject: p.Rendered.Subject, MessageKey: key, Date: now, Text: p.Rendered.Text,
		HTML: p.Rendered.HTML, Timeout: w.cfg.Lease / 2}
	for _, i := range p.Rendered.Images {
		e.Inline = append(e.Inline, notify.File{Name: i.Name, ContentType: "image/png", ContentID: i.CID, Data: i.PNG})
	}
	base := "sla-" + fileSafe(p.Stored.Name) + "-" + r.Period
	if p.Rendered.CSV != nil {
		e.Attach = append(e.Attach, notify.File{Name: base + ".csv", ContentType: "text/csv", Data: p.Rendered.CSV})
	}
	if p.Rendered.PDF != nil {
		e.Attach = append(e.Attach, notify.File{Name: base + ".pdf", ContentType: "application/pdf", Data: p.Rendered.PDF})
	}
	return w.mail.SendEmail(ctx, e)
}

// fileSafe keeps letters, digits, - and _ of a name for an attachment's file name.
func fileSafe(s string) string {
	out := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, s)
	if len(out) > 60 {
		out = out[:60]
	}
	return out
}

func bound(s string) string {
	if len(s) > 1000 {
		return s[:1000]
	}
	return s
}
