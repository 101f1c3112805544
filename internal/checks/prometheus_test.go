package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// exposition is a small text exposition with every metric type and a label the store owns.
const exposition = `# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.42
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 1234.5
node_cpu_seconds_total{cpu="0",mode="user"} 56.25
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 3
http_request_duration_seconds_bucket{le="1"} 5
http_request_duration_seconds_bucket{le="+Inf"} 6
http_request_duration_seconds_sum 2.5
http_request_duration_seconds_count 6
# TYPE rpc_latency summary
rpc_latency{quantile="0.99"} 0.2
rpc_latency_sum 10
rpc_latency_count 100
# A label the store sets on every sample of a check.
app_info{host="inside",version="1.2"} 1 1700000000000
`

func probeProm(t *testing.T, target, settings string, timeout time.Duration) Outcome {
	t.Helper()
	c := Check{Kind: "prometheus", Target: target, Timeout: timeout, Settings: json.RawMessage(settings)}
	return loopbackProber().Probe(context.Background(), c)
}

// metricsByKey indexes an outcome's metrics by name and sorted labels.
func metricsByKey(out Outcome) map[string]float64 {
	m := map[string]float64{}
	for _, s := range out.Metrics {
		m[s.Name+fmt.Sprint(s.Labels)] = s.Value
	}
	return m
}

// A text exposition is scraped whole: each sample under its name and labels, histogram and summary as
// Prometheus stores them, a clashing host label kept as exported_host, the exposition's timestamp ignored;
// up, scrape_duration_seconds and the sample counts beside them.
func TestPrometheusScrapesTextExposition(t *testing.T) {
	var accept, timeout string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept, timeout = r.Header.Get("Accept"), r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprint(w, exposition)
	}))
	defer srv.Close()
	out := probeProm(t, srv.URL+"/metrics", `{}`, 5*time.Second)
	if !out.Up || out.Reason != "" {
		t.Fatalf("down: %s", out.Reason)
	}
	got := metricsByKey(out)
	for key, want := range map[string]float64{
		"node_load1map[]": 0.42,
		"node_cpu_seconds_totalmap[cpu:0 mode:idle]":       1234.5,
		"node_cpu_seconds_totalmap[cpu:0 mode:user]":       56.25,
		"http_request_duration_seconds_bucketmap[le:0.1]":  3,
		"http_request_duration_seconds_bucketmap[le:1]":    5,
		"http_request_duration_seconds_bucketmap[le:+Inf]": 6,
		"http_request_duration_seconds_summap[]":           2.5,
		"http_request_duration_seconds_countmap[]":         6,
		"rpc_latencymap[quantile:0.99]":                    0.2,
		"rpc_latency_summap[]":                             10,
		"rpc_latency_countmap[]":                           100,
		"app_infomap[exported_host:inside version:1.2]":    1,
		"upmap[]":                     1,
		"scrape_samples_scrapedmap[]": 12,
		"scrape_samples_post_metric_relabelingmap[]": 12,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	if _, ok := got["scrape_duration_secondsmap[]"]; !ok || len(out.Metrics) != 12+4 {
		t.Errorf("%d metrics, want 12 samples and up, scrape_duration_seconds and the two counts: %v", len(out.Metrics), got)
	}
	if !strings.Contains(accept, "application/vnd.google.protobuf") || timeout != "5" {
		t.Errorf("the scrape sent Accept %q and timeout %q", accept, timeout)
	}
}

// A client_golang registry answers in the protobuf format the scrape asks for first; histograms without
// their implicit +Inf bucket get it from the count.
func TestPrometheusScrapesProtobufExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "job_seconds", Buckets: []float64{1, 10}})
	reg.MustRegister(h)
	for _, v := range []float64{0.5, 5, 50} {
		h.Observe(v)
	}
	var contentType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, r)
		contentType = rec.Header().Get("Content-Type")
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		_, _ = w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	out := probeProm(t, srv.URL, `{}`, 5*time.Second)
	if !out.Up || out.Detail["format"] != "protobuf" || !strings.Contains(contentType, "protobuf") {
		t.Fatalf("up %v, format %v (served %s): %s", out.Up, out.Detail["format"], contentType, out.Reason)
	}
	got := metricsByKey(out)
	for key, want := range map[string]float64{"job_seconds_bucketmap[le:1]": 1, "job_seconds_bucketmap[le:10]": 2,
		"job_seconds_bucketmap[le:+Inf]": 3, "job_seconds_countmap[]": 3, "job_seconds_summap[]": 55.5} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (%v)", key, got[key], want, got)
		}
	}
}

// Allow and deny lists (anchored RE2 on the sample's name) choose what is stored; max_series cuts the rest,
// first by name, and the check is down saying so.
func TestPrometheusAllowDenyAndSeriesCap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, exposition) }))
	defer srv.Close()
	out := probeProm(t, srv.URL, `{"allow":["node_.*","rpc_latency.*"],"deny":["node_cpu.*","rpc_latency_sum"]}`, 5*time.Second)
	got := metricsByKey(out)
	if !out.Up || len(got) != 3+4 || got["node_load1map[]"] != 0.42 || got["rpc_latency_countmap[]"] != 100 ||
		got["scrape_samples_post_metric_relabelingmap[]"] != 3 || got["scrape_samples_scrapedmap[]"] != 12 {
		t.Errorf("filtered: up %v %s %v", out.Up, out.Reason, got)
	}
	out = probeProm(t, srv.URL, `{"max_series":2}`, 5*time.Second)
	got = metricsByKey(out)
	if out.Up || !strings.Contains(out.Reason, "12 series after the allow and deny lists, more than max_series (2)") ||
		got["upmap[]"] != 0 || len(out.Metrics) != 2+4 || got["app_infomap[exported_host:inside version:1.2]"] != 1 {
		t.Errorf("capped: up %v %q %v", out.Up, out.Reason, got)
	}
}

// A huge exposition is read up to max_bytes, a slow one until the check's timeout: what arrived, up to its
// last whole line, is stored, and the check is down with a reason that says which.
func TestPrometheusCutsHugeAndSlowExpositions(t *testing.T) {
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "filler_metric{i=\"%d\"} %d\n", i, i); err != nil {
				return // the scrape stopped reading
			}
		}
	}))
	defer huge.Close()
	out := probeProm(t, huge.URL, `{"max_bytes":4096}`, 5*time.Second)
	if out.Up || !strings.Contains(out.Reason, "larger than max_bytes (4096 bytes)") || out.Detail["bytes"] != 4096 {
		t.Errorf("huge: up %v %q %v", out.Up, out.Reason, out.Detail)
	}
	got := metricsByKey(out)
	if n := got["scrape_samples_scrapedmap[]"]; n < 100 || got["filler_metricmap[i:0]"] != 0 || got["upmap[]"] != 0 {
		t.Errorf("huge: %v samples stored; %v", n, got["upmap[]"])
	}

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "early_metric 1\nlate_metr")
		w.(http.Flusher).Flush()
		<-release // the rest never comes while the scrape waits
	}))
	defer slow.Close()
	defer close(release)
	out = probeProm(t, slow.URL, `{}`, time.Second)
	got = metricsByKey(out)
	if out.Up || !strings.Contains(out.Reason, "the exposition was not complete: timeout after 1s") ||
		got["early_metricmap[]"] != 1 || got["scrape_samples_scrapedmap[]"] != 1 {
		t.Errorf("slow: up %v %q %v", out.Up, out.Reason, got)
	}
}

// A status other than 200, a body that is not an exposition, and a redirect elsewhere that would carry
// the headers are down with their reasons and store up = 0 and the duration.
func TestPrometheusFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
		case "/garbage":
			fmt.Fprint(w, "this is { not an exposition\n")
		case "/away":
			http.Redirect(w, r, "http://127.0.0.2:1/metrics", http.StatusFound)
		}
	}))
	defer srv.Close()
	for path, want := range map[string]string{
		"/missing": "status 404, expected 200",
		"/garbage": "the exposition does not parse",
		"/away":    "the redirect leads to another origin and the check sends headers; it was not followed",
	} {
		out := probeProm(t, srv.URL+path, `{"headers":{"Authorization":"Bearer s3cret"}}`, 5*time.Second)
		got := metricsByKey(out)
		if out.Up || !strings.Contains(out.Reason, want) || got["upmap[]"] != 0 {
			t.Errorf("%s: up %v %q, want %q; %v", path, out.Up, out.Reason, want, got)
		}
		if _, ok := got["scrape_duration_secondsmap[]"]; !ok {
			t.Errorf("%s: no scrape_duration_seconds", path)
		}
	}
}

// Settings are bounded like every kind's, and the guard refuses a scrape of a private address in SaaS mode.
func TestPrometheusValidateAndGuard(t *testing.T) {
	for settings, field := range map[string]string{
		`{"max_series":0}`:        "settings.max_series",
		`{"max_series":50001}`:    "settings.max_series",
		`{"max_bytes":100}`:       "settings.max_bytes",
		`{"allow":["("]}`:         "settings.allow[0]",
		`{"deny":[""]}`:           "settings.deny[0]",
		`{"headers":{"a b":"x"}}`: "settings.headers",
		`{"interval":5}`:          "settings.interval",
		`{"allow":` + strings.Repeat(`["x"],`, 0) + `["` + strings.Repeat("x", 257) + `"]}`: "settings.allow[0]",
	} {
		ps := Validate("prometheus", "http://node:9100/metrics", json.RawMessage(settings))
		if len(ps) != 1 || ps[0].Field != field {
			t.Errorf("%s: %v, want one problem of %s", settings, ps, field)
		}
	}
	if ps := Validate("prometheus", "node:9100", nil); len(ps) != 1 || ps[0].Field != "target" {
		t.Errorf("a target that is not a URL: %v", ps)
	}
	if ps := Validate("prometheus", "https://node:9100/metrics", json.RawMessage(`{"allow":["node_.*"],"max_series":100,"max_bytes":65536}`)); len(ps) != 0 {
		t.Errorf("valid settings refused: %v", ps)
	}
	saas := NewProber(&Guard{AllowPrivate: false, Resolver: noDNSResolver()})
	out := saas.Probe(context.Background(), Check{Kind: "prometheus", Target: "http://127.0.0.1:9100/metrics", Timeout: time.Second})
	if out.Up || !strings.Contains(out.Reason, "loopback") {
		t.Errorf("SaaS mode scraped loopback: %v %q", out.Up, out.Reason)
	}
}
