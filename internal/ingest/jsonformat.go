package ingest

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
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
// reason, so that it is refused alone rather than failing the whole body; a point that is not JSON at
// all (NaN, Infinity, +1, 01 …) fails the body, as any other JSON syntax error does.
type jsonPoint struct {
	ms    int64
	value float64
	bad   string
}

// errPointNotJSON fails a body whose point is not JSON: the decoder hands a point's bytes over unchecked.
var errPointNotJSON = errors.New("a point is not JSON: numbers are written as JSON numbers; NaN, Infinity, a leading + or 0 are not")

func (p *jsonPoint) UnmarshalJSON(b []byte) error {
	ts, val, ok := jsonPair(b)
	if !ok {
		return p.badShape(b)
	}
	if isJSONInteger(ts) {
		ms, err := strconv.ParseInt(string(ts), 10, 64)
		if err != nil {
			p.bad = fmt.Sprintf("timestamp %.30s is out of range", ts)
			return nil
		}
		p.ms = ms
	} else {
		// 1.7643e12 is an integer written as a float: accept it when it is exactly one.
		f, err := strconv.ParseFloat(string(ts), 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			p.bad = fmt.Sprintf("timestamp %.30s is not an integer number of milliseconds", ts)
			return nil
		}
		p.ms = int64(f)
	}
	v, err := strconv.ParseFloat(string(val), 64)
	if err != nil {
		p.bad = fmt.Sprintf("value %.30s is out of range", val)
		return nil
	}
	p.value = v
	return nil
}

// badShape explains a point that is not [number, number], or fails the body when it is not JSON.
func (p *jsonPoint) badShape(b []byte) error {
	if !stdjson.Valid(b) {
		return errPointNotJSON
	}
	var elems []stdjson.RawMessage
	switch err := stdjson.Unmarshal(b, &elems); {
	case err != nil || elems == nil:
		p.bad = "a point is [milliseconds, value]"
	case len(elems) != 2:
		p.bad = "a point is [milliseconds, value]: exactly two numbers"
	case !isJSONNumber(bytes.TrimSpace(elems[0])):
		p.bad = fmt.Sprintf("timestamp %.30s is not an integer number of milliseconds", bytes.TrimSpace(elems[0]))
	default:
		p.bad = fmt.Sprintf("value %.30s is not a number", bytes.TrimSpace(elems[1]))
	}
	return nil
}

// jsonPair splits the common shape of a point, [number, number] with optional white space, into its two
// numbers without allocating; ok is false for anything else.
func jsonPair(b []byte) (first, second []byte, ok bool) {
	i := skipJSONSpace(b, 0)
	if i == len(b) || b[i] != '[' {
		return nil, nil, false
	}
	i = skipJSONSpace(b, i+1)
	end := jsonNumberEnd(b, i)
	if end < 0 {
		return nil, nil, false
	}
	first = b[i:end]
	i = skipJSONSpace(b, end)
	if i == len(b) || b[i] != ',' {
		return nil, nil, false
	}
	i = skipJSONSpace(b, i+1)
	if end = jsonNumberEnd(b, i); end < 0 {
		return nil, nil, false
	}
	second = b[i:end]
	i = skipJSONSpace(b, end)
	if i == len(b) || b[i] != ']' || skipJSONSpace(b, i+1) != len(b) {
		return nil, nil, false
	}
	return first, second, true
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonNumberEnd returns where the JSON number that starts at i ends, or -1 when none starts there:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumberEnd(b []byte, i int) int {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if j := digits(i + 1); j > i+1 {
			i = j
		} else {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if j := digits(i); j > i {
			i = j
		} else {
			return -1
		}
	}
	return i
}

// isJSONNumber reports whether b is exactly one JSON number.
func isJSONNumber(b []byte) bool { return len(b) > 0 && jsonNumberEnd(b, 0) == len(b) }

// isJSONInteger reports whether a JSON number has neither fraction nor exponent.
func isJSONInteger(num []byte) bool { return !bytes.ContainsAny(num, ".eE") }

// DecodeJSONPush decodes a push. A body that is not such a JSON object is an error (400), and so is a
// host whose name, labels or metadata cannot be stored (an *InvalidError naming the fields); points
// that are not [milliseconds, value] become rejections, indexed by metric and point. The body must be
// UTF-8 (RFC 8259): the decoder would turn other bytes into U+FFFD, so the API checks that first.
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
	if push.Host != nil {
		if err := push.Host.Validate(); err != nil {
			return push, nil, nil, err
		}
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
