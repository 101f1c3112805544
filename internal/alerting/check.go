package alerting

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// checkKind: checks that are down: a check (or the checks of hosts chosen by label, optionally of one
// kind) down for down_count consecutive results, or whose availability over a window is below
// availability_below percent. One alert per check.
type checkKind struct{}

func (checkKind) Name() string { return "check" }

// rawCheckWindow is the longest availability window read from raw results; longer ones read the
// hourly rollup.
const rawCheckWindow = 6 * time.Hour

type checkSettings struct {
	CheckIDs          []int64           `json:"check_ids,omitempty"`
	HostLabels        map[string]string `json:"host_labels,omitempty"`
	CheckKind         string            `json:"check_kind,omitempty"`
	DownCount         int32             `json:"down_count,omitempty"`
	AvailabilityBelow *float64          `json:"availability_below,omitempty"`
	Window            string            `json:"window,omitempty"`
	RecoverThreshold  *float64          `json:"recover_threshold,omitempty"`
}

type checkEval struct {
	CheckIDs   []int64           `json:"check_ids,omitempty"`
	HostLabels map[string]string `json:"host_labels,omitempty"`
	CheckKind  string            `json:"check_kind,omitempty"`
	Mode       string            `json:"mode"` // down or availability
	Count      int32             `json:"count,omitempty"`
	Window     int32             `json:"window,omitempty"`
	Tier       string            `json:"tier,omitempty"`
	Cmp        string            `json:"cmp"`
	Threshold  float64           `json:"threshold"`
	Recover    *float64          `json:"recover,omitempty"`
}

// maxCheckIDs bounds the checks a rule names.
const maxCheckIDs = 1000

func (checkKind) Compile(raw json.RawMessage) (Compiled, []Problem) {
	var s checkSettings
	if ps := decodeSettings(raw, &s); len(ps) > 0 {
		return Compiled{}, ps
	}
	var ps problems
	e := checkEval{CheckKind: s.CheckKind}
	switch {
	case len(s.CheckIDs) > 0 && s.HostLabels != nil:
		ps.add("check_ids", "give check_ids or host_labels, not both")
	case len(s.CheckIDs) > maxCheckIDs:
		ps.add("check_ids", "must name at most 1000 checks")
	case len(s.CheckIDs) > 0:
		for i, id := range s.CheckIDs {
			if id <= 0 || slices.Index(s.CheckIDs, id) < i {
				ps.add(errorf("check_ids[%d]", i), "must be a check id, once")
			}
		}
		e.CheckIDs = s.CheckIDs
		if s.CheckKind != "" {
			ps.add("check_kind", "narrows host_labels only")
		}
	case s.HostLabels != nil:
		validLabels(&ps, "host_labels", s.HostLabels)
		e.HostLabels = s.HostLabels
	default:
		ps.add("check_ids", "give check_ids, or host_labels to choose the checks of hosts by their labels")
	}
	if _, ok := checks.Lookup(s.CheckKind); s.CheckKind != "" && !ok {
		ps.add("check_kind", "must be one of "+strings.Join(checks.Names(), ", "))
	}
	switch {
	case s.DownCount != 0 && s.AvailabilityBelow != nil:
		ps.add("down_count", "give down_count or availability_below, not both")
	case s.AvailabilityBelow != nil:
		e.Mode = "availability"
		if v := *s.AvailabilityBelow; v <= 0 || v > 100 {
			ps.add("availability_below", "must be a percentage above 0 and at most 100")
		}
		window := windowField(&ps, "window", s.Window, time.Hour, 10*time.Minute, 30*day)
		s.Window, e.Window, e.Tier = FormatDuration(window), seconds(window), "raw"
		if window > rawCheckWindow {
			e.Tier = "1h"
		}
		cond := compileCondition(&ps, "<", s.AvailabilityBelow, s.RecoverThreshold)
		e.Cmp, e.Threshold, e.Recover = cond.cmp, cond.threshold, cond.recover
		if s.RecoverThreshold != nil && *s.RecoverThreshold > 100 {
			ps.add("recover_threshold", "must be a percentage")
		}
	case s.DownCount != 0:
		e.Mode = "down"
		if s.DownCount < 1 || s.DownCount > 100 {
			ps.add("down_count", "must be from 1 to 100")
		}
		if s.Window != "" || s.RecoverThreshold != nil {
			ps.add("window", "window and recover_threshold go with availability_below; down_count recovers with an up result")
		}
		// The value is the number of down results at the end of the last down_count: the rule holds at
		// down_count and recovers below 1, that is with an up result.
		one := 1.0
		e.Count, e.Cmp, e.Threshold, e.Recover = s.DownCount, ">=", float64(s.DownCount), &one
	default:
		ps.add("down_count", "give down_count (consecutive down results) or availability_below (percent over a window)")
	}
	if len(ps) > 0 {
		return Compiled{}, ps
	}
	return Compiled{Settings: mustJSON(s), Eval: mustJSON(e), Threshold: &e.Threshold, Comparator: e.Cmp}, nil
}

func (checkKind) Evaluate(ctx context.Context, q *dbsqlc.Queries, rules []int64, at []time.Time) ([][]byte, error) {
	return q.AlertEvalCheck(ctx, dbsqlc.AlertEvalCheckParams{RuleIds: rules, At: at})
}

func (checkKind) Unanswered() *float64 { return nil }
