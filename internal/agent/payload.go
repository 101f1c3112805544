package agent

import (
	"encoding/json"
	"fmt"
)

// What the server stores, mirrored here so that the agent never makes a batch the server must refuse:
// internal/ingest has the same numbers, and a test in internal/api keeps the two in step. The agent is a
// small static binary of its own and does not import the server's packages.
const (
	MaxLogMessageBytes     = 32 << 10 // longer lines are cut
	MaxHostNameChars       = 255
	MaxHostLabels          = 30
	MaxHostLabelNameBytes  = 128
	MaxHostLabelValueBytes = 1024
	MaxMetadataValueBytes  = 4 << 10 // as JSON: a string takes two bytes more
)

// Host identifies the pushing machine; the server turns Name into the host label of every series.
type Host struct {
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Point is one sample; it encodes as the [ms, value] pair the ingest API expects.
type Point struct {
	TimeMs int64
	Value  float64
}

// MarshalJSON writes the point as a two-element array.
func (p Point) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]any{p.TimeMs, p.Value})
}

// UnmarshalJSON reads a [ms, value] pair.
func (p *Point) UnmarshalJSON(b []byte) error {
	var raw [2]float64
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("decode point: %w", err)
	}
	p.TimeMs, p.Value = int64(raw[0]), raw[1]
	return nil
}

// Metric is one series with its points.
type Metric struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Points []Point           `json:"points"`
}

// MetricsPayload is the body of POST /api/v1/ingest.
type MetricsPayload struct {
	Host    Host     `json:"host"`
	Metrics []Metric `json:"metrics"`
}

// LogEntry is one log line as the logs API expects it.
type LogEntry struct {
	TimeMs     int64             `json:"time"`
	Source     string            `json:"source"`
	Severity   string            `json:"severity"`
	Message    string            `json:"message"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// LogsPayload is the body of POST /api/v1/logs.
type LogsPayload struct {
	Host    Host       `json:"host"`
	Entries []LogEntry `json:"entries"`
}
