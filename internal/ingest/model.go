// Package ingest takes metrics and logs that agents push — our JSON, InfluxDB line protocol,
// Prometheus remote write and OpenTelemetry's OTLP — validates them, resolves series ids, and writes
// samples through a group-commit writer that acknowledges a request only after its rows are committed.
//
// It runs as the owning login (tenant_id is stamped from the credential, never from the payload) and
// must never acknowledge a sample it has not committed.
package ingest

// Sample is one point of a series: milliseconds since the Unix epoch and a value.
type Sample struct {
	TimeMs int64
	Value  float64
}

// Series is one metric series of a push, as every protocol decodes it.
type Series struct {
	// Name is the metric name, e.g. cpu.usage_pct or node_cpu_seconds_total.
	Name string
	// Labels are the series' labels. Decoders may share one map between series: treat it as read-only.
	Labels map[string]string
	// Host names the host the series belongs to; empty when the push names none. The writer sets the
	// label host to it, so the same metric of two hosts is two series.
	Host string
	// Samples are the series' points, in any order.
	Samples []Sample
	// Delta says the samples are increments, not values: the service adds each, in time order, to the
	// series' running total and stores the totals, so that the series reads as a counter (OTLP's delta
	// sums and histograms; see otlp_delta.go).
	Delta bool
}

// Rejection says why one sample (or, with Sample -1, a whole series) of a push was refused. Series and
// Sample index the decoded push: for JSON they are the metric and point indexes of the body.
type Rejection struct {
	Series int    `json:"metric"`
	Sample int    `json:"point"`
	Reason string `json:"reason"`
}
