package notify

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/secrets"
)

// pagerdutyKind sends PagerDuty Events API v2 events: a trigger for each firing alert and a resolve for
// each resolved one, with the alert's fingerprint as dedup_key, so that PagerDuty pairs them into one
// incident and a resend after a crash changes nothing.
type pagerdutyKind struct{}

// PagerDutySettings are a PagerDuty channel's settings. The routing key is secret.
type PagerDutySettings struct {
	// RoutingKey is the integration key of an Events API v2 integration on a service.
	RoutingKey string `json:"routing_key"`
}

var pagerdutyKeyRE = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)

func (pagerdutyKind) Name() string { return "pagerduty" }

func (pagerdutyKind) Validate(settings json.RawMessage) []Problem {
	var ps problems
	var st PagerDutySettings
	if decodeSettings(&ps, "pagerduty", settings, &st) && ps.required("settings.routing_key", st.RoutingKey) &&
		!pagerdutyKeyRE.MatchString(st.RoutingKey) {
		ps.add("settings.routing_key", "must be the 32-character integration key of an Events API v2 integration")
	}
	return ps
}

func (pagerdutyKind) Secrets() secrets.Fields {
	return secrets.Fields{Settings: []string{"routing_key"}}
}

func (pagerdutyKind) Endpoints(json.RawMessage) []Endpoint { return nil }

func (pagerdutyKind) Destination(json.RawMessage) string { return "" }

// Limits: PagerDuty takes 120 events a minute per integration key; a message sends one per alert.
func (pagerdutyKind) Limits(settings json.RawMessage, m *Message) []Limit {
	return []Limit{{Key: limitKey("pagerduty", settingsOf[PagerDutySettings](settings).RoutingKey),
		Every: 500 * time.Millisecond, Burst: 60, N: len(m.Alerts)}}
}

func (pagerdutyKind) Notify(ctx context.Context, d *Delivery) (bool, error) {
	st := settingsOf[PagerDutySettings](d.Channel.Settings)
	url := strings.TrimRight(d.env.providers.PagerDutyAPI, "/") + "/v2/enqueue"
	for _, ev := range PagerDutyEvents(d.Message, st.RoutingKey, d.Channel.ID) {
		a, retry, err := d.postJSON(ctx, d.env.apiHTTP, url, nil, ev)
		if err != nil {
			if pe, ok := err.(*ProviderError); ok && a.status == 400 {
				pe.Text = pagerdutyErrors(a.body)
			}
			return retry, err
		}
	}
	return false, nil
}

// PagerDutyEvents are the events that carry m: a trigger or a resolve per alert.
func PagerDutyEvents(m *Message, routingKey string, channelID int64) []map[string]any {
	var out []map[string]any
	for _, a := range m.Alerts {
		dedup := a.Fingerprint
		if m.Test {
			dedup = "infrawatch-test-" + strconv.FormatInt(channelID, 10)
		} else if dedup == "" {
			dedup = "infrawatch-alert-" + strconv.FormatInt(a.ID, 10)
		}
		dedup = cut(dedup, 255)
		if !a.Firing() {
			out = append(out, map[string]any{"routing_key": routingKey, "event_action": "resolve", "dedup_key": dedup})
			continue
		}
		source := "infrawatch"
		if a.Host != nil && a.Host.Name != "" {
			source = a.Host.Name
		} else if a.Check != nil && a.Check.Name != "" {
			source = a.Check.Name
		}
		summary := a.Headline()
		if s := a.Subject(); s != "" {
			summary += " on " + s
		}
		if s := a.Measure(); s != "" {
			summary += ": " + s
		}
		severity := a.Severity
		if severity != "info" && severity != "warning" && severity != "critical" {
			severity = "warning"
		}
		details := map[string]any{"idempotency_key": m.Key, "notification_id": a.NotificationID,
			"notification_kind": a.NotificationKind, "alert_id": a.ID, "value": a.Value, "threshold": a.Threshold,
			"comparator": a.Comparator, "labels": a.Labels, "description": a.Description, "acked": a.Acked,
			"flapping": a.Flapping, "tenant": m.Tenant.Slug}
		payload := map[string]any{"summary": cut(summary, 1024), "source": cut(source, 255), "severity": severity,
			"group": cut(m.Rule.Name, 255), "class": m.Rule.Kind, "custom_details": details}
		if !a.StartedAt.IsZero() {
			payload["timestamp"] = a.StartedAt.UTC().Format(time.RFC3339)
		}
		if a.Check != nil && a.Check.Name != "" {
			payload["component"] = cut(a.Check.Name, 255)
		}
		ev := map[string]any{"routing_key": routingKey, "event_action": "trigger", "dedup_key": dedup,
			"payload": payload, "client": "infrawatch"}
		if a.URL != "" {
			ev["links"] = []any{map[string]any{"href": a.URL, "text": "Alert in infrawatch"}}
		}
		if m.PublicURL != "" {
			ev["client_url"] = m.PublicURL
		}
		out = append(out, ev)
	}
	return out
}

// pagerdutyErrors reads the reasons of a 400: {"status":"invalid event","message":…,"errors":[…]}.
func pagerdutyErrors(body []byte) string {
	var answer struct {
		Message string   `json:"message"`
		Errors  []string `json:"errors"`
	}
	if json.Unmarshal(body, &answer) != nil || answer.Message == "" {
		return bodyText(body)
	}
	if len(answer.Errors) > 0 {
		return bound(answer.Message + ": " + strings.Join(answer.Errors, "; "))
	}
	return bound(answer.Message)
}
