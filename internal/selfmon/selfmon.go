// Package selfmon pushes a process's own metrics (what its /metrics serves) into a tenant of an
// infrawatch deployment, through the ingest API like any agent: an operator tenant of the same
// deployment, or another deployment that watches this one. There the alert rules of that tenant page
// the operator when the monitor itself is in trouble: a storage job failing, the ingest queue filling,
// notifications failing.
//
// Every interval it gathers the registry and posts one JSON push (POST <url>/api/v1/ingest) with the
// process as the host. Counters and gauges keep their names and labels; a histogram becomes
// <name>_bucket (with le), <name>_sum and <name>_count, a summary <name> (with quantile), <name>_sum
// and <name>_count, as Prometheus stores them. A failed push is logged and counted, never retried: the
// next one carries the newer values.
package selfmon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/infrawatch/infrawatch/internal/service"
)

// Config says where the metrics go. An empty URL turns self-monitoring off.
type Config struct {
	// URL is the deployment that receives the metrics, e.g. http://127.0.0.1:8080.
	URL string
	// Key is an API key with scope ingest of the tenant that receives them.
	Key string
	// Interval is the time between pushes.
	Interval time.Duration
	// Host is the host name the metrics are stored under; empty: this machine's name.
	Host string
}

// DefaultConfig is the configuration before flags.
func DefaultConfig() Config { return Config{Interval: 30 * time.Second} }

// AddFlags registers the flags of self-monitoring on fs, writing into c.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.URL, "self-monitoring-url", c.URL,
		"push this process's own metrics (those of /metrics) to the ingest API of this deployment, e.g. http://127.0.0.1:8080, into the tenant of --self-monitoring-key; empty: off")
	fs.StringVar(&c.Key, "self-monitoring-key", c.Key,
		"an API key with scope ingest of the tenant that receives this process's metrics (an operator tenant); prefer the environment variable")
	fs.DurationVar(&c.Interval, "self-monitoring-interval", d.Interval, "time between two pushes of this process's metrics")
	fs.StringVar(&c.Host, "self-monitoring-host", c.Host, "host name this process's metrics are stored under; empty: this machine's name")
}

// Validate refuses a configuration that cannot work, naming the flag to fix. It never quotes the key.
func (c Config) Validate() error {
	if c.URL == "" {
		return nil
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--self-monitoring-url must be an http or https URL such as http://127.0.0.1:8080, got %q", c.URL)
	}
	if c.Key == "" {
		return errors.New("--self-monitoring-url needs --self-monitoring-key (INFRAWATCH_SELF_MONITORING_KEY): an API key with scope ingest")
	}
	if c.Interval < time.Second {
		return fmt.Errorf("--self-monitoring-interval must be at least 1s, got %s", c.Interval)
	}
	return nil
}

// Pusher pushes a registry's metrics on its interval. It is a service.Service.
type Pusher struct {
	cfg      Config
	gatherer prometheus.Gatherer
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time
	pushes   *prometheus.CounterVec
	service.Loop
}

// New returns a Pusher of gatherer's metrics; it registers its own counter on reg. Start pushes once
// and then every interval, until Stop.
func New(cfg Config, gatherer prometheus.Gatherer, reg prometheus.Registerer, log *slog.Logger) *Pusher {
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	p := &Pusher{cfg: cfg, gatherer: gatherer, log: log, now: time.Now,
		client: &http.Client{Timeout: max(cfg.Interval, time.Second)},
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_self_monitoring_pushes_total",
			Help: "Pushes of this process's own metrics (--self-monitoring-url), by result: ok, refused (a 4xx answer), failed."},
			[]string{"result"})}
	reg.MustRegister(p.pushes)
	p.Run = p.run
	return p
}

func (p *Pusher) run(ctx context.Context) {
	ticker := time.NewTicker(p.cfg.Interval)
	defer ticker.Stop()
	for {
		if err := p.Push(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("self-monitoring push failed", "url", p.cfg.URL, "err", err)
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}

// Push gathers the metrics and posts them once.
func (p *Pusher) Push(ctx context.Context) error {
	families, err := p.gatherer.Gather()
	if err != nil && len(families) == 0 {
		p.pushes.WithLabelValues("failed").Inc()
		return fmt.Errorf("gather metrics: %w", err)
	}
	body, err := json.Marshal(Encode(families, p.cfg.Host, p.now()))
	if err != nil {
		p.pushes.WithLabelValues("failed").Inc()
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.URL+"/api/v1/ingest", bytes.NewReader(body))
	if err != nil {
		p.pushes.WithLabelValues("failed").Inc()
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.cfg.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		p.pushes.WithLabelValues("failed").Inc()
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode/100 == 2:
		p.pushes.WithLabelValues("ok").Inc()
		return nil
	case resp.StatusCode/100 == 4:
		p.pushes.WithLabelValues("refused").Inc()
	default:
		p.pushes.WithLabelValues("failed").Inc()
	}
	return fmt.Errorf("POST %s/api/v1/ingest: %s: %s", p.cfg.URL, resp.Status, bytes.TrimSpace(answer))
}

// Push is the JSON push of the ingest API (see internal/ingest's JSONPush).
type Push struct {
	Host    PushHost `json:"host"`
	Metrics []Metric `json:"metrics"`
}

// PushHost is the pushing host.
type PushHost struct {
	Name string `json:"name"`
}

// Metric is one series with one point, [milliseconds, value].
type Metric struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Points [][2]float64      `json:"points"`
}

// Encode turns gathered metric families into one push of host at time at. Values JSON cannot carry
// (NaN, ±Inf: a summary's quantile before any observation) are left out.
func Encode(families []*dto.MetricFamily, host string, at time.Time) Push {
	ms := float64(at.UnixMilli())
	push := Push{Host: PushHost{Name: host}}
	add := func(name string, labels map[string]string, value float64) {
		if math.IsNaN(value) || math.IsInf(value, 0) {
			return
		}
		push.Metrics = append(push.Metrics, Metric{Name: name, Labels: labels, Points: [][2]float64{{ms, value}}})
	}
	for _, f := range families {
		name := f.GetName()
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			with := func(k, v string) map[string]string {
				out := make(map[string]string, len(labels)+1)
				for lk, lv := range labels {
					out[lk] = lv
				}
				out[k] = v
				return out
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, labels, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, labels, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, labels, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				infinite := false
				for _, b := range h.GetBucket() {
					infinite = infinite || math.IsInf(b.GetUpperBound(), 1)
					add(name+"_bucket", with("le", formatFloat(b.GetUpperBound())), float64(b.GetCumulativeCount()))
				}
				if !infinite { // client_golang leaves the +Inf bucket implicit: it is the count
					add(name+"_bucket", with("le", "+Inf"), float64(h.GetSampleCount()))
				}
				add(name+"_sum", labels, h.GetSampleSum())
				add(name+"_count", labels, float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, with("quantile", formatFloat(q.GetQuantile())), q.GetValue())
				}
				add(name+"_sum", labels, s.GetSampleSum())
				add(name+"_count", labels, float64(s.GetSampleCount()))
			}
		}
	}
	return push
}

// formatFloat writes a bound as Prometheus does: 0.5, 1, +Inf.
func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
