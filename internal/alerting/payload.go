package alerting

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Payload is the payload of an outbox row (app.notifications.payload): everything a message needs, so
// that delivery never reads the alert tables. The contract with notification delivery pins its shape;
// times are RFC 3339 in UTC.
type Payload struct {
	Alert  PayloadAlert  `json:"alert"`
	Rule   PayloadRule   `json:"rule"`
	Tenant PayloadTenant `json:"tenant"`
}

// PayloadAlert is the alert of a message.
type PayloadAlert struct {
	ID          int64             `json:"id"`
	Fingerprint string            `json:"fingerprint"`
	State       string            `json:"state"` // firing or resolved
	Severity    string            `json:"severity"`
	StartedAt   *string           `json:"started_at"`
	ResolvedAt  *string           `json:"resolved_at"` // null while firing
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

// Ref names a host or a check.
type Ref struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// PayloadRule is the rule of a message.
type PayloadRule struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// PayloadTenant is the tenant of a message.
type PayloadTenant struct {
	ID   uuid.UUID `json:"id"`
	Slug string    `json:"slug"`
	Name string    `json:"name"`
}

func rfc3339(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

// payload is the payload of message m about the alert of p, whose id is alertID.
func (p *planned) payload(alertID int64, acked bool, m Message) json.RawMessage {
	a := p.outcome.Alert
	state := "firing"
	if m.Kind == "resolved" || !(a.State == Firing || a.State == Suppressed) {
		state = "resolved"
	}
	out := Payload{
		Alert: PayloadAlert{ID: alertID, Fingerprint: p.obs.Fingerprint, State: state, Severity: p.rule.Severity,
			StartedAt: rfc3339(a.StartedAt), Acked: acked, Flapping: a.Flapping, Summary: p.summary, Description: p.details,
			Labels: p.labels, Value: p.obs.Value.Finite(), Threshold: p.rule.threshold, Comparator: p.rule.comparator},
		Rule:   PayloadRule{ID: p.rule.ID, Name: p.rule.Name, Kind: p.rule.Kind},
		Tenant: PayloadTenant{ID: p.tenantID, Slug: p.rule.TenantSlug, Name: p.rule.TenantName},
	}
	if state == "resolved" {
		out.Alert.ResolvedAt = rfc3339(a.ResolvedAt)
	}
	if p.obs.HostID != nil && p.obs.HostName != nil {
		out.Alert.Host = &Ref{ID: *p.obs.HostID, Name: *p.obs.HostName}
	}
	if p.obs.CheckID != nil && p.obs.CheckName != nil {
		out.Alert.Check = &Ref{ID: *p.obs.CheckID, Name: *p.obs.CheckName}
	}
	return mustJSON(out)
}
