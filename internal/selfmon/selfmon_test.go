package selfmon_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infrawatch/infrawatch/internal/selfmon"
)

// Every kind of metric becomes the series Prometheus would store for it, with the host and time given.
func TestEncodeStoresEveryKindAsPrometheusDoes(t *testing.T) {
	reg := prometheus.NewRegistry()
	counter := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_total", Help: "h"}, []string{"kind"})
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "queue_rows", Help: "h"})
	histogram := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "commit_seconds", Help: "h", Buckets: []float64{0.5, 1}})
	summary := prometheus.NewSummary(prometheus.SummaryOpts{Name: "gc_seconds", Help: "h", Objectives: map[float64]float64{0.5: 0.05}})
	reg.MustRegister(counter, gauge, histogram, summary)
	counter.WithLabelValues("refresh").Add(3)
	gauge.Set(42)
	histogram.Observe(0.25)
	histogram.Observe(2)
	summary.Observe(7)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1764300000000)
	raw, err := json.Marshal(selfmon.Encode(families, "iw-1", at))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"host":{"name":"iw-1"},"metrics":[` +
		`{"name":"commit_seconds_bucket","labels":{"le":"0.5"},"points":[[1764300000000,1]]},` +
		`{"name":"commit_seconds_bucket","labels":{"le":"1"},"points":[[1764300000000,1]]},` +
		`{"name":"commit_seconds_bucket","labels":{"le":"+Inf"},"points":[[1764300000000,2]]},` +
		`{"name":"commit_seconds_sum","points":[[1764300000000,2.25]]},` +
		`{"name":"commit_seconds_count","points":[[1764300000000,2]]},` +
		`{"name":"gc_seconds","labels":{"quantile":"0.5"},"points":[[1764300000000,7]]},` +
		`{"name":"gc_seconds_sum","points":[[1764300000000,7]]},` +
		`{"name":"gc_seconds_count","points":[[1764300000000,1]]},` +
		`{"name":"jobs_total","labels":{"kind":"refresh"},"points":[[1764300000000,3]]},` +
		`{"name":"queue_rows","points":[[1764300000000,42]]}]}`
	if string(raw) != want {
		t.Fatalf("push\n%s\nwant\n%s", raw, want)
	}
}

// A summary's quantile before any observation is NaN, which JSON cannot carry: it is left out, and the
// rest of the push goes.
func TestEncodeLeavesOutWhatJSONCannotCarry(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewSummary(prometheus.SummaryOpts{Name: "idle_seconds", Help: "h", Objectives: map[float64]float64{0.9: 0.01}}))
	families, _ := reg.Gather()
	raw, err := json.Marshal(selfmon.Encode(families, "iw-1", time.UnixMilli(0)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "quantile") || !strings.Contains(string(raw), `"idle_seconds_count"`) {
		t.Fatalf("push %s: want the count without the NaN quantile", raw)
	}
}

func TestConfigNamesTheFlagToFix(t *testing.T) {
	for _, c := range []struct {
		cfg  selfmon.Config
		want string
	}{
		{selfmon.Config{URL: "ftp://x", Key: "k", Interval: time.Minute}, "--self-monitoring-url"},
		{selfmon.Config{URL: "http://127.0.0.1:8080", Interval: time.Minute}, "--self-monitoring-key"},
		{selfmon.Config{URL: "http://127.0.0.1:8080", Key: "iwk_secret", Interval: time.Millisecond}, "--self-monitoring-interval"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "iwk_secret") {
			t.Errorf("%+v: %v, want an error naming %s and not the key", c.cfg, err, c.want)
		}
	}
	if err := (selfmon.Config{}).Validate(); err != nil {
		t.Errorf("off: %v", err)
	}
}
