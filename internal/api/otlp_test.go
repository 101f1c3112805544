package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// otelResource is the resource an SDK of host otel-1 reports: host.name names the host, the rest are labels,
// but process.pid and the telemetry.sdk attributes, which are never labels.
func otelResource(host string) *resource.Resource {
	return resource.NewSchemaless(attribute.String("host.name", host), attribute.String("service.name", "checkout"),
		attribute.String("deployment.environment", "prod"), attribute.Int("process.pid", 4242),
		attribute.String("telemetry.sdk.language", "go"))
}

// meterProvider is an SDK meter provider exporting with the official OTLP/HTTP exporter to the world, with
// key; Flush exports what was recorded, at once.
func (w *world) meterProvider(t *testing.T, key, host string, temporality sdkmetric.TemporalitySelector) *sdkmetric.MeterProvider {
	t.Helper()
	u, _ := url.Parse(w.srv.URL)
	exp, err := otlpmetrichttp.New(context.Background(), otlpmetrichttp.WithEndpoint(u.Host), otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithHeaders(map[string]string{"Authorization": "Bearer " + key}),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression), otlpmetrichttp.WithTemporalitySelector(temporality),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	// The periodic reader exports on ForceFlush; its interval is long enough never to export by itself.
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(otelResource(host)),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "request.duration"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: []float64{1, 5, 10}}})))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

func flush(t *testing.T, mp *sdkmetric.MeterProvider) {
	t.Helper()
	if err := mp.ForceFlush(context.Background()); err != nil {
		t.Fatalf("the SDK's export failed: %v", err)
	}
}

// nextMillisecond returns once the clock has passed the millisecond it read: two exports then carry
// different times, which infrawatch stores to the millisecond. It waits for the clock, not for a worker.
func nextMillisecond() {
	for ms := time.Now().UnixMilli(); time.Now().UnixMilli() == ms; {
	}
}

// sampleOf finds stored samples by metric name and a label fragment (`"le": "5"`), in time order.
func samplesOf(all []storedSample, name, fragment string) []storedSample {
	var out []storedSample
	for _, s := range all {
		if s.name == name && strings.Contains(s.labels, fragment) {
			out = append(out, s)
		}
	}
	return out
}

// The official OpenTelemetry Go SDK exports counters, a gauge, an up-down counter and a histogram with its
// OTLP/HTTP exporter (protobuf, gzip) to the ingest routes: every point arrives under the resource's host,
// with the point's and the resource's attributes as labels (process.* and telemetry.* left out) and the
// values recorded; the histogram as _bucket/_sum/_count. Delta temporality arrives as running totals.
// B's key writes only B.
func TestOTLPMetricsFromTheSDK(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		mp := w.meterProvider(t, w.ingestKey(t, w.a), "otel-1", sdkmetric.DefaultTemporalitySelector)
		meter := mp.Meter("shop")
		ctx := context.Background()
		requests, _ := meter.Int64Counter("http.requests")
		temperature, _ := meter.Float64Gauge("room.temperature")
		queue, _ := meter.Int64UpDownCounter("queue.depth")
		duration, _ := meter.Float64Histogram("request.duration")
		route := attribute.String("route", "/cart")
		requests.Add(ctx, 5, metric.WithAttributes(route))
		requests.Add(ctx, 3, metric.WithAttributes(route))
		temperature.Record(ctx, 21.5)
		queue.Add(ctx, 7)
		queue.Add(ctx, -2)
		for _, v := range []float64{0.5, 3, 7, 20} {
			duration.Record(ctx, v, metric.WithAttributes(route))
		}
		flush(t, mp)
		nextMillisecond()
		requests.Add(ctx, 4, metric.WithAttributes(route))
		flush(t, mp)

		// Delta temporality, from another host: two exports of a counter's increments.
		nextMillisecond()
		delta := w.meterProvider(t, w.ingestKey(t, w.a), "otel-2", func(sdkmetric.InstrumentKind) metricdata.Temporality {
			return metricdata.DeltaTemporality
		})
		jobs, _ := delta.Meter("worker").Int64Counter("jobs.done")
		jobs.Add(ctx, 10)
		flush(t, delta)
		nextMillisecond()
		jobs.Add(ctx, 6)
		flush(t, delta)

		// Tenant B, same metric names.
		mpB := w.meterProvider(t, w.ingestKey(t, w.b), "otel-b", sdkmetric.DefaultTemporalitySelector)
		bRequests, _ := mpB.Meter("shop").Int64Counter("http.requests")
		bRequests.Add(ctx, 99)
		flush(t, mpB)

		all := w.samples(t)
		var a, b []storedSample
		for _, s := range all {
			switch s.tenant {
			case w.a.id.String():
				a = append(a, s)
			case w.b.id.String():
				b = append(b, s)
			}
		}
		values := func(ss []storedSample) []float64 {
			var out []float64
			for _, s := range ss {
				out = append(out, s.value)
			}
			return out
		}
		// The seed's sample aside, every sample of A is of otel-1 or otel-2 and carries the resource's labels.
		for _, s := range a {
			if s.host != "otel-1" && s.host != "otel-2" {
				continue
			}
			for _, want := range []string{`"service.name": "checkout"`, `"deployment.environment": "prod"`, `"host": "` + s.host + `"`} {
				if !strings.Contains(s.labels, want) {
					t.Errorf("%s %s lacks %s", s.name, s.labels, want)
				}
			}
			if strings.Contains(s.labels, "process.pid") || strings.Contains(s.labels, "telemetry.sdk") || strings.Contains(s.labels, "host.name") {
				t.Errorf("%s %s carries an attribute that is never a label", s.name, s.labels)
			}
		}
		check := func(name, fragment string, want ...float64) {
			t.Helper()
			got := samplesOf(a, name, fragment)
			if !slices.Equal(values(got), want) {
				t.Errorf("%s{%s}: %v, want %v", name, fragment, values(got), want)
			}
		}
		// Cumulative temporality: every export sends every series again, as stored.
		check("http.requests", `"route": "/cart"`, 8, 12)
		check("room.temperature", `"host": "otel-1"`, 21.5, 21.5)
		check("queue.depth", `"host": "otel-1"`, 5, 5)
		check("request.duration_bucket", `"le": "1"`, 1, 1)
		check("request.duration_bucket", `"le": "5"`, 2, 2)
		check("request.duration_bucket", `"le": "10"`, 3, 3)
		check("request.duration_bucket", `"le": "+Inf"`, 4, 4)
		check("request.duration_sum", `"route": "/cart"`, 30.5, 30.5)
		check("request.duration_count", `"route": "/cart"`, 4, 4)
		check("jobs.done", `"host": "otel-2"`, 10, 16) // delta: summed into a running total
		if len(samplesOf(b, "http.requests", `"host": "otel-b"`)) != 1 || len(samplesOf(a, "http.requests", "otel-b")) != 0 {
			t.Errorf("B's export: B has %v, A has %v", samplesOf(b, "http.requests", ""), samplesOf(a, "http.requests", "otel-b"))
		}
		var other int
		if err := w.d.Pool.QueryRow(ctx, `SELECT count(*) FROM app.hosts WHERE name = 'otel-b' AND tenant_id <> $1`, w.b.id).
			Scan(&other); err != nil || other != 0 {
			t.Errorf("B's host registered in another tenant: %d (%v)", other, err)
		}
	})
}

// The official OTLP/HTTP log exporter sends records of every severity: they are stored as logs of the
// resource's host with the severity mapped, the body as the message, the service as the source and the
// attributes (trace and span ids included); B's key writes only B.
func TestOTLPLogsFromTheSDK(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		ctx := context.Background()
		provider := func(key, host string) *sdklog.LoggerProvider {
			u, _ := url.Parse(w.srv.URL)
			exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpoint(u.Host), otlploghttp.WithInsecure(),
				otlploghttp.WithHeaders(map[string]string{"Authorization": "Bearer " + key}),
				otlploghttp.WithCompression(otlploghttp.GzipCompression), otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
			if err != nil {
				t.Fatal(err)
			}
			lp := sdklog.NewLoggerProvider(sdklog.WithResource(otelResource(host)), sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
			t.Cleanup(func() { _ = lp.Shutdown(ctx) })
			return lp
		}
		lp := provider(w.ingestKey(t, w.a), "otel-1")
		logger := lp.Logger("payments")
		traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
		spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
		spanCtx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID}))
		for _, r := range []struct {
			sev  otellog.Severity
			text string
		}{{otellog.SeverityTrace, "trace line"}, {otellog.SeverityDebug2, "debug line"}, {otellog.SeverityInfo, "info line"},
			{otellog.SeverityWarn3, "warn line"}, {otellog.SeverityError, "error line"}, {otellog.SeverityFatal, "fatal line"}} {
			var rec otellog.Record
			rec.SetTimestamp(time.Now())
			rec.SetSeverity(r.sev)
			rec.SetBody(attribute.StringValue(r.text))
			rec.AddAttributes(attribute.Int("attempt", 3), attribute.String("order", "A-17"))
			logger.Emit(spanCtx, rec)
		}
		if err := lp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		lpB := provider(w.ingestKey(t, w.b), "otel-b")
		var rec otellog.Record
		rec.SetTimestamp(time.Now())
		rec.SetBody(attribute.StringValue("B's line"))
		lpB.Logger("payments").Emit(ctx, rec)
		if err := lpB.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}

		rows, err := w.d.Pool.Query(ctx, `SELECT l.tenant_id::text, coalesce(h.name, ''), l.source, l.severity, l.message, l.attributes::text
		                                    FROM ts.logs l LEFT JOIN app.hosts h ON h.id = l.host_id
		                                   WHERE l.source <> 'syslog' ORDER BY l.time, l.message`)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rows.Next() {
			var tenant, host, source, severity, message, attrs string
			if err := rows.Scan(&tenant, &host, &source, &severity, &message, &attrs); err != nil {
				t.Fatal(err)
			}
			got[message] = severity
			wantTenant, wantHost := w.a.id.String(), "otel-1"
			if message == "B's line" {
				wantTenant, wantHost = w.b.id.String(), "otel-b"
			} else {
				var a map[string]any
				_ = json.Unmarshal([]byte(attrs), &a)
				if a["attempt"] != 3.0 || a["order"] != "A-17" || a["trace_id"] != traceID.String() || a["span_id"] != spanID.String() ||
					a["deployment.environment"] != "prod" || a["process.pid"] != nil {
					t.Errorf("%q: attributes %s", message, attrs)
				}
			}
			if tenant != wantTenant || host != wantHost || source != "checkout" {
				t.Errorf("%q: tenant %s host %q source %q, want %s %q checkout", message, tenant, host, source, wantTenant, wantHost)
			}
		}
		want := map[string]string{"trace line": "debug", "debug line": "debug", "info line": "info", "warn line": "warning",
			"error line": "error", "fatal line": "critical", "B's line": "info"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("stored lines and severities: %v, want %v", got, want)
		}
	})
}

// postOTLP posts an OTLP body as the exporters do.
func (w *world) postOTLP(t *testing.T, path, key, contentType string, body []byte, gz bool) response {
	t.Helper()
	headers := []string{"Content-Type", contentType}
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
		headers = append(headers, "Content-Encoding", "gzip")
	}
	return w.raw(t, path, key, body, headers...)
}

// gaugeExport is an export of one gauge with the given points (time in ms, value), from host.
func gaugeExport(host, name string, points [][2]float64, resourceAttrs map[string]string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("host.name", host)
	for k, v := range resourceAttrs {
		rm.Resource().Attributes().PutStr(k, v)
	}
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	gauge := m.SetEmptyGauge()
	for i, p := range points {
		dp := gauge.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.Timestamp(int64(p[0]) * 1e6))
		dp.SetDoubleValue(p[1])
		dp.Attributes().PutInt("point", int64(i))
	}
	return md
}

// OTLP's answers, as the specification has them: JSON in and out; a partial success names what was refused
// and what was dropped and stores the rest (200); a body that does not decode is a 400 with a google.rpc.Status
// in the request's encoding; another Content-Type a 415.
func TestOTLPAnswersAsTheSpecificationSays(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.ingestKey(t, w.a)
	now := float64(time.Now().UnixMilli())

	// JSON, gzip, all stored: an empty response.
	body, _ := pmetricotlp.NewExportRequestFromMetrics(gaugeExport("json-host", "json.gauge", [][2]float64{{now - 1000, 1}, {now, 2}}, nil)).MarshalJSON()
	got := w.postOTLP(t, "/v1/metrics", key, "application/json", body, true).must(t, http.StatusOK)
	full := pmetricotlp.NewExportResponse()
	if err := full.UnmarshalJSON([]byte(got.raw)); err != nil || got.header.Get("Content-Type") != "application/json" ||
		full.PartialSuccess().RejectedDataPoints() != 0 || full.PartialSuccess().ErrorMessage() != "" {
		t.Errorf("all stored: %s %q (%v)", got.header.Get("Content-Type"), got.raw, err)
	}

	// Protobuf: one point too old, and 40 resource attributes, more than the 30 labels a series may have.
	attrs := map[string]string{}
	for i := range 40 {
		attrs[fmt.Sprintf("k8s.attr%02d", i)] = "v"
	}
	md := gaugeExport("proto-host", "proto.gauge", [][2]float64{{now - 40*24*3600*1000, 1}, {now, 2}}, attrs)
	body, _ = pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	got = w.postOTLP(t, "/v1/metrics", key, "application/x-protobuf", body, false).must(t, http.StatusOK)
	resp := pmetricotlp.NewExportResponse()
	if err := resp.UnmarshalProto([]byte(got.raw)); err != nil {
		t.Fatalf("the answer is not an ExportMetricsServiceResponse: %v", err)
	}
	ps := resp.PartialSuccess()
	if ps.RejectedDataPoints() != 1 || !strings.Contains(ps.ErrorMessage(), "older than the raw retention") ||
		!strings.Contains(ps.ErrorMessage(), "k8s.attr39") || strings.Contains(ps.ErrorMessage(), "k8s.attr00,") {
		t.Errorf("partial success: %d rejected, %q", ps.RejectedDataPoints(), ps.ErrorMessage())
	}
	stored := samplesOf(w.samples(t), "proto.gauge", "")
	if len(stored) != 1 || stored[0].value != 2 || !strings.Contains(stored[0].labels, `"k8s.attr00": "v"`) {
		t.Errorf("stored: %+v", stored)
	}

	// Logs: one record without a body is refused, the other stored.
	logsJSON := fmt.Sprintf(`{"resourceLogs":[{"resource":{"attributes":[{"key":"host.name","value":{"stringValue":"json-host"}}]},
		"scopeLogs":[{"scope":{"name":"app"},"logRecords":[{"timeUnixNano":"%d","severityText":"WARN","body":{"stringValue":"disk almost full"}},
		{"timeUnixNano":"%d"}]}]}]}`, int64(now)*1e6, int64(now)*1e6)
	got = w.postOTLP(t, "/v1/logs", key, "application/json", []byte(logsJSON), false).must(t, http.StatusOK)
	if !strings.Contains(got.raw, `"rejectedLogRecords":"1"`) || !strings.Contains(got.raw, "neither a body nor an event name") {
		t.Errorf("logs partial success: %s", got.raw)
	}
	var severity, source string
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT severity, source FROM ts.logs WHERE message = 'disk almost full'`).
		Scan(&severity, &source); err != nil || severity != "warning" || source != "app" {
		t.Errorf("stored line: %q %q %v", severity, source, err)
	}

	// Bad protobuf: 400 with a Status in protobuf; bad JSON: in JSON.
	got = w.postOTLP(t, "/v1/metrics", key, "application/x-protobuf", []byte("\x0a\xff\xff\xff\xff\x0f garbage"), false).
		must(t, http.StatusBadRequest)
	var st rpcstatus.Status
	if err := proto.Unmarshal([]byte(got.raw), &st); err != nil || st.Code != 3 || !strings.Contains(st.Message, "malformed OTLP metrics request") ||
		got.header.Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("bad protobuf: %s %v %v", got.header.Get("Content-Type"), &st, err)
	}
	got = w.postOTLP(t, "/v1/logs", key, "application/json", []byte(`{"resourceLogs": [`), false).must(t, http.StatusBadRequest)
	if !strings.Contains(got.raw, `"code":3`) || !strings.Contains(got.raw, "malformed OTLP logs request") {
		t.Errorf("bad JSON: %s", got.raw)
	}
	got = w.postOTLP(t, "/v1/metrics", key, "text/plain", []byte("x"), false).must(t, http.StatusUnsupportedMediaType)
	if !strings.Contains(got.raw, "application/x-protobuf") {
		t.Errorf("415: %s", got.raw)
	}
	// Gzip that is not: 400.
	w.raw(t, "/v1/metrics", key, []byte("not gzip"), "Content-Type", "application/x-protobuf", "Content-Encoding", "gzip").
		must(t, http.StatusBadRequest)
	// A viewer's token may not push; no credential is a 401.
	w.postOTLP(t, "/v1/metrics", w.a.tokens["viewer"], "application/json", []byte("{}"), false).must(t, http.StatusForbidden)
	w.postOTLP(t, "/v1/metrics", "", "application/json", []byte("{}"), false).must(t, http.StatusUnauthorized)
}
