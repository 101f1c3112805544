package notify

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/secrets"
)

// slackKind posts a Block Kit message to Slack: through an incoming webhook (webhook_url), or with a
// bot token to a channel (chat.postMessage).
type slackKind struct{}

// SlackSettings are a Slack channel's settings: webhook_url, or token and channel. The URL and the token
// are secret.
type SlackSettings struct {
	WebhookURL string `json:"webhook_url"`
	Token      string `json:"token"`
	Channel    string `json:"channel"`
}

// Slack's limits: a header's text, a section's text, blocks in a message.
const (
	slackHeaderChars  = 150
	slackSectionChars = 3000
	slackMaxAlerts    = 40 // the header and the footer leave room within Slack's 50 blocks
)

func (slackKind) Name() string { return "slack" }

func (slackKind) Validate(settings json.RawMessage) []Problem {
	var ps problems
	var st SlackSettings
	if !decodeSettings(&ps, "slack", settings, &st) {
		return ps
	}
	switch {
	case st.WebhookURL != "" && st.Token != "":
		ps.add("settings.token", "give webhook_url or token and channel, not both")
	case st.WebhookURL != "":
		ps.webURL("settings.webhook_url", st.WebhookURL, true)
		if st.Channel != "" {
			ps.add("settings.channel", "an incoming webhook posts to its own channel; leave channel out")
		}
	case st.Token != "":
		if !strings.HasPrefix(st.Token, "xoxb-") && !strings.HasPrefix(st.Token, "xoxp-") {
			ps.add("settings.token", "must be a Slack bot token (xoxb-…)")
		}
		ps.text("settings.token", st.Token, 256, true)
		if ps.required("settings.channel", st.Channel) {
			ps.text("settings.channel", st.Channel, 80, true)
		}
	default:
		ps.add("settings.webhook_url", "is required (or token and channel)")
	}
	return ps
}

func (slackKind) Secrets() secrets.Fields {
	return secrets.Fields{Settings: []string{"webhook_url", "token"}}
}

func (slackKind) Endpoints(settings json.RawMessage) []Endpoint {
	if st := settingsOf[SlackSettings](settings); st.WebhookURL != "" {
		return []Endpoint{{Field: "settings.webhook_url", URL: st.WebhookURL}}
	}
	return nil
}

// Destination: the webhook's URL; a token posts only to Slack's own API.
func (slackKind) Destination(settings json.RawMessage) string {
	return settingsOf[SlackSettings](settings).WebhookURL
}

// Limits: Slack allows about one message a second per incoming webhook, and per channel for
// chat.postMessage.
func (slackKind) Limits(settings json.RawMessage, _ *Message) []Limit {
	st := settingsOf[SlackSettings](settings)
	if st.WebhookURL != "" {
		return []Limit{{Key: limitKey("slack-webhook", st.WebhookURL), Every: time.Second, Burst: 1}}
	}
	return []Limit{{Key: limitKey("slack-channel", st.Token, st.Channel), Every: time.Second, Burst: 1}}
}

func (slackKind) Notify(ctx context.Context, d *Delivery) (bool, error) {
	st := settingsOf[SlackSettings](d.Channel.Settings)
	msg := SlackMessage(d.Message)
	if st.WebhookURL != "" {
		_, retry, err := d.postJSON(ctx, d.env.userHTTP, st.WebhookURL, nil, msg)
		return retry, err
	}
	msg["channel"] = st.Channel
	msg["unfurl_links"] = false
	a, retry, err := d.postJSON(ctx, d.env.apiHTTP, strings.TrimRight(d.env.providers.SlackAPI, "/")+"/chat.postMessage",
		map[string]string{"Authorization": "Bearer " + st.Token, "Content-Type": "application/json; charset=utf-8"}, msg)
	if err != nil {
		return retry, err
	}
	// The Web API answers 200 and says in the body whether it posted.
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(a.body, &answer) != nil {
		return true, &ProviderError{Status: a.status, Text: "unreadable answer: " + bodyText(a.body)}
	}
	if answer.OK {
		return false, nil
	}
	retryable := slices.Contains([]string{"ratelimited", "internal_error", "fatal_error", "service_unavailable",
		"request_timeout"}, answer.Error)
	return retryable, &ProviderError{Status: a.status, Text: answer.Error, RetryAfter: retryAfter(a.header)}
}

// SlackMessage is the Block Kit message for m: a header, a section per alert (its facts, its link), and
// a footer. User text is escaped as Slack asks (&, <, >), so it can neither link nor mention.
func SlackMessage(m *Message) map[string]any {
	blocks := []any{map[string]any{"type": "header", "text": map[string]any{"type": "plain_text",
		"text": cut(m.Title(), slackHeaderChars), "emoji": false}}}
	if m.Test {
		blocks = append(blocks, slackSection("This is a test message from infrawatch: the channel works."))
	}
	for i, a := range m.Alerts {
		if i == slackMaxAlerts {
			blocks = append(blocks, slackSection("… and "+strconv.Itoa(len(m.Alerts)-i)+" more"))
			break
		}
		var b strings.Builder
		head := "*" + strings.ToUpper(stateWord(a)) + "* " + slackEscape(a.Headline())
		if a.URL != "" {
			head = "*" + strings.ToUpper(stateWord(a)) + "* <" + slackEscape(a.URL) + "|" + slackEscape(a.Headline()) + ">"
		}
		b.WriteString(head)
		for _, d := range a.Details(m.Now) {
			b.WriteString("\n• " + slackEscape(d))
		}
		blocks = append(blocks, slackSection(b.String()))
	}
	footer := "infrawatch"
	if m.Tenant.Name != "" {
		footer += " · " + slackEscape(m.Tenant.Name)
	}
	footer += " · notification " + strconv.FormatInt(m.Key, 10)
	blocks = append(blocks, map[string]any{"type": "context", "elements": []any{map[string]any{"type": "mrkdwn", "text": footer}}})
	return map[string]any{"text": slackEscape(m.Title()), "blocks": blocks}
}

func slackSection(text string) map[string]any {
	return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": cut(text, slackSectionChars)}}
}

// slackEscape escapes what Slack's mrkdwn reads as control characters: &, < and >.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// cut shortens s to at most n characters, ending with … when it was longer.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
