package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/events"
)

// A batch is the rules one claim took. Its evaluation reads (the statements of its kinds, the open
// alerts, the silences and windows in force), decides in Go for the few things worth a decision, and
// writes everything it decided in one transaction together with the completion of the rules' slots.

// planned is the decision about one alert of a batch.
type planned struct {
	rule     *claimedRule
	obs      observation
	before   Alert
	outcome  Outcome
	labels   map[string]string
	mute     Mute
	reason   string // why suppressed, when it is
	summary  string
	details  string
	tenantID uuid.UUID
}

func (p *planned) key() alertKey { return alertKey{p.obs.RuleID, p.obs.Fingerprint} }

type alertKey struct {
	rule        int64
	fingerprint string
}

// mutes are the silences and maintenance windows in force for the tenants of a batch.
type mutes struct {
	silences map[uuid.UUID][]activeSilence
	windows  map[uuid.UUID][]activeWindow
}

type activeSilence struct {
	id       int64
	matchers Matchers
}

type activeWindow struct {
	id       int64
	hosts    []int64
	checks   []int64
	matchers Matchers
	all      bool
}

// loadMutes reads the silences and windows of tenants in force at at.
func loadMutes(ctx context.Context, q *dbsqlc.Queries, tenants []uuid.UUID, at time.Time) (mutes, error) {
	m := mutes{silences: map[uuid.UUID][]activeSilence{}, windows: map[uuid.UUID][]activeWindow{}}
	silences, err := q.SilenceListActive(ctx, dbsqlc.SilenceListActiveParams{TenantIds: tenants, At: at})
	if err != nil {
		return m, fmt.Errorf("read silences: %w", err)
	}
	for _, s := range silences {
		var ms []Matcher
		_ = json.Unmarshal(s.Matchers, &ms)
		m.silences[s.TenantID] = append(m.silences[s.TenantID], activeSilence{id: s.ID, matchers: MatchersOf(ms)})
	}
	windows, err := q.MaintenanceWindowsActive(ctx, dbsqlc.MaintenanceWindowsActiveParams{TenantIds: tenants, At: at})
	if err != nil {
		return m, fmt.Errorf("read maintenance windows: %w", err)
	}
	for _, w := range windows {
		var ms []Matcher
		_ = json.Unmarshal(w.Matchers, &ms)
		m.windows[w.TenantID] = append(m.windows[w.TenantID], activeWindow{id: w.ID, hosts: w.HostIds, checks: w.CheckIds,
			matchers: MatchersOf(ms), all: len(w.HostIds) == 0 && len(w.CheckIds) == 0 && len(ms) == 0})
	}
	return m, nil
}

// of is what mutes an alert of tenant with these labels, host and check.
func (m mutes) of(tenant uuid.UUID, labels map[string]string, host, check *int64) Mute {
	var out Mute
	for _, s := range m.silences[tenant] {
		if s.matchers.Match(labels) {
			out.Silences = append(out.Silences, s.id)
		}
	}
	for _, w := range m.windows[tenant] {
		if w.all || (host != nil && slices.Contains(w.hosts, *host)) || (check != nil && slices.Contains(w.checks, *check)) ||
			(len(w.matchers.List()) > 0 && w.matchers.Match(labels)) {
			out.Windows = append(out.Windows, w.id)
		}
	}
	return out
}

// decide applies one observation of rule at now: the decisions, the alert's labels and rendered texts.
func decide(rule *claimedRule, o observation, m mutes, now time.Time) *planned {
	p := &planned{rule: rule, obs: o, tenantID: rule.TenantID, before: o.Alert.decisionState()}
	p.labels = o.labels(rule.labels)
	p.mute = m.of(rule.TenantID, p.labels, o.HostID, o.CheckID)
	c := Condition{Holds: o.Breach, Recovered: o.Recovered, Disabled: !rule.Enabled}
	if o.ParentDown != nil {
		c.ParentDown = *o.ParentDown
	}
	p.outcome = Step(p.before, c, rule.timing, p.mute, now)
	if p.outcome.Alert.State == Suppressed {
		for _, e := range p.outcome.Events {
			if e.To == Suppressed {
				p.reason = e.Reason
			}
		}
		if p.reason == "" && o.Alert != nil {
			p.reason = o.Alert.SuppressedReason
		}
	}
	data := TemplateData{Labels: p.labels, Value: o.Value.V, HasValue: o.Value.Valid, Rule: rule.Name,
		Severity: rule.Severity, State: string(p.outcome.Alert.State)}
	if rule.threshold != nil {
		data.Threshold = *rule.threshold
	}
	if o.HostName != nil {
		data.Host = *o.HostName
	}
	if o.CheckName != nil {
		data.Check = *o.CheckName
	}
	p.summary = render(rule.Summary, data, maxSummaryBytes)
	p.details = render(rule.Description, data, maxDescriptionBytes)
	return p
}

// changed says whether the alert must be written: the decisions changed it, or what mutes it changed.
func (p *planned) changed() bool {
	if p.outcome.Changed(p.before) {
		return true
	}
	if p.obs.Alert == nil {
		return false
	}
	return !slices.Equal(nonNil(p.obs.Alert.SilencedBy), nonNil(p.mute.Silences)) ||
		!slices.Equal(nonNil(p.obs.Alert.MaintenanceBy), nonNil(p.mute.Windows)) ||
		p.obs.Alert.SuppressedReason != p.reason
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// alertRow is an alert as AlertApply writes it.
type alertRow struct {
	TenantID         uuid.UUID         `json:"tenant_id"`
	RuleID           int64             `json:"rule_id"`
	Fingerprint      string            `json:"fingerprint"`
	State            State             `json:"state"`
	Severity         string            `json:"severity"`
	Labels           map[string]string `json:"labels"`
	SeriesID         *int64            `json:"series_id"`
	HostID           *int64            `json:"host_id"`
	CheckID          *int64            `json:"check_id"`
	Value            Value             `json:"value"`
	Threshold        *float64          `json:"threshold"`
	Comparator       *string           `json:"comparator"`
	Summary          string            `json:"summary"`
	Description      string            `json:"description"`
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
	UpdatedAt        time.Time         `json:"updated_at"`
}

func (p *planned) row(now time.Time) alertRow {
	a := p.outcome.Alert
	changes := a.Changes
	if changes == nil {
		changes = []time.Time{}
	}
	return alertRow{TenantID: p.tenantID, RuleID: p.obs.RuleID, Fingerprint: p.obs.Fingerprint, State: a.State,
		Severity: p.rule.Severity, Labels: p.labels, SeriesID: p.obs.SeriesID, HostID: p.obs.HostID, CheckID: p.obs.CheckID,
		Value: p.obs.Value, Threshold: p.rule.threshold, Comparator: p.rule.comparator, Summary: p.summary,
		Description: p.details, ActiveSince: a.ActiveSince, StartedAt: a.StartedAt, ResolvedAt: a.ResolvedAt,
		Notified: a.Notified, LastNotifiedAt: a.LastNotified, Escalated: a.Escalated, Flapping: a.Flapping,
		Changes: changes, SilencedBy: nonNil(p.mute.Silences), MaintenanceBy: nonNil(p.mute.Windows),
		SuppressedReason: p.reason, UpdatedAt: now}
}

// eventRow is an alert event as AlertEventInsert writes it.
type eventRow struct {
	TenantID uuid.UUID `json:"tenant_id"`
	AlertID  int64     `json:"alert_id"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	From     *State    `json:"from_state"`
	To       *State    `json:"to_state"`
	Value    Value     `json:"value"`
	Reason   string    `json:"reason"`
}

// messageRow is a message as AlertEnqueueNotifications writes it: one outbox row per channel.
type messageRow struct {
	TenantID uuid.UUID       `json:"tenant_id"`
	AlertID  int64           `json:"alert_id"`
	Kind     string          `json:"kind"`
	Channels []int64         `json:"channels"`
	Payload  json.RawMessage `json:"payload"`
}

// written is what writing a batch did, for metrics and signals.
type written struct {
	rules       int // rules completed (the others' leases were lost)
	alerts      int
	transitions map[State]int
	messages    int // outbox rows
}

// write stores the decisions of a batch in one transaction: the completion of the rules' slots first
// (a rule whose lease was lost keeps nothing of this batch), then the alerts, their events, the outbox
// rows and the stream's events.
func write(ctx context.Context, q *dbsqlc.Queries, owner string, rules []*claimedRule, plans []*planned,
	evaluatedAt, now time.Time) (written, error) {
	w := written{transitions: map[State]int{}}
	complete := dbsqlc.AlertRuleCompleteParams{Owner: owner, EvaluatedAt: evaluatedAt}
	for _, r := range rules {
		complete.Ids = append(complete.Ids, r.ID)
		complete.Slots = append(complete.Slots, r.NextEvalAt)
		complete.NextEvalAt = append(complete.NextEvalAt, nextSlot(r.NextEvalAt, time.Duration(r.IntervalSeconds)*time.Second, now))
	}
	kept, err := q.AlertRuleComplete(ctx, complete)
	if err != nil {
		return w, fmt.Errorf("complete %d rules: %w", len(rules), err)
	}
	w.rules = len(kept)
	var rows []alertRow
	var keep []*planned
	for _, p := range plans {
		if slices.Contains(kept, p.obs.RuleID) && p.changed() {
			rows = append(rows, p.row(now))
			keep = append(keep, p)
		}
	}
	if len(rows) == 0 {
		return w, nil
	}
	applied, err := q.AlertApply(ctx, mustJSON(rows))
	if err != nil {
		return w, fmt.Errorf("write %d alerts: %w", len(rows), err)
	}
	ids := make(map[alertKey]dbsqlc.AlertApplyRow, len(applied))
	for _, a := range applied {
		ids[alertKey{a.RuleID, a.Fingerprint}] = a
	}
	w.alerts = len(applied)
	var evRows []eventRow
	var msgRows []messageRow
	var stream []events.Event
	for _, p := range keep {
		a, ok := ids[p.key()]
		if !ok {
			return w, fmt.Errorf("alert of rule %d and fingerprint %s was not written", p.obs.RuleID, p.obs.Fingerprint)
		}
		for _, e := range p.outcome.Events {
			from, to := e.From, e.To
			evRows = append(evRows, eventRow{TenantID: p.tenantID, AlertID: a.ID, Time: now, Kind: e.Kind, From: &from,
				To: &to, Value: p.obs.Value, Reason: e.Reason})
			if e.Kind != "state" {
				continue
			}
			w.transitions[e.To]++
			switch e.To {
			case Firing:
				stream = append(stream, p.streamEvent(events.AlertFiring, a.ID, now))
			case Resolved:
				stream = append(stream, p.streamEvent(events.AlertResolved, a.ID, now))
			}
		}
		for _, m := range p.outcome.Messages {
			channels := p.rule.Channels
			if m.Kind == "escalation" {
				channels = p.rule.escalation[m.Step].Channels
			}
			if len(channels) == 0 {
				continue
			}
			msgRows = append(msgRows, messageRow{TenantID: p.tenantID, AlertID: a.ID, Kind: m.Kind, Channels: channels,
				Payload: p.payload(a.ID, a.Acked, m)})
		}
	}
	if len(evRows) > 0 {
		if err := q.AlertEventInsert(ctx, mustJSON(evRows)); err != nil {
			return w, fmt.Errorf("record %d alert events: %w", len(evRows), err)
		}
	}
	if len(msgRows) > 0 {
		n, err := q.AlertEnqueueNotifications(ctx, mustJSON(msgRows))
		if err != nil {
			return w, fmt.Errorf("enqueue %d notifications: %w", len(msgRows), err)
		}
		w.messages = int(n)
	}
	if err := events.Publish(ctx, q, stream...); err != nil {
		return w, err
	}
	return w, nil
}

func (p *planned) streamEvent(typ string, alertID int64, now time.Time) events.Event {
	return events.Event{Type: typ, Tenant: p.tenantID, AlertID: alertID, RuleID: p.obs.RuleID, Severity: p.rule.Severity,
		Summary: p.summary, Time: now}
}

// nextSlot is the first slot after slot, keeping the rule's phase, that is not already past: an
// alerter that fell behind skips the slots it missed rather than evaluating them back to back.
func nextSlot(slot time.Time, interval time.Duration, now time.Time) time.Time {
	next := slot.Add(interval)
	if !next.After(now) {
		next = next.Add(((now.Sub(next) / interval) + 1) * interval)
	}
	return next
}
