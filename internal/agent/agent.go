package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the tuning knobs tests and embedding code may change; zero values mean the defaults.
type Options struct {
	Backoff          Backoff       // default 500ms..60s
	ShutdownTimeout  time.Duration // how long to keep sending after a stop signal; default 5s
	LogPollInterval  time.Duration // default 250ms
	LogFlushInterval time.Duration // longest a log line waits before it is spooled; default 1s
	LogBatchEntries  int           // default 1000
	Logger           *slog.Logger
	HTTPClient       *http.Client
	// MaxAttempts is how many times a batch the server fails with a 5xx other than 502, 503 and 504 is
	// sent before it is given up (dropped and counted), so that one batch the server cannot handle does
	// not hold up the ones behind it for ever; default DefaultMaxAttempts.
	MaxAttempts int
	// Sleep waits d between delivery attempts, or returns ctx's error when ctx ends first. Tests replace
	// it to retry at once and to count the waits; default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultMaxAttempts is the default Options.MaxAttempts: with the default backoff, about four minutes.
const DefaultMaxAttempts = 10

// sleep is the default Options.Sleep.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Agent collects, spools and delivers. Collection and tailing only ever write to the spool; one
// delivery goroutine reads it oldest first, so batches reach the server in the order they were made.
type Agent struct {
	cfg        Config
	opt        Options
	log        *slog.Logger
	spool      *Spool
	sender     *Sender
	collectors []Collector
	host       Host
	wake       chan struct{}
	rejected   atomic.Uint64 // batches the server refused (4xx) and that were dropped
	failed     atomic.Uint64 // batches given up after MaxAttempts server failures
}

// New opens the spool and builds the collectors.
func New(cfg Config, opt Options) (*Agent, error) {
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if opt.Backoff.Min <= 0 {
		opt.Backoff.Min = 500 * time.Millisecond
	}
	if opt.Backoff.Max <= 0 {
		opt.Backoff.Max = 60 * time.Second
	}
	if opt.ShutdownTimeout <= 0 {
		opt.ShutdownTimeout = 5 * time.Second
	}
	if opt.LogPollInterval <= 0 {
		opt.LogPollInterval = 250 * time.Millisecond
	}
	if opt.LogFlushInterval <= 0 {
		opt.LogFlushInterval = time.Second
	}
	if opt.LogBatchEntries <= 0 {
		opt.LogBatchEntries = 1000
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.HTTPClient == nil {
		opt.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = DefaultMaxAttempts
	}
	if opt.Sleep == nil {
		opt.Sleep = sleep
	}
	cols, err := NewCollectors(cfg.Collectors)
	if err != nil {
		return nil, err
	}
	sp, err := OpenSpool(cfg.SpoolDir, cfg.SpoolMaxBytes)
	if err != nil {
		return nil, err
	}
	return &Agent{
		cfg: cfg, opt: opt, log: opt.Logger, spool: sp, collectors: cols,
		sender: &Sender{BaseURL: cfg.Server, APIKey: cfg.APIKey, Client: opt.HTTPClient},
		host:   Host{Name: cfg.Hostname, Labels: cfg.Labels, Metadata: HostMetadata()},
		wake:   make(chan struct{}, 1),
	}, nil
}

// Spool exposes the agent's spool (for tests and status output).
func (a *Agent) Spool() *Spool { return a.spool }

// Rejected counts batches the server refused with a 4xx and that were dropped.
func (a *Agent) Rejected() uint64 { return a.rejected.Load() }

// Failed counts batches the server kept failing (5xx) and that were given up after MaxAttempts.
func (a *Agent) Failed() uint64 { return a.failed.Load() }

// Collect runs every collector once. A failing collector is logged and skipped: one unreadable
// source must not cost the others their round.
func (a *Agent) Collect(now time.Time) MetricsPayload {
	var ms []Metric
	for _, c := range a.collectors {
		out, err := c.Collect(now)
		if err != nil {
			a.log.Warn("collector failed", "collector", c.Name(), "err", err)
		}
		ms = append(ms, out...)
	}
	batches, bytes, dropped := a.spool.Stats()
	ms = append(ms,
		gauge("agent.spool_dropped_batches", nil, now, float64(dropped)),
		gauge("agent.spool_batches", nil, now, float64(batches)),
		gauge("agent.spool_bytes", nil, now, float64(bytes)),
		gauge("agent.rejected_batches", nil, now, float64(a.rejected.Load())),
		gauge("agent.failed_batches", nil, now, float64(a.failed.Load())),
	)
	sortMetrics(ms)
	return MetricsPayload{Host: a.host, Metrics: ms}
}

// CollectAndSpool takes one round of metrics and spools it for delivery.
func (a *Agent) CollectAndSpool(now time.Time) error {
	return a.put(KindMetrics, a.Collect(now))
}

func (a *Agent) put(kind string, payload any) error {
	body, err := gzipJSON(payload)
	if err != nil {
		return err
	}
	if err := a.spool.Put(kind, body); err != nil {
		return err
	}
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run collects every interval, tails logs and delivers until ctx is done; then it spools the pending
// log lines and keeps delivering for up to ShutdownTimeout. What is still unsent stays in the spool.
func (a *Agent) Run(ctx context.Context) error {
	var tailer *Tailer
	if len(a.cfg.Logs) > 0 {
		t, err := NewTailer(a.cfg.Logs, filepath.Join(a.cfg.SpoolDir, "tail-state.json"))
		if err != nil {
			return err
		}
		tailer = t
		defer tailer.Close()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.deliverLoop(ctx)
	}()
	if tailer != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.tailLoop(ctx, tailer)
		}()
	}
	// Prime the rate collectors so the first spooled round already has CPU, disk and network rates.
	for _, c := range a.collectors {
		_, _ = c.Collect(time.Now())
	}
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			if err := a.CollectAndSpool(now); err != nil {
				a.log.Error("spool metrics", "err", err)
			}
		}
	}
	wg.Wait()
	flushCtx, cancel := context.WithTimeout(context.Background(), a.opt.ShutdownTimeout)
	defer cancel()
	if err := a.Drain(flushCtx); err != nil {
		batches, _, _ := a.spool.Stats()
		a.log.Warn("stopping with batches still spooled", "batches", batches, "err", err)
	}
	return nil
}

func (a *Agent) tailLoop(ctx context.Context, t *Tailer) {
	poll := time.NewTicker(a.opt.LogPollInterval)
	defer poll.Stop()
	lastFlush := time.Now()
	flush := func() {
		err := t.Flush(a.opt.LogBatchEntries, func(es []LogEntry) error {
			return a.put(KindLogs, LogsPayload{Host: Host{Name: a.host.Name}, Entries: es})
		})
		if err != nil {
			a.log.Error("spool logs", "err", err)
		}
		lastFlush = time.Now()
	}
	for {
		select {
		case <-ctx.Done():
			t.Poll()
			flush()
			return
		case <-poll.C:
			t.Poll()
			n, size := t.Pending()
			if n >= a.opt.LogBatchEntries || size >= 1<<20 || time.Since(lastFlush) >= a.opt.LogFlushInterval {
				flush()
			}
		}
	}
}

func (a *Agent) deliverLoop(ctx context.Context) {
	for {
		if err := a.Drain(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("deliver", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
	}
}

// Drain sends spooled batches oldest first until the spool is empty or ctx is done; a batch that
// must be retried blocks the ones behind it, which keeps the order. A batch is dropped, and counted,
// when the server refuses it (a 4xx, see classify) or fails it MaxAttempts times (a 5xx other than
// 502, 503 and 504): one batch the server cannot take never stops the agent's delivery.
func (a *Agent) Drain(ctx context.Context) error {
	for {
		it, ok := a.spool.Oldest()
		if !ok {
			return nil
		}
		body, err := a.spool.Read(it)
		if errors.Is(err, os.ErrNotExist) {
			_ = a.spool.Remove(it) // dropped by the size limit meanwhile
			continue
		}
		if err != nil {
			return fmt.Errorf("read spooled batch: %w", err)
		}
		if err := a.deliver(ctx, it, body); err != nil {
			return err
		}
		if err := a.spool.Remove(it); err != nil {
			return err
		}
	}
}

// deliver sends one batch until the server takes it, refuses it or has failed it MaxAttempts times;
// it returns an error only when ctx ends first.
func (a *Agent) deliver(ctx context.Context, it SpoolItem, body []byte) error {
	failures := 0
	for attempt := 0; ; attempt++ {
		res, retryAfter, err := a.sender.send(ctx, it.Kind, body)
		switch res {
		case delivered:
			return nil
		case rejected:
			a.rejected.Add(1)
			a.log.Error("server rejected batch; dropped", "kind", it.Kind, "err", err)
			return nil
		case failed:
			if failures++; failures >= a.opt.MaxAttempts {
				a.failed.Add(1)
				a.log.Error("server failed batch repeatedly; dropped", "kind", it.Kind, "attempts", failures, "err", err)
				return nil
			}
		}
		d := a.opt.Backoff.delay(attempt, retryAfter)
		a.log.Warn("delivery failed; will retry", "kind", it.Kind, "in", d, "err", err)
		if err := a.opt.Sleep(ctx, d); err != nil {
			return err
		}
	}
}
