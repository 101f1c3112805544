package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// runOTLP measures OTLP/HTTP ingest (POST /v1/metrics, protobuf) against our JSON ingest of the same
// samples — the same series, one point each, the same pushes and agents — in interleaved rounds of one
// run, and prints both with their ratio (goal ≥ 0.8).
//
//	go run ./cmd/infrawatch-bench otlp [--duration 20s] [--rounds 3] [--series 10000] [--agents 8] [--push-sizes 1000,100]
func runOTLP(args []string) int {
	fs := flag.NewFlagSet("otlp", flag.ExitOnError)
	databaseURL := fs.String("database-url", "", "superuser URL of an empty database to use (default: start a throwaway cluster)")
	flavor := fs.String("flavor", "", "storage flavor: timescale or postgres (default: detect)")
	duration := fs.Duration("duration", 20*time.Second, "how long each measurement runs")
	rounds := fs.Int("rounds", 3, "rounds of every measurement, interleaved; the table shows each one's median")
	seriesCount := fs.Int("series", 10000, "distinct series the agents write")
	agentList := fs.String("agents", "8", "comma-separated numbers of concurrent agents")
	pushList := fs.String("push-sizes", "1000,100", "comma-separated samples per push")
	_ = fs.Parse(args)

	ctx := context.Background()
	pool, built, version, closeDB, err := openDatabase(ctx, *databaseURL, *flavor)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer closeDB()
	fmt.Printf("infrawatch OTLP ingest benchmark: %s flavor, PostgreSQL %s, %d CPUs, %s per measurement, %d series\n\n",
		built, version, runtime.NumCPU(), *duration, *seriesCount)
	b, err := newBench(ctx, pool, *seriesCount)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.close()
	// OTLP's first push must store: its series are the JSON pushes' (bench.metric{series="sN"}).
	if n, err := b.otlpPush(ctx, http.DefaultClient, 0, 10, b.pushClock.Add(1)); err != nil || n != 10 {
		fmt.Fprintf(os.Stderr, "a first OTLP push: %d stored, %v\n", n, err)
		return 1
	}
	var series int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM app.series WHERE tenant_id = $1", b.tenantID).Scan(&series); err != nil ||
		series != *seriesCount {
		fmt.Fprintf(os.Stderr, "OTLP pushes made series of their own: %d series, want %d (%v)\n", series, *seriesCount, err)
		return 1
	}

	type pair struct {
		agents, size int
		json, otlp   []float64
	}
	var pairs []*pair
	for _, agents := range ints(*agentList) {
		for _, size := range ints(*pushList) {
			pairs = append(pairs, &pair{agents: agents, size: size})
		}
	}
	for r := range *rounds {
		for _, p := range pairs {
			j, err := b.httpIngest(ctx, p.agents, p.size, *duration)
			if err != nil {
				fmt.Fprintln(os.Stderr, "JSON:", err)
				return 1
			}
			o, err := b.otlpIngest(ctx, p.agents, p.size, *duration)
			if err != nil {
				fmt.Fprintln(os.Stderr, "OTLP:", err)
				return 1
			}
			p.json, p.otlp = append(p.json, j), append(p.otlp, o)
			fmt.Fprintf(os.Stderr, "round %d: %d agents, %d-sample pushes: JSON %.0f, OTLP %.0f samples/s\n", r+1, p.agents, p.size, j, o)
		}
	}
	fmt.Println("| pushes (median of rounds) | JSON samples/s | OTLP samples/s | OTLP / JSON | goal | rounds JSON | rounds OTLP |")
	fmt.Println("|---|---:|---:|---:|---|---|---|")
	for _, p := range pairs {
		j, o := median(p.json), median(p.otlp)
		fmt.Printf("| %d agents, %d samples each | %.0f | %.0f | %.2f | ≥ 0.8 | %s | %s |\n", p.agents, p.size, j, o, o/j,
			formatRates(p.json), formatRates(p.otlp))
	}
	return 0
}

// otlpIngest measures end-to-end OTLP pushes as httpIngest measures JSON ones: the same agents, push
// sizes, series and points.
func (b *bench) otlpIngest(ctx context.Context, agents, size int, d time.Duration) (float64, error) {
	var total atomic.Int64
	var failed atomic.Value
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for a := range agents {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			offset := a * size
			for time.Now().Before(deadline) {
				n, err := b.otlpPush(ctx, client, offset, size, b.pushClock.Add(1))
				if err != nil {
					failed.Store(err)
					return
				}
				total.Add(int64(n))
				offset = (offset + agents*size) % len(b.series)
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return 0, err
	}
	return float64(total.Load()) / time.Since(start).Seconds(), nil
}

// otlpPush sends one OTLP export of size points and returns how many were stored.
func (b *bench) otlpPush(ctx context.Context, client *http.Client, offset, size int, ms int64) (int, error) {
	body := otlpBody(offset, size, len(b.series), ms)
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+b.addr+"/v1/metrics", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+b.key)
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("push answered %s: %q", resp.Status, answer)
	}
	res := pmetricotlp.NewExportResponse()
	if err := res.UnmarshalProto(answer); err != nil {
		return 0, fmt.Errorf("the answer is not an ExportMetricsServiceResponse: %w", err)
	}
	if ps := res.PartialSuccess(); ps.RejectedDataPoints() > 0 || ps.ErrorMessage() != "" {
		return 0, fmt.Errorf("push refused %d points: %s", ps.RejectedDataPoints(), ps.ErrorMessage())
	}
	return size, nil
}

// otlpBody is an ExportMetricsServiceRequest holding one gauge, bench.metric, with one point for each of
// size series starting at offset (modulo n), attribute series=sN — the samples pushBody sends as JSON.
// It is written with protowire, as pushBody is written by hand: the load generator shares the machine
// with the server, so it must cost little (infrawatch decodes it with pdata).
func otlpBody(offset, size, n int, ms int64) []byte {
	ns := uint64(ms) * 1e6
	var gauge []byte
	var point, attr, value, label []byte
	for i := range size {
		label = append(label[:0], 's')
		label = strconv.AppendInt(label, int64((offset+i)%n), 10)
		value = protowire.AppendTag(value[:0], 1, protowire.BytesType) // AnyValue.string_value
		value = protowire.AppendBytes(value, label)
		attr = protowire.AppendTag(attr[:0], 1, protowire.BytesType) // KeyValue.key
		attr = protowire.AppendString(attr, "series")
		attr = protowire.AppendTag(attr, 2, protowire.BytesType) // KeyValue.value
		attr = protowire.AppendBytes(attr, value)
		point = protowire.AppendTag(point[:0], 3, protowire.Fixed64Type) // NumberDataPoint.time_unix_nano
		point = protowire.AppendFixed64(point, ns)
		point = protowire.AppendTag(point, 4, protowire.Fixed64Type) // NumberDataPoint.as_double
		point = protowire.AppendFixed64(point, math.Float64bits(float64(i)+0.5))
		point = protowire.AppendTag(point, 7, protowire.BytesType) // NumberDataPoint.attributes
		point = protowire.AppendBytes(point, attr)
		gauge = protowire.AppendTag(gauge, 1, protowire.BytesType) // Gauge.data_points
		gauge = protowire.AppendBytes(gauge, point)
	}
	var metric []byte
	metric = protowire.AppendTag(metric, 1, protowire.BytesType) // Metric.name
	metric = protowire.AppendString(metric, "bench.metric")
	metric = protowire.AppendTag(metric, 5, protowire.BytesType) // Metric.gauge
	metric = protowire.AppendBytes(metric, gauge)
	var scope []byte
	scope = protowire.AppendTag(scope, 2, protowire.BytesType) // ScopeMetrics.metrics
	scope = protowire.AppendBytes(scope, metric)
	var resource []byte
	resource = protowire.AppendTag(resource, 2, protowire.BytesType) // ResourceMetrics.scope_metrics
	resource = protowire.AppendBytes(resource, scope)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType) // ExportMetricsServiceRequest.resource_metrics
	return protowire.AppendBytes(req, resource)
}
