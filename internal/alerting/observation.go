package alerting

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// observation is one object of an evaluation statement (queries/alert_rules.sql): a thing a rule is
// about, what the evaluation found, and its alert as stored (nil when it has none).
type observation struct {
	RuleID      int64             `json:"rule_id"`
	At          time.Time         `json:"at"`
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	SeriesID    *int64            `json:"series_id"`
	HostID      *int64            `json:"host_id"`
	HostName    *string           `json:"host_name"`
	CheckID     *int64            `json:"check_id"`
	CheckName   *string           `json:"check_name"`
	ParentDown  *string           `json:"parent_down"`
	Value       Value             `json:"value"`
	Breach      bool              `json:"breach"`
	Recovered   bool              `json:"recovered"`
	Alert       *storedAlert      `json:"alert"`
}

// storedAlert is an app.alerts row as to_jsonb writes it.
type storedAlert struct {
	ID               int64             `json:"id"`
	TenantID         uuid.UUID         `json:"tenant_id"`
	State            State             `json:"state"`
	Labels           map[string]string `json:"labels"`
	SeriesID         *int64            `json:"series_id"`
	HostID           *int64            `json:"host_id"`
	CheckID          *int64            `json:"check_id"`
	ActiveSince      *time.Time        `json:"active_since"`
	StartedAt        *time.Time        `json:"started_at"`
	ResolvedAt       *time.Time        `json:"resolved_at"`
	Notified         bool              `json:"notified"`
	LastNotifiedAt   *time.Time        `json:"last_notified_at"`
	Escalated        int               `json:"escalated"`
	Flapping         bool              `json:"flapping"`
	Changes          []time.Time       `json:"changes"`
	SilencedBy       []int64           `json:"silenced_by"`
	MaintenanceBy    []int64           `json:"maintenance_by"`
	SuppressedReason string            `json:"suppressed_reason"`
	AckedAt          *time.Time        `json:"acked_at"`
}

// decisionState is the part of a stored alert the decisions work on.
func (s *storedAlert) decisionState() Alert {
	if s == nil {
		return Alert{State: Inactive}
	}
	return Alert{State: s.State, ActiveSince: s.ActiveSince, StartedAt: s.StartedAt, ResolvedAt: s.ResolvedAt,
		Notified: s.Notified, LastNotified: s.LastNotifiedAt, Escalated: s.Escalated, Flapping: s.Flapping,
		Changes: s.Changes, Acked: s.AckedAt != nil}
}

func decodeObservations(rows [][]byte) ([]observation, error) {
	out := make([]observation, len(rows))
	for i, r := range rows {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, fmt.Errorf("decode an evaluation's answer: %w", err)
		}
	}
	return out, nil
}

// labels are the labels of the thing's alert: what the evaluation found, the names of its host and
// check when it has them, and the rule's labels over them.
func (o observation) labels(rule map[string]string) map[string]string {
	out := make(map[string]string, len(o.Labels)+len(rule)+2)
	maps.Copy(out, o.Labels)
	if o.HostName != nil && out["host"] == "" {
		out["host"] = *o.HostName
	}
	if o.CheckName != nil && out["check"] == "" {
		out["check"] = *o.CheckName
	}
	maps.Copy(out, rule)
	return out
}

// Value is a float that may be unknown (JSON null) or not finite, which JSON has no number for:
// PostgreSQL's to_jsonb writes "Infinity", "-Infinity" and "NaN" as strings, and so does Value.
type Value struct {
	V     float64
	Valid bool
}

// ValueOf is a known value.
func ValueOf(v float64) Value { return Value{V: v, Valid: true} }

// Ptr is the value, nil when unknown.
func (v Value) Ptr() *float64 {
	if !v.Valid {
		return nil
	}
	return &v.V
}

// Finite is the value when it is known and finite, for messages (JSON has no other numbers).
func (v Value) Finite() *float64 {
	if !v.Valid || math.IsInf(v.V, 0) || math.IsNaN(v.V) {
		return nil
	}
	return &v.V
}

func (v *Value) UnmarshalJSON(b []byte) error {
	switch s := string(b); s {
	case "null":
		*v = Value{}
	case `"Infinity"`:
		*v = ValueOf(math.Inf(1))
	case `"-Infinity"`:
		*v = ValueOf(math.Inf(-1))
	case `"NaN"`:
		*v = ValueOf(math.NaN())
	default:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a value: %s", s)
		}
		*v = ValueOf(f)
	}
	return nil
}

func (v Value) MarshalJSON() ([]byte, error) {
	switch {
	case !v.Valid:
		return []byte("null"), nil
	case math.IsInf(v.V, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v.V, -1):
		return []byte(`"-Infinity"`), nil
	case math.IsNaN(v.V):
		return []byte(`"NaN"`), nil
	}
	return strconv.AppendFloat(nil, v.V, 'g', -1, 64), nil
}

// ruleOf is what the engine needs of a claimed rule.
type claimedRule struct {
	dbsqlc.AlertRuleClaimDueRow
	labels     map[string]string
	timing     Timing
	escalation []EscalationStep
	threshold  *float64
	comparator *string
}

func newClaimedRule(r dbsqlc.AlertRuleClaimDueRow) claimedRule {
	c := claimedRule{AlertRuleClaimDueRow: r, escalation: escalationOf(r.Escalation)}
	_ = json.Unmarshal(r.Labels, &c.labels)
	c.timing = Timing{For: time.Duration(r.ForSeconds) * time.Second, Repeat: time.Duration(r.RepeatSeconds) * time.Second,
		FlapChanges: int(r.FlapChanges), FlapWindow: time.Duration(r.FlapWindowSeconds) * time.Second}
	for _, s := range c.escalation {
		c.timing.Escalation = append(c.timing.Escalation, s.After)
	}
	var cond struct {
		Cmp       *string  `json:"cmp"`
		Threshold *float64 `json:"threshold"`
	}
	_ = json.Unmarshal(r.Eval, &cond)
	c.threshold, c.comparator = cond.Threshold, cond.Cmp
	return c
}
