package alerting

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// thresholdKind: an aggregate of each matching series over a window, compared with a threshold. One
// alert per series.
type thresholdKind struct{}

func (thresholdKind) Name() string { return "threshold" }

// Aggregates a threshold rule computes over its window.
var Aggregates = []string{"avg", "min", "max", "last", "sum", "count", "rate"}

// rawWindow is the longest window read from raw samples; longer ones read the 5-minute rollup. rate
// needs the raw samples (the resets inside a bucket are gone from the rollup), so it stops there.
const rawWindow = time.Hour

type thresholdSettings struct {
	Metric           string    `json:"metric"`
	Host             string    `json:"host,omitempty"`
	Matchers         []Matcher `json:"matchers"`
	Window           string    `json:"window"`
	Agg              string    `json:"agg"`
	Comparator       string    `json:"comparator"`
	Threshold        *float64  `json:"threshold"`
	RecoverThreshold *float64  `json:"recover_threshold,omitempty"`
}

type thresholdEval struct {
	Selector  selector `json:"selector"`
	Window    int32    `json:"window"`
	Tier      string   `json:"tier"`
	Agg       string   `json:"agg"`
	Cmp       string   `json:"cmp"`
	Threshold float64  `json:"threshold"`
	Recover   *float64 `json:"recover,omitempty"`
}

func (thresholdKind) Compile(raw json.RawMessage) (Compiled, []Problem) {
	var s thresholdSettings
	if ps := decodeSettings(raw, &s); len(ps) > 0 {
		return Compiled{}, ps
	}
	var ps problems
	sel, _ := compileSelector(&ps, s.Metric, s.Host, s.Matchers)
	if s.Agg == "" {
		s.Agg = "avg"
	}
	if !slices.Contains(Aggregates, s.Agg) {
		ps.add("agg", "must be one of "+strings.Join(Aggregates, ", "))
	}
	window := windowField(&ps, "window", s.Window, 5*time.Minute, 10*time.Second, 7*day)
	s.Window = FormatDuration(window)
	if s.Agg == "rate" && window > rawWindow {
		ps.add("window", "rate reads raw samples: at most "+FormatDuration(rawWindow))
	}
	cond := compileCondition(&ps, s.Comparator, s.Threshold, s.RecoverThreshold)
	if len(ps) > 0 {
		return Compiled{}, ps
	}
	if s.Matchers == nil {
		s.Matchers = []Matcher{}
	}
	tier := "raw"
	if window > rawWindow {
		tier = "5m"
	}
	e := thresholdEval{Selector: sel, Window: seconds(window), Tier: tier, Agg: s.Agg, Cmp: cond.cmp,
		Threshold: cond.threshold, Recover: cond.recover}
	return Compiled{Settings: mustJSON(s), Eval: mustJSON(e), Threshold: &e.Threshold, Comparator: e.Cmp}, nil
}

func (thresholdKind) Evaluate(ctx context.Context, q *dbsqlc.Queries, rules []int64, at []time.Time) ([][]byte, error) {
	return q.AlertEvalThreshold(ctx, dbsqlc.AlertEvalThresholdParams{RuleIds: rules, At: at})
}

func (thresholdKind) Unanswered() *float64 { return nil }
