package checks

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// promKind scrapes a Prometheus exposition endpoint — node_exporter, windows_exporter, blackbox_exporter,
// any application's /metrics — and stores every sample it serves, as Prometheus would. Target: an
// http:// or https:// URL.
//
// The scrape asks for the protobuf format and accepts the text format (0.0.4; OpenMetrics 1.0 text
// parses as it); both are parsed by prometheus/common's expfmt. Each sample becomes a metric of its own
// name (a histogram's name_bucket{le}, name_sum and name_count; a summary's name{quantile}, name_sum and
// name_count), with its labels; a label named host, check or check_id, which the store sets, is kept as
// exported_host, exported_check or exported_check_id, as Prometheus keeps a clashing label. Timestamps
// in the exposition are ignored: every sample is stored at the scrape's time.
//
// Besides the samples, each run stores what Prometheus stores of a scrape: up (1 when the check is up),
// scrape_duration_seconds, scrape_samples_scraped and scrape_samples_post_metric_relabeling (after the
// allow and deny lists).
type promKind struct{}

// PrometheusSettings are a Prometheus check's settings. Unknown settings are refused.
type PrometheusSettings struct {
	// Allow keeps only the samples whose metric name matches one of these RE2 expressions (anchored, as
	// Prometheus anchors them); empty keeps every sample.
	Allow []string `json:"allow"`
	// Deny drops the samples whose metric name matches one of these; it applies after Allow.
	Deny []string `json:"deny"`
	// MaxSeries caps the samples stored per scrape (after Allow and Deny): past it the check is down,
	// saying so, and only the first ones (by metric name) are stored.
	MaxSeries *int `json:"max_series"`
	// MaxBytes caps how much of the exposition is read (decompressed): past it the check is down, saying
	// so, and what was read up to the last whole line is stored.
	MaxBytes *int `json:"max_bytes"`
	// Headers are sent with the request (Authorization for an exporter behind authentication); every value
	// is secret.
	Headers map[string]string `json:"headers"`
	// TLSVerify, default true, checks the server's certificate.
	TLSVerify *bool `json:"tls_verify"`
}

// Bounds and defaults of a Prometheus check.
const (
	maxPromPatterns       = 32
	maxPromPatternBytes   = 256
	defaultPromMaxSeries  = 10_000
	maxPromMaxSeries      = 50_000
	defaultPromMaxBytes   = 8 << 20
	minPromMaxBytes       = 1 << 10
	maxPromMaxBytes       = 32 << 20
	promMaxRedirects      = 5
	promAcceptHeader      = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1`
	promScrapeUserAgent   = "infrawatch-poller"
	promExportedPrefix    = "exported_"
	promRedirectElsewhere = "the redirect leads to another origin and the check sends headers"
)

// promStoreLabels are the labels the store sets on every sample of a check.
var promStoreLabels = []string{"host", "check", "check_id"}

func (promKind) Name() string { return "prometheus" }

func (promKind) Validate(target string, settings json.RawMessage) []Problem {
	var ps problems
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		ps.add("target", "must be an http:// or https:// URL with a host and no user info (the exposition, e.g. http://host:9100/metrics)")
	}
	var st PrometheusSettings
	if !decodeSettings(&ps, "prometheus", settings, &st) {
		return ps
	}
	for _, list := range []struct {
		field    string
		patterns []string
	}{{"settings.allow", st.Allow}, {"settings.deny", st.Deny}} {
		if len(list.patterns) > maxPromPatterns {
			ps.add(list.field, "must list at most %d expressions, not %d", maxPromPatterns, len(list.patterns))
			continue
		}
		for i, p := range list.patterns {
			field := fmt.Sprintf("%s[%d]", list.field, i)
			switch {
			case p == "" || len(p) > maxPromPatternBytes:
				ps.add(field, "must be 1 to %d bytes", maxPromPatternBytes)
			default:
				if _, err := regexp.Compile(p); err != nil {
					ps.add(field, "is not a valid regular expression (RE2): %v", err)
				}
			}
		}
	}
	ps.between("settings.max_series", st.MaxSeries, 1, maxPromMaxSeries)
	ps.between("settings.max_bytes", st.MaxBytes, minPromMaxBytes, maxPromMaxBytes)
	ps.headers(st.Headers)
	return ps
}

func (promKind) Endpoints(target string, _ json.RawMessage) []Endpoint {
	return []Endpoint{{Field: "target", Host: promKind{}.TargetHost(target)}}
}

func (promKind) TargetHost(target string) string { return httpKind{}.TargetHost(target) }

// Secrets: every header's value (Authorization, API keys).
func (promKind) Secrets() Secrets { return Secrets{Maps: []string{"headers"}} }

// Destination is the target URL, where the headers go.
func (promKind) Destination(target string, _ json.RawMessage) string { return target }

// promFilter keeps a sample's metric name or not.
type promFilter struct{ allow, deny []*regexp.Regexp }

func newPromFilter(st PrometheusSettings) (promFilter, error) {
	var f promFilter
	for _, p := range st.Allow {
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			return f, fmt.Errorf("settings.allow: %q is not a valid regular expression: %w", p, err)
		}
		f.allow = append(f.allow, re)
	}
	for _, p := range st.Deny {
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			return f, fmt.Errorf("settings.deny: %q is not a valid regular expression: %w", p, err)
		}
		f.deny = append(f.deny, re)
	}
	return f, nil
}

func (f promFilter) keep(name string) bool {
	if len(f.allow) > 0 && !slices.ContainsFunc(f.allow, func(re *regexp.Regexp) bool { return re.MatchString(name) }) {
		return false
	}
	return !slices.ContainsFunc(f.deny, func(re *regexp.Regexp) bool { return re.MatchString(name) })
}

// Probe scrapes the target once. Every connection, the first and each redirect's, is dialled through the
// guard. A scrape cut short — at max_bytes, or by the check's timeout while the body was still coming —
// stores what arrived up to the last whole line (or message) and is down, saying so; so is one past
// max_series, which stores the first max_series samples.
func (promKind) Probe(ctx context.Context, p *Prober, c Check) Outcome {
	var st PrometheusSettings
	if len(c.Settings) > 0 {
		if err := json.Unmarshal(c.Settings, &st); err != nil {
			return down("settings: %v", err)
		}
	}
	filter, err := newPromFilter(st)
	if err != nil {
		return down("%v", err)
	}
	maxSeries, maxBytes := defaultPromMaxSeries, defaultPromMaxBytes
	if st.MaxSeries != nil {
		maxSeries = *st.MaxSeries
	}
	if st.MaxBytes != nil {
		maxBytes = *st.MaxBytes
	}
	start := time.Now()
	out := promScrape(ctx, p, c, st, filter, maxSeries, maxBytes)
	duration := time.Since(start)
	if out.Detail == nil {
		out.Detail = map[string]any{}
	}
	out.Detail["duration_ms"] = msFloat(duration)
	up := 0.0
	if out.Up {
		up = 1
		out.Latency = duration
	}
	out.Metrics = append(out.Metrics, Metric{Name: "up", Value: up},
		Metric{Name: "scrape_duration_seconds", Value: duration.Seconds()})
	return out
}

// promScrape fetches and parses the exposition; the outcome holds its samples and the scrape's counts.
func promScrape(ctx context.Context, p *Prober, c Check, st PrometheusSettings, filter promFilter, maxSeries, maxBytes int) Outcome {
	u, err := url.Parse(c.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return down("target %q is not an http:// or https:// URL", c.Target)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Target, nil)
	if err != nil {
		return down("build request: %v", err)
	}
	req.Header.Set("Accept", promAcceptHeader)
	req.Header.Set("User-Agent", promScrapeUserAgent)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(c.Timeout.Seconds(), 'f', -1, 64))
	sendsHeaders := false
	for name, value := range st.Headers {
		if strings.EqualFold(name, "Host") {
			req.Host = value
			continue
		}
		req.Header.Set(name, value)
		sendsHeaders = true
	}
	dialer := p.guard.Dialer(c.Timeout)
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, dialableAddr(addr))
		},
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: st.TLSVerify != nil && !*st.TLSVerify},
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(next *http.Request, via []*http.Request) error {
			if len(via) > promMaxRedirects {
				return fmt.Errorf("%w (more than %d)", errTooManyRedirects, promMaxRedirects)
			}
			if sendsHeaders && !sameOrigin(next.URL, via[0].URL) {
				return errors.New(promRedirectElsewhere)
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Err != nil && ue.Err.Error() == promRedirectElsewhere {
			return down("%s; it was not followed", promRedirectElsewhere)
		}
		if errors.Is(err, errTooManyRedirects) {
			return down("%s", errors.Unwrap(err))
		}
		return down("%s", netReason(err, c.Timeout))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Outcome{Reason: fmt.Sprintf("status %d, expected 200", resp.StatusCode),
			Detail: map[string]any{"status_code": resp.StatusCode}}
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, int64(maxBytes)+1))
	detail := map[string]any{"status_code": resp.StatusCode, "bytes": len(body)}
	cut := ""
	switch {
	case len(body) > maxBytes:
		body = body[:maxBytes]
		detail["bytes"] = maxBytes
		cut = fmt.Sprintf("the exposition is larger than max_bytes (%d bytes)", maxBytes)
	case readErr != nil:
		cut = "the exposition was not complete: " + netReason(readErr, c.Timeout)
	}
	format := expfmt.ResponseFormat(resp.Header)
	protobuf := format.FormatType() == expfmt.TypeProtoDelim
	detail["format"] = "text"
	if protobuf {
		detail["format"] = "protobuf"
	}
	families, parseErr := promParse(body, protobuf, cut != "")
	if parseErr != nil && cut == "" {
		out := down("the exposition does not parse: %v", parseErr)
		out.Detail = detail
		out.Metrics = []Metric{{Name: "scrape_samples_scraped", Value: 0}, {Name: "scrape_samples_post_metric_relabeling", Value: 0}}
		return out
	}
	metrics, scraped := promSamples(families, filter)
	kept := len(metrics)
	reason := ""
	if cut != "" {
		reason = cut + "; what arrived up to the last whole line was stored"
	}
	if kept > maxSeries {
		metrics = metrics[:maxSeries]
		if reason != "" {
			reason += "; "
		}
		reason += fmt.Sprintf("the exposition has %d series after the allow and deny lists, more than max_series (%d); the first %d by name were stored",
			kept, maxSeries, maxSeries)
	}
	detail["samples_scraped"] = scraped
	detail["samples_stored"] = len(metrics)
	metrics = append(metrics, Metric{Name: "scrape_samples_scraped", Value: float64(scraped)},
		Metric{Name: "scrape_samples_post_metric_relabeling", Value: float64(kept)})
	return Outcome{Up: reason == "", Reason: reason, Detail: detail, Metrics: metrics}
}

// promParse parses an exposition body. A body cut short is parsed up to its last whole line (text) or
// message (protobuf), and what parses is kept.
func promParse(body []byte, protobuf, cut bool) ([]*dto.MetricFamily, error) {
	if protobuf {
		dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeProtoDelim))
		var out []*dto.MetricFamily
		for {
			mf := &dto.MetricFamily{}
			err := dec.Decode(mf)
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			out = append(out, mf)
		}
	}
	if cut {
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			body = body[:i+1]
		} else {
			body = nil
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		out = append(out, mf)
	}
	return out, err
}

// promSamples flattens metric families into samples, sorted by metric name, kept by the filter; scraped
// counts them all.
func promSamples(families []*dto.MetricFamily, filter promFilter) (metrics []Metric, scraped int) {
	slices.SortFunc(families, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	add := func(name string, labels []*dto.LabelPair, extra string, extraValue string, v float64) {
		scraped++
		if !filter.keep(name) {
			return
		}
		m := Metric{Name: name, Value: v, Labels: make(map[string]string, len(labels)+1)}
		for _, l := range labels {
			k := l.GetName()
			if slices.Contains(promStoreLabels, k) {
				k = promExportedPrefix + k
			}
			m.Labels[k] = l.GetValue()
		}
		if extra != "" {
			m.Labels[extra] = extraValue
		}
		metrics = append(metrics, m)
	}
	for _, mf := range families {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			labels := m.GetLabel()
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(name, labels, "", "", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, labels, "", "", m.GetGauge().GetValue())
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, labels, "quantile", promFloat(q.GetQuantile()), q.GetValue())
				}
				add(name+"_sum", labels, "", "", s.GetSampleSum())
				add(name+"_count", labels, "", "", float64(s.GetSampleCount()))
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				count := float64(h.GetSampleCount())
				if h.SampleCountFloat != nil {
					count = h.GetSampleCountFloat()
				}
				inf := false
				for _, b := range h.GetBucket() {
					v := float64(b.GetCumulativeCount())
					if b.CumulativeCountFloat != nil {
						v = b.GetCumulativeCountFloat()
					}
					inf = inf || math.IsInf(b.GetUpperBound(), 1)
					add(name+"_bucket", labels, "le", promFloat(b.GetUpperBound()), v)
				}
				if !inf { // the protobuf format leaves the +Inf bucket out: it is the count
					add(name+"_bucket", labels, "le", "+Inf", count)
				}
				add(name+"_sum", labels, "", "", h.GetSampleSum())
				add(name+"_count", labels, "", "", count)
			default: // untyped
				add(name, labels, "", "", m.GetUntyped().GetValue())
			}
		}
	}
	return metrics, scraped
}

// promFloat writes a bound or quantile as Prometheus does (0.5, 1, +Inf).
func promFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	if math.IsInf(f, -1) {
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
