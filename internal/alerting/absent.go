package alerting

import (
	"context"
	"encoding/json"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// absentKind: things that stopped sending data. With a metric, each matching series that had samples
// within the look-back and none for silent_for (and, when no matching series had any sample in the
// look-back, one alert for the selector itself); with a host and no metric, that host, silent when none
// of its series has a sample for silent_for; with agents, every host an agent pushes for (whose labels
// contain host_labels) that had samples within the look-back and none for silent_for. One alert per
// series or host.
type absentKind struct{}

func (absentKind) Name() string { return "absent" }

type absentSettings struct {
	Metric     string            `json:"metric,omitempty"`
	Host       string            `json:"host,omitempty"`
	Matchers   []Matcher         `json:"matchers,omitempty"`
	Agents     bool              `json:"agents,omitempty"`
	HostLabels map[string]string `json:"host_labels,omitempty"`
	SilentFor  string            `json:"silent_for"`
	Lookback   string            `json:"lookback,omitempty"`
}

type absentEval struct {
	Mode       string            `json:"mode"` // series, host or agent
	Selector   *selector         `json:"selector,omitempty"`
	Host       string            `json:"host,omitempty"`
	HostLabels map[string]string `json:"host_labels,omitempty"`
	SilentFor  int32             `json:"silent_for"`
	Lookback   int32             `json:"lookback"`
}

func (absentKind) Compile(raw json.RawMessage) (Compiled, []Problem) {
	var s absentSettings
	if ps := decodeSettings(raw, &s); len(ps) > 0 {
		return Compiled{}, ps
	}
	var ps problems
	e := absentEval{}
	switch {
	case s.Agents:
		e.Mode = "agent"
		if s.Metric != "" || s.Host != "" || len(s.Matchers) > 0 {
			ps.add("agents", "watches every agent's host: give no metric, host or matchers with it")
		}
		e.HostLabels = s.HostLabels
		if e.HostLabels == nil {
			e.HostLabels = map[string]string{}
		}
		validLabels(&ps, "host_labels", e.HostLabels)
	case s.Metric != "":
		e.Mode = "series"
		sel, _ := compileSelector(&ps, s.Metric, s.Host, s.Matchers)
		e.Selector = &sel
	case s.Host != "":
		e.Mode = "host"
		if len(s.Matchers) > 0 {
			ps.add("matchers", "select series: give a metric with them")
		}
		if len(s.Host) > 255 {
			ps.add("host", "must be a host name of at most 255 characters")
		}
		e.Host = s.Host
	default:
		ps.add("metric", "give a metric (series), a host, or agents: true")
	}
	if e.Mode != "agent" && len(s.HostLabels) > 0 {
		ps.add("host_labels", "narrows agents: true only")
	}
	silent := windowField(&ps, "silent_for", s.SilentFor, 5*time.Minute, 10*time.Second, 7*day)
	lookback := windowField(&ps, "lookback", s.Lookback, day, time.Minute, 7*day)
	if lookback <= silent {
		ps.add("lookback", "must be longer than silent_for: it is how far back a thing must have sent data")
	}
	if len(ps) > 0 {
		return Compiled{}, ps
	}
	s.SilentFor, s.Lookback = FormatDuration(silent), FormatDuration(lookback)
	e.SilentFor, e.Lookback = seconds(silent), seconds(lookback)
	return Compiled{Settings: mustJSON(s), Eval: mustJSON(e)}, nil
}

func (absentKind) Evaluate(ctx context.Context, q *dbsqlc.Queries, rules []int64, at []time.Time) ([][]byte, error) {
	return q.AlertEvalAbsent(ctx, dbsqlc.AlertEvalAbsentParams{RuleIds: rules, At: at})
}

func (absentKind) Unanswered() *float64 { return nil }
