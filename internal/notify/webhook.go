package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/secrets"
)

// webhookKind posts a JSON document (README § Notifications) to a URL, signed with the channel's
// secret: X-Infrawatch-Signature is v1=hex(HMAC-SHA256(secret, timestamp + "." + body)) and
// X-Infrawatch-Timestamp the Unix time it was made, so a receiver can refuse a replayed body.
// X-Infrawatch-Id is the message's idempotency key.
type webhookKind struct{}

// WebhookSettings are a webhook channel's settings. URL, Secret and every header's value are secret.
type WebhookSettings struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	// Secret signs each body. The API makes one when a channel is created without it.
	Secret string `json:"secret"`
}

// Bounds of a webhook's settings.
const (
	maxWebhookHeaders   = 32
	maxHeaderNameBytes  = 256
	maxHeaderValueBytes = 4096
	minWebhookSecret    = 16
	maxWebhookSecret    = 256
)

// Headers a webhook sets itself, which a channel's headers may not replace.
var reservedWebhookHeaders = []string{"content-type", "content-length", "host", "user-agent", "x-infrawatch-id",
	"x-infrawatch-timestamp", "x-infrawatch-signature", "transfer-encoding", "connection"}

func (webhookKind) Name() string { return "webhook" }

func (webhookKind) Validate(settings json.RawMessage) []Problem {
	var ps problems
	var st WebhookSettings
	if !decodeSettings(&ps, "webhook", settings, &st) {
		return ps
	}
	ps.webURL("settings.url", st.URL, false)
	if len(st.Secret) < minWebhookSecret || len(st.Secret) > maxWebhookSecret {
		ps.add("settings.secret", "must be %d to %d bytes (leave it out when creating the channel and one is made)",
			minWebhookSecret, maxWebhookSecret)
	} else {
		ps.text("settings.secret", st.Secret, maxWebhookSecret, true)
	}
	if len(st.Headers) > maxWebhookHeaders {
		ps.add("settings.headers", "must have at most %d headers, not %d", maxWebhookHeaders, len(st.Headers))
	}
	for _, name := range slices.Sorted(maps.Keys(st.Headers)) {
		if name == "" || len(name) > maxHeaderNameBytes || strings.ContainsAny(name, " :\r\n\x00") {
			ps.add("settings.headers", "header name %.64q is not valid (at most %d bytes, no spaces, colons or line breaks)",
				name, maxHeaderNameBytes)
			continue
		}
		if slices.Contains(reservedWebhookHeaders, strings.ToLower(name)) {
			ps.add("settings.headers."+name, "is set by infrawatch and cannot be replaced")
			continue
		}
		ps.text("settings.headers."+name, st.Headers[name], maxHeaderValueBytes, true)
	}
	return ps
}

func (webhookKind) Secrets() secrets.Fields {
	return secrets.Fields{Settings: []string{"url", "secret"}, Maps: []string{"headers"}}
}

func (webhookKind) Endpoints(settings json.RawMessage) []Endpoint {
	return []Endpoint{{Field: "settings.url", URL: settingsOf[WebhookSettings](settings).URL}}
}

// Destination is the URL, where the headers and the signature go.
func (webhookKind) Destination(settings json.RawMessage) string {
	return settingsOf[WebhookSettings](settings).URL
}

func (webhookKind) Limits(json.RawMessage, *Message) []Limit { return nil }

func (webhookKind) Notify(ctx context.Context, d *Delivery) (bool, error) {
	st := settingsOf[WebhookSettings](d.Channel.Settings)
	body, err := json.Marshal(WebhookBody(d.Message))
	if err != nil {
		return false, err
	}
	ts := strconv.FormatInt(d.env.now().Unix(), 10)
	headers := map[string]string{}
	for k, v := range st.Headers {
		headers[k] = v
	}
	headers["X-Infrawatch-Id"] = strconv.FormatInt(d.Message.Key, 10)
	headers["X-Infrawatch-Timestamp"] = ts
	headers["X-Infrawatch-Signature"] = "v1=" + Sign(st.Secret, ts, body)
	a, retry, err := d.do(ctx, request{client: d.env.userHTTP, method: http.MethodPost, url: st.URL, headers: headers, body: body})
	if err != nil {
		return retry, err
	}
	return judge(a, "")
}

// Sign is the hex HMAC-SHA256 with secret of timestamp, a dot and body: what X-Infrawatch-Signature
// carries after "v1=".
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// WebhookMessage is the JSON body of a webhook (README § Notifications documents it).
type WebhookMessage struct {
	Version string `json:"version"`
	// ID is the idempotency key: the lowest notification id of the message, the same in every resend.
	ID              int64          `json:"id"`
	NotificationIDs []int64        `json:"notification_ids"`
	Status          string         `json:"status"` // firing or resolved
	Title           string         `json:"title"`
	Test            bool           `json:"test"`
	Escalation      bool           `json:"escalation"`
	Repeat          bool           `json:"repeat"`
	Rule            PayloadRule    `json:"rule"`
	Tenant          PayloadTenant  `json:"tenant"`
	Alerts          []WebhookAlert `json:"alerts"`
}

// WebhookAlert is an alert of a webhook's body: the payload's alert, the notification that carries it and
// its link (null without --public-url).
type WebhookAlert struct {
	PayloadAlert
	NotificationID   int64   `json:"notification_id"`
	NotificationKind string  `json:"notification_kind"`
	URL              *string `json:"url"`
	// DurationSeconds is how long a resolved alert fired; null while it fires.
	DurationSeconds *float64 `json:"duration_seconds"`
}

// WebhookBody is the body a webhook posts for m.
func WebhookBody(m *Message) WebhookMessage {
	out := WebhookMessage{Version: "1", ID: m.Key, NotificationIDs: m.IDs, Status: m.Status(), Title: m.Title(),
		Test: m.Test, Escalation: m.Escalation, Repeat: m.Repeat, Rule: m.Rule, Tenant: m.Tenant,
		Alerts: make([]WebhookAlert, 0, len(m.Alerts))}
	for _, a := range m.Alerts {
		w := WebhookAlert{PayloadAlert: a.PayloadAlert, NotificationID: a.NotificationID, NotificationKind: a.NotificationKind}
		if w.Labels == nil {
			w.Labels = map[string]string{}
		}
		if a.URL != "" {
			u := a.URL
			w.URL = &u
		}
		if d := a.Lasted(); d > 0 {
			s := d.Round(time.Second).Seconds()
			w.DurationSeconds = &s
		}
		out.Alerts = append(out.Alerts, w)
	}
	return out
}
