package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/infrawatch/infrawatch/internal/pgcluster"
)

// nodeExporterExposition is what Debian's prometheus-node-exporter 1.5 (default collectors) served on a
// 2-CPU machine: 650 samples in 283 families.
//
//go:embed testdata/node_exporter.prom
var nodeExporterExposition []byte

// exposition is the recorded exposition with each sample repeated copies times under a label copy, ready
// in the text and the protobuf format.
type exposition struct {
	text, protobuf []byte
	samples        int
}

func buildExposition(copies int) (exposition, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(bytes.NewReader(nodeExporterExposition))
	if err != nil {
		return exposition{}, fmt.Errorf("the recorded exposition: %w", err)
	}
	var text, protobuf bytes.Buffer
	textEnc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
	protoEnc := expfmt.NewEncoder(&protobuf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	samples := 0
	for _, mf := range byName {
		out := proto.Clone(mf).(*dto.MetricFamily)
		out.Metric = nil
		for c := range copies {
			for _, m := range mf.Metric {
				m = proto.Clone(m).(*dto.Metric)
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String("copy"), Value: proto.String(strconv.Itoa(c))})
				out.Metric = append(out.Metric, m)
				switch mf.GetType() {
				case dto.MetricType_HISTOGRAM:
					samples += len(m.GetHistogram().GetBucket()) + 2
				case dto.MetricType_SUMMARY:
					samples += len(m.GetSummary().GetQuantile()) + 2
				default:
					samples++
				}
			}
		}
		if err := textEnc.Encode(out); err != nil {
			return exposition{}, err
		}
		if err := protoEnc.Encode(out); err != nil {
			return exposition{}, err
		}
	}
	return exposition{text: text.Bytes(), protobuf: protobuf.Bytes(), samples: samples}, nil
}

// serveExposition is the scrape target, run as a child process so its CPU is nobody's: it prints its
// address and serves the recorded exposition on every path, in the format the scraper negotiates, as
// node_exporter's promhttp does.
func serveExposition(copiesArg string) int {
	copies, err := strconv.Atoi(copiesArg)
	if err != nil || copies < 1 {
		fmt.Fprintln(os.Stderr, "serve-exposition: copies must be a positive number")
		return 1
	}
	exp, err := buildExposition(copies)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NegotiateAccept(r.Header, expfmt.NewFormat(expfmt.TypeProtoDelim), expfmt.NewFormat(expfmt.TypeTextPlain))
		body := exp.text
		if format.FormatType() == expfmt.TypeProtoDelim {
			body = exp.protobuf
		} else {
			format = expfmt.NewFormat(expfmt.TypeTextPlain)
		}
		w.Header().Set("Content-Type", string(format))
		_, _ = w.Write(body)
	}))
	return 0
}

// benchScrape runs n prometheus checks a minute through the poller engine, then Prometheus scraping the
// same n targets a minute, each over the same window after a warm-up longer than a minute (so that every
// target's series exist), and prints both CPU shares.
func benchScrape(ctx context.Context, dbURL string, n, copies int, window time.Duration) error {
	exp, err := buildExposition(copies)
	if err != nil {
		return err
	}
	addr, stopTarget, err := startChild("serve-exposition", strconv.Itoa(copies))
	if err != nil {
		return err
	}
	defer stopTarget()
	targets := make([]string, n)
	for i := range targets {
		targets[i] = fmt.Sprintf("http://%s/metrics/%d", addr, i)
	}
	const warmup = 75 * time.Second
	// The first minute of scrapes creates n × samples series, more than the poller creates in a minute:
	// the warm-up waits for them (98 %: the rest come within the minute after), then a minute more.
	settleSeries := n * exp.samples * 98 / 100
	ours, err := runEngine(ctx, dbURL, "prometheus", targets, `{}`, warmup, settleSeries, window)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "infrawatch: %d scrapes, %d samples stored in %s; CPU %.2f s (%.1f %% of one core)\n",
		ours.runs, ours.samples, ours.to.Sub(ours.from).Round(time.Second), ours.cpu.Seconds(), ours.share())
	theirs, version, err := runPrometheus(addr, n, warmup, window)
	if err != nil {
		return err
	}
	fmt.Printf("Scrape: %d targets, each once a minute, serving a recorded node_exporter exposition (%d copies: %d samples, "+
		"%d bytes as text) from a child process; warm-up: infrawatch until %d of its %d series exist (%s) and %s more, "+
		"Prometheus %s; %s measured\n\n", n, copies, exp.samples, len(exp.text), settleSeries, n*exp.samples,
		ours.settled.Round(time.Second), warmup, warmup,
		window.Round(time.Second))
	fmt.Println("| scraper | scrapes/min | samples stored/min | process CPU | share of one core | goal |")
	fmt.Println("|---|---:|---:|---:|---:|---|")
	fmt.Printf("| infrawatch poller (engine, prober, samples writer; PostgreSQL not counted) | %.0f | %.0f | %.2f s | %.1f %% | ≤ 25 %% of one core |\n",
		ours.perMinute(), float64(ours.samples)/ours.to.Sub(ours.from).Minutes(), ours.cpu.Seconds(), ours.share())
	fmt.Printf("| Prometheus %s (its TSDB included) | %.0f | %.0f | %.2f s | %.1f %% | |\n", version, theirs.perMinute(),
		float64(theirs.samples)/theirs.to.Sub(theirs.from).Minutes(), theirs.cpu.Seconds(), theirs.share())
	fmt.Printf("\nratio of CPU, infrawatch / Prometheus: %.2f\n\n", ours.share()/theirs.share())
	return nil
}

// runPrometheus runs Debian's prometheus scraping the n paths of addr once a minute and measures its
// CPU (from /proc) over window after warmup; runs counts the scrapes and samples the samples it appended
// in the window, from its own metrics.
func runPrometheus(addr string, n int, warmup, window time.Duration) (engineResult, string, error) {
	var r engineResult
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return r, "", fmt.Errorf("prometheus not found: apt-get install -y prometheus")
	}
	dir, err := os.MkdirTemp("", "pollbench-prometheus-")
	if err != nil {
		return r, "", err
	}
	defer os.RemoveAll(dir)
	var conf strings.Builder
	conf.WriteString("global:\n  scrape_interval: 1m\n  scrape_timeout: 10s\nscrape_configs:\n  - job_name: node\n    static_configs:\n")
	for i := range n {
		fmt.Fprintf(&conf, "      - targets: ['%s']\n        labels: {__metrics_path__: '/metrics/%d', target: '%d'}\n", addr, i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf.String()), 0o644); err != nil {
		return r, "", err
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		return r, "", err
	}
	web := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return r, "", err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// Prometheus' own counters, from its /metrics (it does not scrape itself here): scrapes done and
	// samples appended.
	counters := func() (scrapes, appended float64, err error) {
		resp, err := http.Get("http://" + web + "/metrics")
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			return 0, 0, err
		}
		for _, m := range families["prometheus_target_interval_length_seconds"].GetMetric() {
			scrapes += float64(m.GetSummary().GetSampleCount())
		}
		for _, m := range families["prometheus_tsdb_head_samples_appended_total"].GetMetric() {
			appended += m.GetCounter().GetValue()
		}
		return scrapes, appended, nil
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get("http://" + web + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return r, "", fmt.Errorf("prometheus did not get ready on %s", web)
		}
	}
	time.Sleep(warmup)
	scrapes0, appended0, err := counters()
	if err != nil {
		return r, "", err
	}
	cpu0 := procCPU(cmd.Process.Pid)
	r.from = time.Now()
	time.Sleep(window)
	r.cpu, r.to = procCPU(cmd.Process.Pid)-cpu0, time.Now()
	scrapes1, appended1, err := counters()
	if err != nil {
		return r, "", err
	}
	r.runs, r.samples = int(scrapes1-scrapes0), int64(appended1-appended0)
	version := "?"
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 3 {
			version = f[2]
		}
	}
	return r, version, nil
}
