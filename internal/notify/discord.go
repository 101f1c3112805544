package notify

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/secrets"
)

// discordKind posts embeds to a Discord channel's webhook.
type discordKind struct{}

// DiscordSettings are a Discord channel's settings. The webhook URL is secret.
type DiscordSettings struct {
	WebhookURL string `json:"webhook_url"`
}

// Discord's limits: embeds per message, an embed's title and description, the content.
const (
	discordMaxEmbeds   = 10
	discordTitleChars  = 256
	discordDescChars   = 4096
	discordContentChar = 2000
)

func (discordKind) Name() string { return "discord" }

func (discordKind) Validate(settings json.RawMessage) []Problem {
	var ps problems
	var st DiscordSettings
	if decodeSettings(&ps, "discord", settings, &st) {
		ps.webURL("settings.webhook_url", st.WebhookURL, true)
	}
	return ps
}

func (discordKind) Secrets() secrets.Fields { return secrets.Fields{Settings: []string{"webhook_url"}} }

func (discordKind) Endpoints(settings json.RawMessage) []Endpoint {
	return []Endpoint{{Field: "settings.webhook_url", URL: settingsOf[DiscordSettings](settings).WebhookURL}}
}

func (discordKind) Destination(settings json.RawMessage) string {
	return settingsOf[DiscordSettings](settings).WebhookURL
}

// Limits: Discord allows a webhook 5 requests every 2 seconds.
func (discordKind) Limits(settings json.RawMessage, _ *Message) []Limit {
	return []Limit{{Key: limitKey("discord", settingsOf[DiscordSettings](settings).WebhookURL), Every: 400 * time.Millisecond, Burst: 5}}
}

func (discordKind) Notify(ctx context.Context, d *Delivery) (bool, error) {
	st := settingsOf[DiscordSettings](d.Channel.Settings)
	u, err := url.Parse(st.WebhookURL)
	if err != nil {
		return false, &ProviderError{Text: "the webhook URL does not parse"}
	}
	q := u.Query()
	q.Set("wait", "true") // answer the message, so that a 2xx means Discord stored it
	u.RawQuery = q.Encode()
	a, retry, err := d.postJSON(ctx, d.env.userHTTP, u.String(), nil, DiscordMessage(d.Message))
	if pe, ok := err.(*ProviderError); ok && a.status == 429 {
		var limited struct {
			RetryAfter float64 `json:"retry_after"`
			Message    string  `json:"message"`
		}
		if json.Unmarshal(a.body, &limited) == nil && limited.RetryAfter > 0 {
			pe.RetryAfter = time.Duration(limited.RetryAfter * float64(time.Second))
		}
	}
	return retry, err
}

// DiscordMessage is the message for m: its title as content and an embed per alert (red firing, green
// resolved), with no mention allowed. User text is escaped for Discord's Markdown.
func DiscordMessage(m *Message) map[string]any {
	var embeds []any
	for i, a := range m.Alerts {
		if i == discordMaxEmbeds {
			break
		}
		color := 0xE01E5A
		if !a.Firing() {
			color = 0x2EB67D
		}
		var desc []string
		if m.Test {
			desc = append(desc, "This is a test message from infrawatch: the channel works.")
		}
		for _, d := range a.Details(m.Now) {
			desc = append(desc, discordEscape(d))
		}
		e := map[string]any{"title": cut(strings.ToUpper(stateWord(a))+": "+discordEscape(a.Headline()), discordTitleChars),
			"description": cut(strings.Join(desc, "\n"), discordDescChars), "color": color,
			"footer": map[string]any{"text": "infrawatch · notification " + strconv.FormatInt(a.NotificationID, 10)}}
		if a.URL != "" {
			e["url"] = a.URL
		}
		if !a.StartedAt.IsZero() {
			e["timestamp"] = a.StartedAt.UTC().Format(time.RFC3339)
		}
		embeds = append(embeds, e)
	}
	content := discordEscape(m.Title())
	if n := len(m.Alerts) - discordMaxEmbeds; n > 0 {
		content += " (" + strconv.Itoa(n) + " more not shown)"
	}
	return map[string]any{"username": "infrawatch", "content": cut(content, discordContentChar), "embeds": embeds,
		"allowed_mentions": map[string]any{"parse": []string{}}}
}

// discordEscape puts a backslash before what Discord's Markdown reads as formatting, and breaks mentions
// (@everyone) with a zero-width space, so user text can neither format nor ping.
func discordEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\*_~`|>#-[]()<:", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
		if r == '@' {
			b.WriteRune('\u200b')
		}
	}
	return b.String()
}
