package notify

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/secrets"
)

// teamsKind posts an Adaptive Card to a Microsoft Teams incoming webhook (a Workflows "post to a
// channel when a webhook request is received" URL, or a classic connector's).
type teamsKind struct{}

// TeamsSettings are a Teams channel's settings. The webhook URL is secret.
type TeamsSettings struct {
	WebhookURL string `json:"webhook_url"`
}

// teamsMaxAlerts keeps a card within Teams' 28 KB.
const teamsMaxAlerts = 20

func (teamsKind) Name() string { return "teams" }

func (teamsKind) Validate(settings json.RawMessage) []Problem {
	var ps problems
	var st TeamsSettings
	if decodeSettings(&ps, "teams", settings, &st) {
		ps.webURL("settings.webhook_url", st.WebhookURL, true)
	}
	return ps
}

func (teamsKind) Secrets() secrets.Fields { return secrets.Fields{Settings: []string{"webhook_url"}} }

func (teamsKind) Endpoints(settings json.RawMessage) []Endpoint {
	return []Endpoint{{Field: "settings.webhook_url", URL: settingsOf[TeamsSettings](settings).WebhookURL}}
}

func (teamsKind) Destination(settings json.RawMessage) string {
	return settingsOf[TeamsSettings](settings).WebhookURL
}

// Limits: Teams throttles a webhook past four requests a second.
func (teamsKind) Limits(settings json.RawMessage, _ *Message) []Limit {
	return []Limit{{Key: limitKey("teams", settingsOf[TeamsSettings](settings).WebhookURL), Every: time.Second / 4, Burst: 4}}
}

func (teamsKind) Notify(ctx context.Context, d *Delivery) (bool, error) {
	st := settingsOf[TeamsSettings](d.Channel.Settings)
	_, retry, err := d.postJSON(ctx, d.env.userHTTP, st.WebhookURL, nil, TeamsMessage(d.Message))
	return retry, err
}

// TeamsMessage is the message for m: one Adaptive Card with the title, a block and facts for each
// alert, and a button to each alert's link. User text is escaped for the card's Markdown.
func TeamsMessage(m *Message) map[string]any {
	color := "Attention"
	if m.Status() == "resolved" {
		color = "Good"
	}
	body := []any{map[string]any{"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true,
		"color": color, "text": teamsEscape(m.Title())}}
	if m.Test {
		body = append(body, map[string]any{"type": "TextBlock", "wrap": true,
			"text": "This is a test message from infrawatch: the channel works."})
	}
	var actions []any
	for i, a := range m.Alerts {
		if i == teamsMaxAlerts {
			body = append(body, map[string]any{"type": "TextBlock", "wrap": true,
				"text": "… and " + strconv.Itoa(len(m.Alerts)-i) + " more"})
			break
		}
		body = append(body, map[string]any{"type": "TextBlock", "wrap": true, "separator": true,
			"text": "**" + strings.ToUpper(stateWord(a)) + "** " + teamsEscape(a.Headline())})
		var facts []any
		if s := a.Subject(); s != "" {
			facts = append(facts, map[string]any{"title": "On", "value": teamsEscape(s)})
		}
		if s := a.Measure(); s != "" {
			facts = append(facts, map[string]any{"title": "Value", "value": teamsEscape(s)})
		}
		if s := a.When(m.Now); s != "" {
			facts = append(facts, map[string]any{"title": "When", "value": teamsEscape(s)})
		}
		if a.Severity != "" {
			facts = append(facts, map[string]any{"title": "Severity", "value": teamsEscape(a.Severity)})
		}
		if len(facts) > 0 {
			body = append(body, map[string]any{"type": "FactSet", "facts": facts})
		}
		if a.Description != "" {
			body = append(body, map[string]any{"type": "TextBlock", "wrap": true, "isSubtle": true, "text": teamsEscape(a.Description)})
		}
		if a.URL != "" && len(actions) < 5 {
			actions = append(actions, map[string]any{"type": "Action.OpenUrl", "title": cut("Open: "+a.Headline(), 80), "url": a.URL})
		}
	}
	card := map[string]any{"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
		"version": "1.4", "body": body, "msteams": map[string]any{"width": "Full"}}
	if len(actions) > 0 {
		card["actions"] = actions
	}
	return map[string]any{"type": "message", "attachments": []any{map[string]any{
		"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": nil, "content": card}}}
}

// teamsEscape puts a backslash before what an Adaptive Card's Markdown reads as formatting, so user
// text cannot bold, link or list.
func teamsEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\*_[]()~`#>-+!|<", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
