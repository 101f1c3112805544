package notify

import (
	"context"
	"encoding/json"
	"html"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/secrets"
)

// telegramKind sends a message through a Telegram bot (Bot API sendMessage, HTML parse mode).
type telegramKind struct{}

// TelegramSettings are a Telegram channel's settings. The bot token is secret.
type TelegramSettings struct {
	BotToken string `json:"bot_token"`
	// ChatID is a chat's numeric id (-100… for groups and channels) or a public channel's @name.
	ChatID string `json:"chat_id"`
}

var (
	telegramTokenRE = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$`)
	telegramChatRE  = regexp.MustCompile(`^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$`)
)

// telegramTextChars stays under Telegram's 4,096 characters of a message's text.
const telegramTextChars = 3900

func (telegramKind) Name() string { return "telegram" }

func (telegramKind) Validate(settings json.RawMessage) []Problem {
	var ps problems
	var st TelegramSettings
	if !decodeSettings(&ps, "telegram", settings, &st) {
		return ps
	}
	if ps.required("settings.bot_token", st.BotToken) && !telegramTokenRE.MatchString(st.BotToken) {
		ps.add("settings.bot_token", "must be a bot token as @BotFather gives it (123456:ABC…)")
	}
	if ps.required("settings.chat_id", st.ChatID) && !telegramChatRE.MatchString(st.ChatID) {
		ps.add("settings.chat_id", "must be a numeric chat id (-100… for groups and channels) or a public channel's @name")
	}
	return ps
}

func (telegramKind) Secrets() secrets.Fields { return secrets.Fields{Settings: []string{"bot_token"}} }

func (telegramKind) Endpoints(json.RawMessage) []Endpoint { return nil }

// Destination: the token goes only to Telegram's API, whatever the chat.
func (telegramKind) Destination(json.RawMessage) string { return "" }

// Limits: Telegram allows a bot 30 messages a second, one a second to a chat, and 20 a minute to a group.
func (telegramKind) Limits(settings json.RawMessage, _ *Message) []Limit {
	st := settingsOf[TelegramSettings](settings)
	chat := Limit{Key: limitKey("telegram-chat", st.BotToken, st.ChatID), Every: time.Second, Burst: 1}
	if strings.HasPrefix(st.ChatID, "-") || strings.HasPrefix(st.ChatID, "@") {
		chat.Every = 3 * time.Second
	}
	return []Limit{{Key: limitKey("telegram-bot", st.BotToken), Every: time.Second / 30, Burst: 30}, chat}
}

func (telegramKind) Notify(ctx context.Context, d *Delivery) (bool, error) {
	st := settingsOf[TelegramSettings](d.Channel.Settings)
	var chat any = st.ChatID
	if n, err := strconv.ParseInt(st.ChatID, 10, 64); err == nil {
		chat = n
	}
	body := map[string]any{"chat_id": chat, "text": TelegramText(d.Message), "parse_mode": "HTML",
		"link_preview_options": map[string]any{"is_disabled": true}}
	raw, _ := json.Marshal(body)
	url := strings.TrimRight(d.env.providers.TelegramAPI, "/") + "/bot" + st.BotToken + "/sendMessage"
	a, retry, err := d.do(ctx, request{client: d.env.apiHTTP, method: "POST", url: url, body: raw})
	if err != nil {
		return retry, err
	}
	var answer struct {
		OK          bool   `json:"ok"`
		Description string `json:"description"`
		Parameters  struct {
			RetryAfter float64 `json:"retry_after"`
		} `json:"parameters"`
	}
	_ = json.Unmarshal(a.body, &answer)
	if a.status >= 200 && a.status < 300 && answer.OK {
		return false, nil
	}
	retry, err = judge(a, answer.Description)
	if pe, ok := err.(*ProviderError); ok && answer.Parameters.RetryAfter > 0 {
		pe.RetryAfter = time.Duration(answer.Parameters.RetryAfter * float64(time.Second))
	}
	if err == nil { // 2xx without ok: Telegram did not take it
		return true, &ProviderError{Status: a.status, Text: "answer without ok: " + bodyText(a.body)}
	}
	return retry, err
}

// TelegramText is the message in Telegram's HTML: user text escaped (&, <, >, and quotes in links), the
// title in bold, each alert with its facts and link, within Telegram's length.
func TelegramText(m *Message) string {
	var b strings.Builder
	b.WriteString("<b>" + html.EscapeString(m.Title()) + "</b>\n")
	if m.Test {
		b.WriteString("\nThis is a test message from infrawatch: the channel works.\n")
	}
	for i, a := range m.Alerts {
		var one strings.Builder
		one.WriteString("\n<b>" + strings.ToUpper(stateWord(a)) + "</b> ")
		if a.URL != "" {
			one.WriteString(`<a href="` + html.EscapeString(a.URL) + `">` + html.EscapeString(a.Headline()) + "</a>")
		} else {
			one.WriteString(html.EscapeString(a.Headline()))
		}
		one.WriteString("\n")
		for _, d := range a.Details(m.Now) {
			one.WriteString("• " + html.EscapeString(d) + "\n")
		}
		if len([]rune(b.String()))+len([]rune(one.String())) > telegramTextChars {
			b.WriteString("\n… and " + strconv.Itoa(len(m.Alerts)-i) + " more\n")
			break
		}
		b.WriteString(one.String())
	}
	return b.String()
}
