package notify

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Payload is what alerting writes in app.notifications.payload: everything a message says, so delivery
// never reads the alert tables. Its shape is the contract pinned in
// migrations/000011_alerting_contract.up.sql; times are RFC 3339 in UTC.
type Payload struct {
	Alert  PayloadAlert  `json:"alert"`
	Rule   PayloadRule   `json:"rule"`
	Tenant PayloadTenant `json:"tenant"`
}

// PayloadAlert is the alert a notification is about.
type PayloadAlert struct {
	ID          int64             `json:"id"`
	Fingerprint string            `json:"fingerprint"`
	State       string            `json:"state"`    // firing or resolved
	Severity    string            `json:"severity"` // info, warning or critical
	StartedAt   time.Time         `json:"started_at"`
	ResolvedAt  *time.Time        `json:"resolved_at"`
	Acked       bool              `json:"acked"`
	Flapping    bool              `json:"flapping"`
	Summary     string            `json:"summary"`
	Description string            `json:"description"`
	Labels      map[string]string `json:"labels"`
	Value       *float64          `json:"value"`
	Threshold   *float64          `json:"threshold"`
	Comparator  *string           `json:"comparator"`
	Host        *Ref              `json:"host"`
	Check       *Ref              `json:"check"`
}

// PayloadRule is the rule that fired.
type PayloadRule struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// PayloadTenant is the tenant the alert is of.
type PayloadTenant struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// Ref names a host or a check.
type Ref struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Notification is one outbox row as a message carries it.
type Notification struct {
	ID      int64
	Kind    string // firing, resolved, repeat, flapping, escalation or test
	Payload Payload
}

// Alert is one alert of a message: its payload, the notification that carries it and its link.
type Alert struct {
	PayloadAlert
	// NotificationID is the outbox row that carries the alert; NotificationKind its kind.
	NotificationID   int64
	NotificationKind string
	// URL links to the alert in the API (empty without --public-url, or for a test message).
	URL string
}

// Firing says whether the alert is firing (as opposed to resolved) in this message.
func (a Alert) Firing() bool { return a.State != "resolved" }

// Message is what one send says: the alerts of one rule that go to one channel together (a group), or a
// channel's test message.
type Message struct {
	// Key is the idempotency key the send carries (the lowest notification id of the message): a resend
	// after a crash carries the same.
	Key int64
	// IDs are the notifications the message carries, in order.
	IDs []int64
	// Test is a channel's test message (POST /channels/{id}/test).
	Test bool
	// Escalation: the message is sent because an alert was not acknowledged in time.
	Escalation bool
	// Repeat: a reminder of alerts still firing.
	Repeat bool
	Rule   PayloadRule
	Tenant PayloadTenant
	Alerts []Alert
	// PublicURL is --public-url, for links; empty means none.
	PublicURL string
	// Now is when the message is made, for durations of alerts still firing.
	Now time.Time
}

// NewMessage builds the message that carries ns (one group, oldest first). An alert that several of them
// carry (fired, then resolved, before the group went out) appears once, as the newest says it is.
func NewMessage(ns []Notification, publicURL string, now time.Time) *Message {
	m := &Message{PublicURL: strings.TrimRight(publicURL, "/"), Now: now.UTC()}
	byAlert := map[int64]int{} // alert id → index in m.Alerts
	for _, n := range ns {
		m.IDs = append(m.IDs, n.ID)
		if m.Key == 0 || n.ID < m.Key {
			m.Key = n.ID
		}
		switch n.Kind {
		case "test":
			m.Test = true
		case "escalation":
			m.Escalation = true
		case "repeat":
			m.Repeat = true
		}
		m.Rule, m.Tenant = n.Payload.Rule, n.Payload.Tenant
		a := Alert{PayloadAlert: n.Payload.Alert, NotificationID: n.ID, NotificationKind: n.Kind}
		if a.ID > 0 && m.PublicURL != "" {
			a.URL = m.PublicURL + "/api/v1/alerts/" + strconv.FormatInt(a.ID, 10)
		}
		if i, seen := byAlert[a.ID]; seen && a.ID > 0 {
			m.Alerts[i] = a
			continue
		}
		byAlert[a.ID] = len(m.Alerts)
		m.Alerts = append(m.Alerts, a)
	}
	return m
}

// Firing and Resolved split the alerts.
func (m *Message) Firing() []Alert {
	return slices.DeleteFunc(slices.Clone(m.Alerts), func(a Alert) bool { return !a.Firing() })
}

func (m *Message) Resolved() []Alert {
	return slices.DeleteFunc(slices.Clone(m.Alerts), func(a Alert) bool { return a.Firing() })
}

// Status is firing when any alert of the message fires, resolved otherwise.
func (m *Message) Status() string {
	if len(m.Firing()) > 0 {
		return "firing"
	}
	return "resolved"
}

// Severity is the highest severity of the message's firing alerts (of all alerts when none fires).
func (m *Message) Severity() string {
	rank := map[string]int{"info": 1, "warning": 2, "critical": 3}
	best := ""
	alerts := m.Firing()
	if len(alerts) == 0 {
		alerts = m.Alerts
	}
	for _, a := range alerts {
		if rank[a.Severity] > rank[best] {
			best = a.Severity
		}
	}
	if best == "" {
		return "warning"
	}
	return best
}

// Title says in one line what the message is about: "[FIRING:2] High CPU", "[RESOLVED] High CPU",
// with [TEST], [ESCALATED] or [REMINDER] before it when it is one.
func (m *Message) Title() string {
	var b strings.Builder
	switch {
	case m.Test:
		b.WriteString("[TEST] ")
	case m.Escalation:
		b.WriteString("[ESCALATED] ")
	case m.Repeat:
		b.WriteString("[REMINDER] ")
	}
	firing, resolved := len(m.Firing()), len(m.Resolved())
	switch {
	case firing > 0 && resolved > 0:
		fmt.Fprintf(&b, "[FIRING:%d, RESOLVED:%d] ", firing, resolved)
	case firing > 0:
		fmt.Fprintf(&b, "[FIRING:%d] ", firing)
	case resolved > 1:
		fmt.Fprintf(&b, "[RESOLVED:%d] ", resolved)
	default:
		b.WriteString("[RESOLVED] ")
	}
	name := m.Rule.Name
	if name == "" && len(m.Alerts) > 0 {
		name = m.Alerts[0].Headline()
	}
	b.WriteString(name)
	return b.String()
}

// Headline says what fired: the alert's summary, or its rule's name.
func (a Alert) Headline() string {
	if a.Summary != "" {
		return a.Summary
	}
	return "alert " + strconv.FormatInt(a.ID, 10)
}

// Subject says what the alert is on: its host and check, or else its labels.
func (a Alert) Subject() string {
	var parts []string
	if a.Host != nil && a.Host.Name != "" {
		parts = append(parts, "host "+a.Host.Name)
	}
	if a.Check != nil && a.Check.Name != "" {
		parts = append(parts, "check "+a.Check.Name)
	}
	if len(parts) == 0 {
		for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
			parts = append(parts, k+"="+a.Labels[k])
		}
	}
	return strings.Join(parts, ", ")
}

// Measure says the value against the threshold ("value 93.5 > threshold 90"); empty without a value.
func (a Alert) Measure() string {
	if a.Value == nil {
		return ""
	}
	s := "value " + formatNumber(*a.Value)
	if a.Threshold != nil {
		cmp := ">"
		if a.Comparator != nil && *a.Comparator != "" {
			cmp = *a.Comparator
		}
		s += " " + cmp + " threshold " + formatNumber(*a.Threshold)
	}
	return s
}

// When says since when the alert fires ("since 2026-11-28 15:04 UTC (12m)") or, resolved, how long it
// lasted ("resolved at 2026-11-28 15:20 UTC after 16m").
func (a Alert) When(now time.Time) string {
	if a.StartedAt.IsZero() {
		return ""
	}
	if !a.Firing() && a.ResolvedAt != nil {
		return "resolved at " + clock(*a.ResolvedAt) + " after " + humanDuration(a.ResolvedAt.Sub(a.StartedAt))
	}
	return "since " + clock(a.StartedAt) + " (" + humanDuration(now.Sub(a.StartedAt)) + ")"
}

// Lasted is how long a resolved alert fired; zero while it fires.
func (a Alert) Lasted() time.Duration {
	if a.Firing() || a.ResolvedAt == nil {
		return 0
	}
	return a.ResolvedAt.Sub(a.StartedAt)
}

// Details are the facts of an alert, one per line, in the order every kind shows them.
func (a Alert) Details(now time.Time) []string {
	var out []string
	if s := a.Subject(); s != "" {
		out = append(out, "on "+s)
	}
	if s := a.Measure(); s != "" {
		out = append(out, s)
	}
	if s := a.When(now); s != "" {
		out = append(out, s)
	}
	var flags []string
	if a.Severity != "" {
		flags = append(flags, "severity "+a.Severity)
	}
	if a.Acked {
		flags = append(flags, "acknowledged")
	}
	if a.Flapping {
		flags = append(flags, "flapping")
	}
	if len(flags) > 0 {
		out = append(out, strings.Join(flags, ", "))
	}
	if a.Description != "" {
		out = append(out, a.Description)
	}
	return out
}

// PlainText is the message as plain text: the title, then each alert with its facts and link.
func (m *Message) PlainText() string {
	var b strings.Builder
	b.WriteString(m.Title())
	b.WriteString("\n")
	if m.Test {
		b.WriteString("\nThis is a test message from infrawatch: the channel works.\n")
	}
	for _, a := range m.Alerts {
		b.WriteString("\n")
		b.WriteString(strings.ToUpper(stateWord(a)) + ": " + a.Headline() + "\n")
		for _, d := range a.Details(m.Now) {
			b.WriteString("  " + d + "\n")
		}
		if a.URL != "" {
			b.WriteString("  " + a.URL + "\n")
		}
	}
	return b.String()
}

// stateWord is firing or resolved.
func stateWord(a Alert) string {
	if a.Firing() {
		return "firing"
	}
	return "resolved"
}

// clock writes a time for people: UTC to the minute.
func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// humanDuration writes a duration in the largest units that matter: 45s, 12m, 3h05m, 2d04h.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// formatNumber writes a value as people read it: no exponent for everyday numbers, at most 4 decimals.
func formatNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if math.Abs(v) >= 1e15 || (v != 0 && math.Abs(v) < 1e-4) {
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	s := strconv.FormatFloat(v, 'f', 4, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// SamplePayload is the payload of a channel's test message: the contract's shape with alert id 0.
func SamplePayload(tenant PayloadTenant, channelName string, now time.Time) Payload {
	value, threshold, cmp := 93.5, 90.0, ">"
	return Payload{
		Alert: PayloadAlert{ID: 0, Fingerprint: "infrawatch-test", State: "firing", Severity: "info",
			StartedAt: now.UTC().Truncate(time.Second), Summary: "Test message for channel " + channelName,
			Description: "Sent from infrawatch to check that this channel works. Nothing is wrong.",
			Labels:      map[string]string{"test": "true"}, Value: &value, Threshold: &threshold, Comparator: &cmp,
			Host: &Ref{ID: 0, Name: "example-host"}},
		Rule:   PayloadRule{ID: 0, Name: "infrawatch test", Kind: "test"},
		Tenant: tenant,
	}
}

// DecodePayload reads a stored payload; a payload alerting wrote is always an object of this shape, and
// what it lacks stays zero.
func DecodePayload(raw []byte) (Payload, error) {
	var p Payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return Payload{}, fmt.Errorf("decode notification payload: %w", err)
	}
	return p, nil
}
