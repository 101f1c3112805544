package ingest

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	json "github.com/goccy/go-json"
)

// JSONPush is the body of POST /api/v1/ingest, the format of infrawatch's own agent:
//
//	{"host": {"name": "web-1", "labels": {"env": "prod"}, "metadata": {…}},
//	 "metrics": [{"name": "cpu.usage_pct", "labels": {"cpu": "total"},
//	              "points": [[1764300000000, 12.5], [1764300010000, 13.0]]}]}
//
// host is optional; timestamps are integer milliseconds since the Unix epoch.
type JSONPush struct {
	Host    *JSONHost    `json:"host"`
	Metrics []JSONMetric `json:"metrics"`
}

// JSONHost names the pushing host and may describe it.
type JSONHost struct {
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels"`
	Metadata map[string]any    `json:"metadata"`
}

// JSONMetric is one series of a push.
type JSONMetric struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Points []jsonPoint       `json:"points"`
}

// jsonPoint is [milliseconds, value]. A point that is valid JSON but not of that shape is kept with the
// reason, so that it is refused alone rather than failing the whole body.
type jsonPoint struct {
	ms    int64
	value float64
	bad   string
}

func (p *jsonPoint) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		p.bad = "a point is [milliseconds, value]"
		return nil
	}
	ts, val, ok := bytes.Cut(b[1:len(b)-1], []byte(","))
	if !ok || bytes.IndexByte(val, ',') >= 0 {
		p.bad = "a point is [milliseconds, value]: exactly two numbers"
		return nil
	}
	ts, val = bytes.TrimSpace(ts), bytes.TrimSpace(val)
	ms, err := strconv.ParseInt(string(ts), 10, 64)
	if err != nil {
		// 1.7643e12 is an integer written as a float: accept it when it is exactly one.
		f, ferr := strconv.ParseFloat(string(ts), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			p.bad = fmt.Sprintf("timestamp %.30s is not an integer number of milliseconds", ts)
			return nil
		}
		ms = int64(f)
	}
	v, err := strconv.ParseFloat(string(val), 64)
	if err != nil || bytes.HasPrefix(val, []byte(`"`)) {
		p.bad = fmt.Sprintf("value %.30s is not a number", val)
		return nil
	}
	p.ms, p.value = ms, v
	return nil
}

// DecodeJSONPush decodes a push. A body that is not such a JSON object is an error (400); points that
// are not [milliseconds, value] become rejections, indexed by metric and point.
func DecodeJSONPush(body []byte) (JSONPush, []Series, []Rejection, error) {
	var push JSONPush
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&push); err != nil {
		return push, nil, nil, fmt.Errorf("malformed ingest body: %w", err)
	}
	if dec.More() {
		return push, nil, nil, fmt.Errorf("malformed ingest body: data after the JSON object")
	}
	if push.Host != nil && push.Host.Name == "" {
		return push, nil, nil, fmt.Errorf("host.name is required when host is given")
	}
	series := make([]Series, len(push.Metrics))
	var rejected []Rejection
	for i, m := range push.Metrics {
		s := Series{Name: m.Name, Labels: m.Labels, Samples: make([]Sample, 0, len(m.Points))}
		if push.Host != nil {
			s.Host = push.Host.Name
		}
		for j, p := range m.Points {
			if p.bad != "" {
				rejected = append(rejected, Rejection{Series: i, Sample: j, Reason: p.bad})
				continue
			}
			s.Samples = append(s.Samples, Sample{TimeMs: p.ms, Value: p.value})
		}
		series[i] = s
	}
	return push, series, rejected, nil
}
