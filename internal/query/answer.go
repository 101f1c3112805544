package query

import (
	"encoding/json"
	"math"
	"strconv"
)

// The answers of the planner are what the REST API sends: they carry their JSON encoding, written
// directly for the large ones (a range answer holds up to MaxPoints points).

// Series is a metric series as dashboards see it. Host is the name of the host it was pushed for (null
// when none, or when that host was deleted).
type Series struct {
	ID     int64             `json:"id"`
	Name   string            `json:"name"`
	Host   *string           `json:"host"`
	Labels map[string]string `json:"labels"`
}

// RangeSeries is one series of a range answer with its points, oldest first.
type RangeSeries struct {
	Series
	Points Points `json:"points"`
}

// RangeResult is the answer of a range query. From and To are the range asked for, in milliseconds
// since the epoch; Step is the step answered (never auto).
type RangeResult struct {
	Step   string        `json:"step"`
	From   int64         `json:"from"`
	To     int64         `json:"to"`
	Series []RangeSeries `json:"series"`
}

// LatestSeries is one series of a latest answer with its newest sample.
type LatestSeries struct {
	Series
	Time  int64 `json:"time"`
	Value Value `json:"value"`
}

// Point is one sample or bucket: its time in milliseconds since the epoch and its value.
type Point struct {
	Time  int64
	Value float64
}

// Points encode as [[ms, value], …], written directly.
type Points []Point

// MarshalJSON writes the points as pairs; values JSON cannot carry are null (see Value).
func (ps Points) MarshalJSON() ([]byte, error) { return ps.append(make([]byte, 0, 2+len(ps)*40)), nil }

func (ps Points) append(b []byte) []byte {
	b = append(b, '[')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, p.Time, 10)
		b = append(b, ',')
		b = Value(p.Value).append(b)
		b = append(b, ']')
	}
	return append(b, ']')
}

// MarshalJSON writes the answer with its points appended directly. encoding/json would re-scan what
// Points.MarshalJSON returns to validate it, which costs as much again as writing it for a full answer.
func (r RangeResult) MarshalJSON() ([]byte, error) {
	n := 0
	for _, s := range r.Series {
		n += len(s.Points)
	}
	b := make([]byte, 0, 64+len(r.Series)*128+n*40)
	b = append(b, `{"step":`...)
	b = strconv.AppendQuote(b, r.Step) // one of raw, 5m, 1h, 1d: no character that JSON and Go quote apart
	b = append(b, `,"from":`...)
	b = strconv.AppendInt(b, r.From, 10)
	b = append(b, `,"to":`...)
	b = strconv.AppendInt(b, r.To, 10)
	b = append(b, `,"series":[`...)
	for i, s := range r.Series {
		if i > 0 {
			b = append(b, ',')
		}
		meta, err := json.Marshal(s.Series)
		if err != nil {
			return nil, err
		}
		b = append(b, meta[:len(meta)-1]...) // without its closing brace
		b = append(b, `,"points":`...)
		b = s.Points.append(b)
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// Value is a sample value. NaN and ±Inf, which Prometheus remote write may store (its stale markers are
// NaNs), encode as null.
type Value float64

// MarshalJSON writes the value as a JSON number, or null.
func (v Value) MarshalJSON() ([]byte, error) { return v.append(nil), nil }

func (v Value) append(b []byte) []byte {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// Overview is the tenant at a glance.
type Overview struct {
	Hosts  OverviewHosts  `json:"hosts"`
	Checks OverviewChecks `json:"checks"`
	Series int64          `json:"series"`
}

// OverviewHosts counts the tenant's hosts; Reporting those with a sample in the reporting window.
type OverviewHosts struct {
	Total     int64 `json:"total"`
	Reporting int64 `json:"reporting"`
}

// OverviewChecks counts the tenant's checks by status. Up, Down and Unknown (not run yet) count enabled
// checks only, Disabled the others, so the four add up to Total.
type OverviewChecks struct {
	Total    int64 `json:"total"`
	Up       int64 `json:"up"`
	Down     int64 `json:"down"`
	Unknown  int64 `json:"unknown"`
	Disabled int64 `json:"disabled"`
}
