package alerting

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// logKind: the number of log lines per host over a window at or above a severity, containing a text
// (literally, ignoring case) and matching an RE2 pattern — each optional — compared with a threshold. One
// alert per host.
type logKind struct{}

func (logKind) Name() string { return "log" }

// LogSeverities are the severities of log lines, lowest first (ts.logs.severity).
var LogSeverities = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

type logSettings struct {
	Severity         string            `json:"severity,omitempty"`
	Contains         string            `json:"contains,omitempty"`
	Pattern          string            `json:"pattern,omitempty"`
	Host             string            `json:"host,omitempty"`
	HostLabels       map[string]string `json:"host_labels,omitempty"`
	Window           string            `json:"window"`
	Comparator       string            `json:"comparator"`
	Threshold        *float64          `json:"threshold"`
	RecoverThreshold *float64          `json:"recover_threshold,omitempty"`
}

type logEval struct {
	Floor      int               `json:"floor,omitempty"`
	Like       string            `json:"like,omitempty"`
	Pattern    string            `json:"pattern,omitempty"`
	Host       string            `json:"host,omitempty"`
	HostLabels map[string]string `json:"host_labels,omitempty"`
	Window     int32             `json:"window"`
	Cmp        string            `json:"cmp"`
	Threshold  float64           `json:"threshold"`
	Recover    *float64          `json:"recover,omitempty"`
}

func (logKind) Compile(raw json.RawMessage) (Compiled, []Problem) {
	var s logSettings
	if ps := decodeSettings(raw, &s); len(ps) > 0 {
		return Compiled{}, ps
	}
	var ps problems
	e := logEval{Host: s.Host, HostLabels: s.HostLabels}
	if s.Severity != "" {
		rank := slices.Index(LogSeverities, s.Severity)
		if rank < 0 {
			ps.add("severity", "must be one of "+strings.Join(LogSeverities, ", "))
		}
		e.Floor = rank + 1 // infrawatch.log_severity_rank counts from 1
	}
	if len(s.Contains) > 1024 || strings.ContainsRune(s.Contains, 0) {
		ps.add("contains", "must be at most 1024 bytes")
	} else if s.Contains != "" {
		e.Like = "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(s.Contains) + "%"
	}
	if s.Pattern != "" {
		_, pg, err := compileRE2(s.Pattern)
		if err != nil {
			ps.add("pattern", err.Error())
		}
		e.Pattern = pg
	}
	if len(s.Host) > 255 {
		ps.add("host", "must be a host name of at most 255 characters")
	}
	if s.Host != "" && s.HostLabels != nil {
		ps.add("host_labels", "give host or host_labels, not both")
	}
	validLabels(&ps, "host_labels", s.HostLabels)
	window := windowField(&ps, "window", s.Window, 5*time.Minute, 10*time.Second, day)
	s.Window, e.Window = FormatDuration(window), seconds(window)
	cond := compileCondition(&ps, s.Comparator, s.Threshold, s.RecoverThreshold)
	e.Cmp, e.Threshold, e.Recover = cond.cmp, cond.threshold, cond.recover
	if s.Threshold != nil && slices.Contains(Comparators, s.Comparator) && Compare(0, s.Comparator, *s.Threshold) {
		ps.add("threshold", "a log rule counts the lines that arrive and must not hold at zero lines; "+
			"alert on silence with an absent rule")
	}
	if len(ps) > 0 {
		return Compiled{}, ps
	}
	return Compiled{Settings: mustJSON(s), Eval: mustJSON(e), Threshold: &e.Threshold, Comparator: e.Cmp}, nil
}

func (logKind) Evaluate(ctx context.Context, q *dbsqlc.Queries, rules []int64, at []time.Time) ([][]byte, error) {
	return q.AlertEvalLog(ctx, dbsqlc.AlertEvalLogParams{RuleIds: rules, At: at})
}

// Unanswered: a host the statement no longer answers had no matching line in the window.
func (logKind) Unanswered() *float64 {
	zero := 0.0
	return &zero
}
