package ingest

// OpenTelemetry's OTLP/HTTP (https://opentelemetry.io/docs/specs/otlp/): metrics and logs, in protobuf or
// JSON, decoded by the collector's pdata — no protobuf is walked by hand here. What arrives is turned
// into the series and log lines every other protocol produces, and goes through the same validation,
// limits, series resolution and group-commit writer (Service.Write, Service.WriteLogGroups).
//
// Metrics, point by point:
//
//   - gauge: one sample of the metric's name;
//   - sum: cumulative sums are stored as they come (a counter: resets show as a drop); delta sums are
//     added to the series' running total (otlp_delta.go), so both read as counters;
//   - histogram: name_bucket{le="…"} (cumulative counts, le="+Inf" last), name_sum (when present) and
//     name_count, as Prometheus stores them; delta histograms are summed like delta sums;
//   - exponential histogram: name_count and name_sum only (its buckets are not stored; the answer says so);
//   - summary: name{quantile="…"}, name_sum and name_count.
//
// A point flagged "no recorded value" is skipped. Exemplars and the instrumentation scope are not stored.
//
// Labels: the point's attributes, then the resource's, except host.name, which names the host (the series'
// host label, as the host of a JSON push), and the attributes otlpUnlabelled lists. Values are written as
// text (AsString: numbers in decimal, arrays and maps as JSON). A point attribute the tenant's label limits
// refuse refuses the point, as in every protocol; a resource attribute that breaks them, or that would
// take the series past the tenant's labels per series, is dropped instead — the resource's attributes
// are kept in name order while they fit — and the answer names what was dropped.

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// OTLPEncoding is how an OTLP/HTTP body is encoded, from its Content-Type.
type OTLPEncoding int

// The two encodings of OTLP/HTTP.
const (
	OTLPProtobuf OTLPEncoding = iota // application/x-protobuf
	OTLPJSON                         // application/json
)

// OTLPHostAttribute is the resource attribute that names the host.
const OTLPHostAttribute = "host.name"

// otlpUnlabelled are resource attributes never made labels: they describe the SDK, or change at every
// start of the process (process.pid, service.instance.id in many SDKs), and would make every restart a
// new series. Names ending in "." are prefixes.
var otlpUnlabelled = []string{OTLPHostAttribute, "telemetry.", "process.", "service.instance.id"}

func otlpLabelled(name string) bool {
	for _, u := range otlpUnlabelled {
		if name == u || strings.HasSuffix(u, ".") && strings.HasPrefix(name, u) {
			return false
		}
	}
	return true
}

// OTLPResult is what an OTLP export achieved, in OTLP's terms: how many data points (or log records) were
// stored and how many refused, and a message that says why, and what was dropped, for partial_success.
type OTLPResult struct {
	Accepted, Rejected int
	Message            string
}

// DecodeOTLPMetrics decodes the body of POST /v1/metrics. A body that is not an ExportMetricsServiceRequest
// is an error (400).
func DecodeOTLPMetrics(body []byte, enc OTLPEncoding) (pmetric.Metrics, error) {
	req := pmetricotlp.NewExportRequest()
	var err error
	if enc == OTLPJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return pmetric.Metrics{}, fmt.Errorf("malformed OTLP metrics request: %w", err)
	}
	return req.Metrics(), nil
}

// EncodeOTLPMetricsResponse is the answer to an export: empty when everything was stored, else with
// partial_success.
func EncodeOTLPMetricsResponse(res OTLPResult, enc OTLPEncoding) ([]byte, error) {
	resp := pmetricotlp.NewExportResponse()
	if res.Rejected > 0 || res.Message != "" {
		resp.PartialSuccess().SetRejectedDataPoints(int64(res.Rejected))
		resp.PartialSuccess().SetErrorMessage(res.Message)
	}
	if enc == OTLPJSON {
		return resp.MarshalJSON()
	}
	return resp.MarshalProto()
}

// otlpPoints is the conversion of one export: the series (one sample each) and, for each series, the
// index of the data point it came from, so that refusals are counted in data points.
type otlpPoints struct {
	series  []Series
	pointOf []int
	points  int
	// refused are data points refused before the service saw them, with why.
	refused map[int]string
	// dropped counts the resource attributes dropped, by name.
	dropped map[string]int
	// notes are warnings for the answer (exponential buckets not stored).
	notes []string
}

// WriteOTLPMetrics stores an OTLP export for tenant and says, in data points, what was stored and what
// refused. Errors are the service's (busy, unavailable, too large): nothing was stored then.
func (s *Service) WriteOTLPMetrics(ctx context.Context, tenant uuid.UUID, md pmetric.Metrics) (OTLPResult, error) {
	limits, _, err := s.tenant(ctx, tenant)
	if err != nil {
		return OTLPResult{}, err
	}
	conv := convertOTLPMetrics(md, limits)
	res, err := s.Write(ctx, tenant, "otlp", conv.series, nil, nil)
	if err != nil {
		return OTLPResult{}, err
	}
	return conv.result(res), nil
}

// result counts what a write of the converted points achieved in data points: a point is refused when any
// of its samples is.
func (c *otlpPoints) result(res Result) OTLPResult {
	refused := c.refused
	if refused == nil {
		refused = map[int]string{}
	}
	for _, r := range res.Rejected {
		p := c.pointOf[r.Series]
		if _, seen := refused[p]; !seen {
			refused[p] = fmt.Sprintf("metric %s: %s", quoteCut(c.series[r.Series].Name), r.Reason)
		}
	}
	out := OTLPResult{Accepted: c.points - len(refused), Rejected: len(refused)}
	var parts []string
	if len(refused) > 0 {
		ids := make([]int, 0, len(refused))
		for p := range refused {
			ids = append(ids, p)
		}
		slices.Sort(ids)
		reasons := make([]string, 0, 3)
		for _, p := range ids[:min(3, len(ids))] {
			reasons = append(reasons, refused[p])
		}
		more := ""
		if len(ids) > 3 {
			more = fmt.Sprintf("; and %d more", len(ids)-3)
		}
		parts = append(parts, fmt.Sprintf("%d data points refused: %s%s", len(ids), strings.Join(reasons, "; "), more))
	}
	if len(c.dropped) > 0 {
		names := make([]string, 0, len(c.dropped))
		for n := range c.dropped {
			names = append(names, n)
		}
		slices.Sort(names)
		parts = append(parts, "resource attributes dropped from labels (label limits): "+strings.Join(names, ", "))
	}
	parts = append(parts, c.notes...)
	out.Message = strings.Join(parts, ". ")
	return out
}

// convertOTLPMetrics turns an export into series of one sample each, within the tenant's label limits.
func convertOTLPMetrics(md pmetric.Metrics, lim dbsqlc.AppTenant) *otlpPoints {
	c := &otlpPoints{}
	rms := md.ResourceMetrics()
	expNoted := false
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		host := ""
		if v, ok := rm.Resource().Attributes().Get(OTLPHostAttribute); ok {
			host = v.AsString()
		}
		res := c.resourceLabels(rm.Resource().Attributes(), lim)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				name := m.Name()
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps := m.Gauge().DataPoints()
					for p := 0; p < dps.Len(); p++ {
						c.number(name, host, res, lim, dps.At(p), false)
					}
				case pmetric.MetricTypeSum:
					delta := m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta
					dps := m.Sum().DataPoints()
					for p := 0; p < dps.Len(); p++ {
						c.number(name, host, res, lim, dps.At(p), delta)
					}
				case pmetric.MetricTypeHistogram:
					delta := m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta
					dps := m.Histogram().DataPoints()
					for p := 0; p < dps.Len(); p++ {
						c.histogram(name, host, res, lim, dps.At(p), delta)
					}
				case pmetric.MetricTypeExponentialHistogram:
					delta := m.ExponentialHistogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta
					dps := m.ExponentialHistogram().DataPoints()
					for p := 0; p < dps.Len(); p++ {
						c.exponential(name, host, res, lim, dps.At(p), delta)
					}
					if dps.Len() > 0 && !expNoted {
						expNoted = true
						c.notes = append(c.notes, "exponential histograms are stored as _count and _sum; their buckets are not stored")
					}
				case pmetric.MetricTypeSummary:
					dps := m.Summary().DataPoints()
					for p := 0; p < dps.Len(); p++ {
						c.summary(name, host, res, lim, dps.At(p))
					}
				default: // a metric without data: nothing to store
				}
			}
		}
	}
	return c
}

// otlpLabel is one label taken from an attribute.
type otlpLabel struct{ name, value string }

// resourceLabels are the labels a resource's attributes give, in name order, without those never
// labelled and those the tenant's limits refuse (counted as dropped).
func (c *otlpPoints) resourceLabels(attrs pcommon.Map, lim dbsqlc.AppTenant) []otlpLabel {
	var out []otlpLabel
	attrs.Range(func(k string, v pcommon.Value) bool {
		if !otlpLabelled(k) {
			return true
		}
		val := v.AsString()
		if k == "" || len(k) > int(lim.MaxLabelNameLength) || !storable(k) || len(val) > int(lim.MaxLabelValueLength) || !storable(val) {
			c.drop(k)
			return true
		}
		out = append(out, otlpLabel{k, val})
		return true
	})
	slices.SortFunc(out, func(a, b otlpLabel) int { return strings.Compare(a.name, b.name) })
	return out
}

func (c *otlpPoints) drop(name string) {
	if c.dropped == nil {
		c.dropped = map[string]int{}
	}
	if len(name) > 128 {
		name = name[:128] + "…"
	}
	c.dropped[strings.ToValidUTF8(name, "?")]++
}

// labels are a point's labels: its attributes, then the resource's while the tenant's labels per series
// allow (the host label counts), plus extra (le, quantile), which win over both.
func (c *otlpPoints) labels(attrs pcommon.Map, res []otlpLabel, host string, lim dbsqlc.AppTenant, extra ...otlpLabel) map[string]string {
	labels := make(map[string]string, attrs.Len()+len(res)+len(extra)+1)
	attrs.Range(func(k string, v pcommon.Value) bool {
		labels[k] = v.AsString()
		return true
	})
	for _, e := range extra {
		labels[e.name] = e.value
	}
	room := int(lim.MaxLabelsPerSeries) - len(labels)
	if host != "" {
		if _, ok := labels["host"]; !ok {
			room--
		}
	}
	for _, r := range res {
		if _, taken := labels[r.name]; taken {
			continue
		}
		if room <= 0 {
			c.drop(r.name)
			continue
		}
		labels[r.name] = r.value
		room--
	}
	return labels
}

// point starts a data point: its index, or -1 when it has nothing to store.
func (c *otlpPoints) point(flags pmetric.DataPointFlags, ts pcommon.Timestamp) int {
	if flags.NoRecordedValue() {
		return -1
	}
	p := c.points
	c.points++
	if ts == 0 {
		if c.refused == nil {
			c.refused = map[int]string{}
		}
		c.refused[p] = "a data point has no time (time_unix_nano is 0)"
		return -1
	}
	return p
}

// add appends one series of one sample for data point p.
func (c *otlpPoints) add(p int, name, host string, labels map[string]string, ts pcommon.Timestamp, v float64, delta bool) {
	c.series = append(c.series, Series{Name: name, Labels: labels, Host: host, Delta: delta,
		Samples: []Sample{{TimeMs: int64(ts) / 1e6, Value: v}}})
	c.pointOf = append(c.pointOf, p)
}

func (c *otlpPoints) number(name, host string, res []otlpLabel, lim dbsqlc.AppTenant, dp pmetric.NumberDataPoint, delta bool) {
	p := c.point(dp.Flags(), dp.Timestamp())
	if p < 0 {
		return
	}
	v := dp.DoubleValue()
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		v = float64(dp.IntValue())
	}
	c.add(p, name, host, c.labels(dp.Attributes(), res, host, lim), dp.Timestamp(), v, delta)
}

// copyLabels returns a copy of labels for another series of the same point.
func copyLabels(labels map[string]string, extra ...otlpLabel) map[string]string {
	out := make(map[string]string, len(labels)+len(extra))
	for k, v := range labels {
		out[k] = v
	}
	for _, e := range extra {
		out[e.name] = e.value
	}
	return out
}

// formatBound writes a bucket bound or quantile as Prometheus does (0.005, 1, +Inf).
func formatBound(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func (c *otlpPoints) histogram(name, host string, res []otlpLabel, lim dbsqlc.AppTenant, dp pmetric.HistogramDataPoint, delta bool) {
	p := c.point(dp.Flags(), dp.Timestamp())
	if p < 0 {
		return
	}
	// The le label takes one of the series' labels, so the resource's give way to it.
	base := c.labels(dp.Attributes(), res, host, lim, otlpLabel{"le", ""})
	delete(base, "le")
	ts := dp.Timestamp()
	bounds, counts := dp.ExplicitBounds(), dp.BucketCounts()
	if counts.Len() > 0 {
		var cum uint64
		for b := 0; b < counts.Len(); b++ {
			cum += counts.At(b)
			le := math.Inf(1)
			if b < bounds.Len() {
				le = bounds.At(b)
			}
			c.add(p, name+"_bucket", host, copyLabels(base, otlpLabel{"le", formatBound(le)}), ts, float64(cum), delta)
		}
	}
	if dp.HasSum() {
		c.add(p, name+"_sum", host, copyLabels(base), ts, dp.Sum(), delta)
	}
	c.add(p, name+"_count", host, base, ts, float64(dp.Count()), delta)
}

func (c *otlpPoints) exponential(name, host string, res []otlpLabel, lim dbsqlc.AppTenant, dp pmetric.ExponentialHistogramDataPoint, delta bool) {
	p := c.point(dp.Flags(), dp.Timestamp())
	if p < 0 {
		return
	}
	base := c.labels(dp.Attributes(), res, host, lim)
	if dp.HasSum() {
		c.add(p, name+"_sum", host, copyLabels(base), dp.Timestamp(), dp.Sum(), delta)
	}
	c.add(p, name+"_count", host, base, dp.Timestamp(), float64(dp.Count()), delta)
}

func (c *otlpPoints) summary(name, host string, res []otlpLabel, lim dbsqlc.AppTenant, dp pmetric.SummaryDataPoint) {
	p := c.point(dp.Flags(), dp.Timestamp())
	if p < 0 {
		return
	}
	base := c.labels(dp.Attributes(), res, host, lim, otlpLabel{"quantile", ""})
	delete(base, "quantile")
	ts := dp.Timestamp()
	qs := dp.QuantileValues()
	for q := 0; q < qs.Len(); q++ {
		c.add(p, name, host, copyLabels(base, otlpLabel{"quantile", formatBound(qs.At(q).Quantile())}), ts, qs.At(q).Value(), false)
	}
	c.add(p, name+"_sum", host, copyLabels(base), ts, dp.Sum(), false)
	c.add(p, name+"_count", host, base, ts, float64(dp.Count()), false)
}
