package notify

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

func TestRegistry(t *testing.T) {
	if got, want := Names(), []string{"email", "slack", "telegram", "webhook", "teams", "discord", "pagerduty"}; !slices.Equal(got, want) {
		t.Fatalf("Names = %v, want %v", got, want)
	}
	for _, k := range registry {
		for _, name := range append(slices.Clone(k.Secrets().Settings), k.Secrets().Maps...) {
			if !slices.Contains(settingNames(k), name) {
				t.Errorf("%s: secret %q is not one of its settings %v", k.Name(), name, settingNames(k))
			}
		}
	}
}

// settingNames lists the JSON names of a kind's settings type, found by validating an object with one
// unknown field: the kinds refuse it, so this reads the type through its answers instead.
func settingNames(k Kind) []string {
	types := map[string]any{"email": EmailSettings{}, "slack": SlackSettings{}, "telegram": TelegramSettings{},
		"webhook": WebhookSettings{}, "teams": TeamsSettings{}, "discord": DiscordSettings{}, "pagerduty": PagerDutySettings{}}
	raw, _ := json.Marshal(types[k.Name()])
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	var out []string
	for name := range m {
		out = append(out, name)
	}
	return out
}

// Every kind refuses bad settings with a problem naming each bad field.
func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		kind, settings string
		fields         []string
	}{
		{"email", `{}`, []string{"settings.to"}},
		{"email", `{"to":["ok@example.com","Ana <ana@example.com>","nope"]}`, []string{"settings.to[1]", "settings.to[2]"}},
		{"email", `{"to":["a@example.com"],"cc":"x"}`, []string{"settings.cc"}},
		{"slack", `{}`, []string{"settings.webhook_url"}},
		{"slack", `{"webhook_url":"http://hooks.slack.com/x"}`, []string{"settings.webhook_url"}},
		{"slack", `{"token":"nope"}`, []string{"settings.token", "settings.channel"}},
		{"slack", `{"webhook_url":"https://hooks.slack.com/x","token":"xoxb-1"}`, []string{"settings.token"}},
		{"telegram", `{"bot_token":"123","chat_id":"me"}`, []string{"settings.bot_token", "settings.chat_id"}},
		{"webhook", `{"url":"ftp://x","secret":"short","headers":{"X-Infrawatch-Signature":"x","Bad Name":"v","Ok":"a\nb"}}`,
			[]string{"settings.url", "settings.secret", "settings.headers", "settings.headers.X-Infrawatch-Signature", "settings.headers.Ok"}},
		{"webhook", `{"url":"https://user:pw@example.com/hook","secret":"0123456789abcdef"}`, []string{"settings.url"}},
		{"teams", `{"webhook_url":"not a url"}`, []string{"settings.webhook_url"}},
		{"discord", `{"webhook_url":""}`, []string{"settings.webhook_url"}},
		{"pagerduty", `{"routing_key":"short"}`, []string{"settings.routing_key"}},
		{"nope", `{}`, []string{"kind"}},
	} {
		ps := Validate(tc.kind, json.RawMessage(tc.settings))
		var got []string
		for _, p := range ps {
			got = append(got, p.Field)
		}
		slices.Sort(got)
		want := slices.Clone(tc.fields)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s %s: problems %v, want fields %v", tc.kind, tc.settings, ps, want)
		}
	}
	for kind, settings := range map[string]string{
		"email":     `{"to":["ops@example.com"]}`,
		"slack":     `{"token":"xoxb-123-456-abc","channel":"C0123456"}`,
		"telegram":  `{"bot_token":"123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefgh","chat_id":"-1001234567890"}`,
		"webhook":   `{"url":"https://example.com/hook","secret":"0123456789abcdef","headers":{"Authorization":"Bearer x"}}`,
		"teams":     `{"webhook_url":"https://example.webhook.office.com/webhookb2/x"}`,
		"discord":   `{"webhook_url":"https://discord.com/api/webhooks/1/abc"}`,
		"pagerduty": `{"routing_key":"0123456789abcdef0123456789ABCDEF"}`,
	} {
		if ps := Validate(kind, json.RawMessage(settings)); len(ps) > 0 {
			t.Errorf("%s %s: %v", kind, settings, ps)
		}
	}
}

// The message says what fired, on what, the value against the threshold, since when, and links; a
// resolved alert says how long it lasted.
func TestMessageSaysWhatHappened(t *testing.T) {
	m := sampleMessage()
	if m.Key != 101 || !slices.Equal(m.IDs, []int64{101, 102}) {
		t.Errorf("key %d, ids %v", m.Key, m.IDs)
	}
	if got, want := m.Title(), "[FIRING:1, RESOLVED:1] CPU <high> & *hot*"; got != want {
		t.Errorf("title %q, want %q", got, want)
	}
	text := m.PlainText()
	for _, want := range []string{"FIRING: CPU > 90%", "on host web-1 <prod>", "value 93.5 > threshold 90",
		"since 2030-06-01 11:48 UTC (12m)", "https://iw.example.com/api/v1/alerts/7",
		"RESOLVED: Disk & inode pressure", "resolved at 2030-06-01 11:58 UTC after 10m", "severity critical"} {
		if !strings.Contains(text, want) {
			t.Errorf("plain text lacks %q:\n%s", want, text)
		}
	}
	// Escalations (alerting enqueues them for a rule's extra channels) and reminders say so.
	esc := NewMessage([]Notification{{ID: 3, Kind: "escalation", Payload: Payload{Rule: PayloadRule{Name: "r"},
		Alert: PayloadAlert{ID: 1, State: "firing"}}}}, "", testStart)
	rep := NewMessage([]Notification{{ID: 4, Kind: "repeat", Payload: Payload{Rule: PayloadRule{Name: "r"},
		Alert: PayloadAlert{ID: 1, State: "firing"}}}}, "", testStart)
	if esc.Title() != "[ESCALATED] [FIRING:1] r" || rep.Title() != "[REMINDER] [FIRING:1] r" || !WebhookBody(esc).Escalation {
		t.Errorf("escalation %q, reminder %q", esc.Title(), rep.Title())
	}
	// An alert that fired and resolved before its group went out appears once, resolved.
	p := Payload{Alert: PayloadAlert{ID: 9, State: "firing", Summary: "x"}}
	r := p
	r.Alert.State = "resolved"
	g := NewMessage([]Notification{{ID: 5, Kind: "firing", Payload: p}, {ID: 6, Kind: "resolved", Payload: r}}, "", testStart)
	if len(g.Alerts) != 1 || g.Alerts[0].Firing() || g.Key != 5 || g.Alerts[0].URL != "" {
		t.Errorf("fired and resolved in one group: %+v", g.Alerts)
	}
}

func TestSlackWebhook(t *testing.T) {
	fake := newTLSFake(t, reply(200, "ok"))
	s, _ := testSender(t, Config{})
	settings := map[string]string{"webhook_url": fake.srv.URL + "/services/T0/B0/XXXX"}
	if out := send(t, s, "slack", settings, sampleMessage()); out.Err != nil || out.Status != 200 {
		t.Fatalf("send: %+v", out)
	}
	req := fake.next(t)
	if req.Method != "POST" || req.Path != "/services/T0/B0/XXXX" || !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		t.Errorf("request %s %s %s", req.Method, req.Path, req.Header.Get("Content-Type"))
	}
	body := req.json(t)
	if body["text"] != "[FIRING:1, RESOLVED:1] CPU &lt;high&gt; &amp; *hot*" {
		t.Errorf("fallback text %q: &, < and > must be escaped", body["text"])
	}
	blocks := body["blocks"].([]any)
	header := blocks[0].(map[string]any)
	if header["type"] != "header" || header["text"].(map[string]any)["type"] != "plain_text" ||
		header["text"].(map[string]any)["text"] != "[FIRING:1, RESOLVED:1] CPU <high> & *hot*" {
		t.Errorf("header block %v (plain_text is not escaped)", header)
	}
	section := blocks[1].(map[string]any)["text"].(map[string]any)
	text := section["text"].(string)
	if section["type"] != "mrkdwn" || !strings.Contains(text, "*FIRING* <https://iw.example.com/api/v1/alerts/7|CPU &gt; 90% &amp; &lt;rising&gt;") ||
		!strings.Contains(text, "on host web-1 &lt;prod&gt;") || strings.Contains(text, "<rising>") || strings.Contains(text, "<prod>") {
		t.Errorf("section %q: want the link and escaped text", text)
	}
	if last := blocks[len(blocks)-1].(map[string]any); last["type"] != "context" {
		t.Errorf("last block %v, want the context footer", last)
	}
	// Slack's answers: a refusal is final, a rate limit and a failure are retried.
	for _, tc := range []struct {
		answer     scripted
		retry      bool
		after      time.Duration
		errorPart  string
		statusCode int
	}{
		{reply(404, "channel_not_found"), false, 0, "channel_not_found", 404},
		{reply(403, "invalid_token"), false, 0, "invalid_token", 403},
		{reply(429, "rate_limited", "Retry-After", "3"), true, 3 * time.Second, "rate_limited", 429},
		{reply(500, "rollup_error"), true, 0, "rollup_error", 500},
	} {
		fake.then(tc.answer)
		s2, _ := testSender(t, Config{}) // a fresh rate limit for each
		out := send(t, s2, "slack", settings, sampleMessage())
		fake.next(t)
		if out.Err == nil || out.Retry != tc.retry || out.RetryAfter != tc.after || out.Status != tc.statusCode ||
			!strings.Contains(out.ErrorText(), tc.errorPart) {
			t.Errorf("answer %d: %+v (%s), want retry %v after %s", tc.statusCode, out, out.ErrorText(), tc.retry, tc.after)
		}
	}
}

func TestSlackBotToken(t *testing.T) {
	fake := newFake(t, reply(200, `{"ok":true,"channel":"C0123456","ts":"1503435956.000247"}`))
	s, _ := testSender(t, Config{Providers: Providers{SlackAPI: fake.srv.URL + "/api"}})
	settings := map[string]string{"token": "xoxb-123-456-secret", "channel": "C0123456"}
	if out := send(t, s, "slack", settings, sampleMessage()); out.Err != nil {
		t.Fatalf("send: %+v", out)
	}
	req := fake.next(t)
	if req.Path != "/api/chat.postMessage" || req.Header.Get("Authorization") != "Bearer xoxb-123-456-secret" ||
		req.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("request %s %v", req.Path, req.Header)
	}
	if body := req.json(t); body["channel"] != "C0123456" || body["blocks"] == nil || body["unfurl_links"] != false {
		t.Errorf("body %v", body)
	}
	for _, tc := range []struct {
		answer scripted
		retry  bool
		text   string
	}{
		{reply(200, `{"ok":false,"error":"channel_not_found"}`), false, "channel_not_found"},
		{reply(200, `{"ok":false,"error":"not_in_channel"}`), false, "not_in_channel"},
		{reply(429, `{"ok":false,"error":"ratelimited"}`, "Retry-After", "30"), true, "ratelimited"},
		{reply(200, `{"ok":false,"error":"internal_error"}`), true, "internal_error"},
	} {
		fake.then(tc.answer)
		s2, _ := testSender(t, Config{Providers: Providers{SlackAPI: fake.srv.URL + "/api"}})
		out := send(t, s2, "slack", settings, sampleMessage())
		fake.next(t)
		if out.Err == nil || out.Retry != tc.retry || !strings.Contains(out.ErrorText(), tc.text) ||
			strings.Contains(out.ErrorText(), "secret") {
			t.Errorf("%s: %+v %q", tc.text, out, out.ErrorText())
		}
	}
}

// Slack takes about one message a second per webhook: a second message waits on the clock.
func TestSlackRateLimitWaitsOnTheClock(t *testing.T) {
	fake := newTLSFake(t, reply(200, "ok"))
	s, clock := testSender(t, Config{})
	settings := map[string]string{"webhook_url": fake.srv.URL + "/hook"}
	send(t, s, "slack", settings, sampleMessage())
	fake.next(t)
	done := make(chan Outcome, 1)
	go func() { done <- send(t, s, "slack", settings, sampleMessage()) }()
	clock.waitFor(t, time.Second)
	fake.none(t) // waiting, not sent
	clock.Advance(time.Second)
	fake.next(t)
	if out := <-done; out.Err != nil {
		t.Fatal(out.Err)
	}
	// Another webhook has its own limit and does not wait.
	other := map[string]string{"webhook_url": fake.srv.URL + "/other"}
	if out := send(t, s, "slack", other, sampleMessage()); out.Err != nil {
		t.Fatal(out.Err)
	}
	fake.next(t)
}

func TestTelegram(t *testing.T) {
	fake := newFake(t, reply(200, `{"ok":true,"result":{"message_id":1}}`))
	s, clock := testSender(t, Config{Providers: Providers{TelegramAPI: fake.srv.URL}})
	token := "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefgh"
	settings := map[string]string{"bot_token": token, "chat_id": "-1001234567890"}
	if out := send(t, s, "telegram", settings, sampleMessage()); out.Err != nil {
		t.Fatalf("send: %+v", out)
	}
	req := fake.next(t)
	if req.Method != "POST" || req.Path != "/bot"+token+"/sendMessage" || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s", req.Method, req.Path)
	}
	body := req.json(t)
	if body["chat_id"] != float64(-1001234567890) || body["parse_mode"] != "HTML" {
		t.Errorf("body %v", body)
	}
	text := body["text"].(string)
	for _, want := range []string{"<b>[FIRING:1, RESOLVED:1] CPU &lt;high&gt; &amp; *hot*</b>",
		`<a href="https://iw.example.com/api/v1/alerts/7">CPU &gt; 90% &amp; &lt;rising&gt; *bold* _it_ [x](y) @everyone &#34;q&#34;</a>`,
		"on host web-1 &lt;prod&gt;"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	// Telegram's HTML parse mode takes only its own tags: the text holds no other.
	z := html.NewTokenizer(strings.NewReader(text))
	for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
		if tt == html.StartTagToken || tt == html.EndTagToken {
			if name, _ := z.TagName(); string(name) != "b" && string(name) != "a" {
				t.Errorf("tag <%s> in the text: user text was not escaped", name)
			}
		}
	}
	for _, tc := range []struct {
		answer scripted
		retry  bool
		after  time.Duration
		text   string
	}{
		{reply(400, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`), false, 0, "status 400: Bad Request: chat not found"},
		{reply(403, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`), false, 0, "bot was blocked"},
		{reply(429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}`),
			true, 7 * time.Second, "Too Many Requests"},
		{reply(502, `Bad Gateway`), true, 0, "Bad Gateway"},
	} {
		fake.then(tc.answer)
		clock.Advance(time.Minute) // past the chat's limit
		out := send(t, s, "telegram", settings, sampleMessage())
		fake.next(t)
		if out.Err == nil || out.Retry != tc.retry || out.RetryAfter != tc.after || !strings.Contains(out.ErrorText(), tc.text) {
			t.Errorf("%s: %+v %q", tc.text, out, out.ErrorText())
		}
		if strings.Contains(out.ErrorText(), token) {
			t.Errorf("the error quotes the bot token: %q", out.ErrorText())
		}
	}
}

// Telegram allows one message a second to a chat (a group: one every 3 s) and 30 a second to a bot.
func TestTelegramLimits(t *testing.T) {
	k := telegramKind{}
	group := k.Limits(json.RawMessage(`{"bot_token":"1:x","chat_id":"-100"}`), nil)
	private := k.Limits(json.RawMessage(`{"bot_token":"1:x","chat_id":"42"}`), nil)
	if group[0].Key != private[0].Key || group[0].Burst != 30 || group[0].Every != time.Second/30 {
		t.Errorf("bot limits %+v %+v: one limit per bot, 30 a second", group[0], private[0])
	}
	if group[1].Key == private[1].Key || private[1].Every != time.Second || group[1].Every != 3*time.Second {
		t.Errorf("chat limits %+v %+v", group[1], private[1])
	}
}

func TestWebhookSignedBody(t *testing.T) {
	fake := newFake(t, reply(204, ""))
	s, _ := testSender(t, Config{})
	secret := "whsec-0123456789abcdef"
	settings := map[string]any{"url": fake.srv.URL + "/hooks/infrawatch?team=ops", "secret": secret,
		"headers": map[string]string{"Authorization": "Bearer receiver-token"}}
	if out := send(t, s, "webhook", settings, sampleMessage()); out.Err != nil || out.Status != 204 {
		t.Fatalf("send: %+v", out)
	}
	req := fake.next(t)
	if req.Method != "POST" || req.Path != "/hooks/infrawatch" || req.RawQuery != "team=ops" ||
		req.Header.Get("Authorization") != "Bearer receiver-token" || req.Header.Get("X-Infrawatch-Id") != "101" {
		t.Errorf("request %s %s?%s %v", req.Method, req.Path, req.RawQuery, req.Header)
	}
	ts := req.Header.Get("X-Infrawatch-Timestamp")
	if ts != strconv.FormatInt(testStart.Unix(), 10) {
		t.Errorf("timestamp %q, want the clock's %d", ts, testStart.Unix())
	}
	if got, want := req.Header.Get("X-Infrawatch-Signature"), "v1="+Sign(secret, ts, req.Body); got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
	var body WebhookMessage
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.ID != 101 || !slices.Equal(body.NotificationIDs, []int64{101, 102}) || body.Status != "firing" ||
		len(body.Alerts) != 2 || body.Alerts[0].Fingerprint != "fp-7" || *body.Alerts[0].URL != "https://iw.example.com/api/v1/alerts/7" ||
		body.Alerts[1].DurationSeconds == nil || *body.Alerts[1].DurationSeconds != 600 || body.Rule.ID != 3 || body.Tenant.Slug != "acme" {
		t.Errorf("body %s", req.Body)
	}
	// A redirect is never followed: the answer is final and the other host hears nothing.
	elsewhere := newFake(t, reply(200, "stolen"))
	fake.then(reply(302, "", "Location", elsewhere.srv.URL+"/steal"))
	out := send(t, s, "webhook", settings, sampleMessage())
	fake.next(t)
	elsewhere.none(t)
	if out.Err == nil || out.Retry || !strings.Contains(out.ErrorText(), "redirect not followed") || out.Status != 302 {
		t.Errorf("redirect: %+v %q", out, out.ErrorText())
	}
}

func TestTeams(t *testing.T) {
	fake := newTLSFake(t, reply(202, ""))
	s, _ := testSender(t, Config{})
	settings := map[string]string{"webhook_url": fake.srv.URL + "/workflows/x"}
	if out := send(t, s, "teams", settings, sampleMessage()); out.Err != nil || out.Status != 202 {
		t.Fatalf("send: %+v", out)
	}
	body := fake.next(t).json(t)
	if body["type"] != "message" {
		t.Errorf("type %v", body["type"])
	}
	att := body["attachments"].([]any)[0].(map[string]any)
	card := att["content"].(map[string]any)
	if att["contentType"] != "application/vnd.microsoft.card.adaptive" || card["type"] != "AdaptiveCard" || card["version"] != "1.4" {
		t.Errorf("attachment %v", att)
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(card["body"])
	raw := buf.String()
	for _, want := range []string{`CPU \\<high\\> & \\*hot\\*`, `\\*bold\\* \\_it\\_ \\[x\\]\\(y\\)`, `"FactSet"`, `value 93.5 \\> threshold 90`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("card body lacks %s: %s", want, raw)
		}
	}
	if actions := card["actions"].([]any); actions[0].(map[string]any)["url"] != "https://iw.example.com/api/v1/alerts/7" {
		t.Errorf("actions %v", actions)
	}
	for _, tc := range []struct {
		answer scripted
		retry  bool
	}{{reply(400, "Bad payload received by generic incoming webhook."), false}, {reply(429, "Microsoft Teams endpoint returned HTTP error 429"), true}} {
		fake.then(tc.answer)
		s2, _ := testSender(t, Config{})
		out := send(t, s2, "teams", settings, sampleMessage())
		fake.next(t)
		if out.Err == nil || out.Retry != tc.retry {
			t.Errorf("%+v", out)
		}
	}
}

func TestDiscord(t *testing.T) {
	fake := newTLSFake(t, reply(200, `{"id":"1","channel_id":"2"}`))
	s, _ := testSender(t, Config{})
	settings := map[string]string{"webhook_url": fake.srv.URL + "/api/webhooks/1/token"}
	if out := send(t, s, "discord", settings, sampleMessage()); out.Err != nil {
		t.Fatalf("send: %+v", out)
	}
	req := fake.next(t)
	if req.Path != "/api/webhooks/1/token" || req.RawQuery != "wait=true" {
		t.Errorf("request %s?%s", req.Path, req.RawQuery)
	}
	body := req.json(t)
	if mentions := body["allowed_mentions"].(map[string]any)["parse"].([]any); len(mentions) != 0 {
		t.Errorf("allowed_mentions %v: no mention may ping", mentions)
	}
	embeds := body["embeds"].([]any)
	first := embeds[0].(map[string]any)
	if len(embeds) != 2 || first["url"] != "https://iw.example.com/api/v1/alerts/7" || first["color"] != float64(0xE01E5A) ||
		embeds[1].(map[string]any)["color"] != float64(0x2EB67D) {
		t.Errorf("embeds %v", embeds)
	}
	title := first["title"].(string)
	if !strings.Contains(title, `\*bold\* \_it\_ \[x\]\(y\) @`+"\u200b"+`everyone`) || !strings.Contains(title, `\<rising\>`) {
		t.Errorf("title %q: Markdown and mentions must be escaped", title)
	}
	for _, tc := range []struct {
		answer scripted
		retry  bool
		after  time.Duration
	}{
		{reply(404, `{"message":"Unknown Webhook","code":10015}`), false, 0},
		{reply(400, `{"message":"Invalid Form Body","code":50035}`), false, 0},
		{reply(429, `{"message":"You are being rate limited.","retry_after":1.5,"global":false}`, "Retry-After", "2"), true, 1500 * time.Millisecond},
	} {
		fake.then(tc.answer)
		s2, _ := testSender(t, Config{})
		out := send(t, s2, "discord", settings, sampleMessage())
		fake.next(t)
		if out.Err == nil || out.Retry != tc.retry || out.RetryAfter != tc.after {
			t.Errorf("%+v %q", out, out.ErrorText())
		}
	}
}

func TestPagerDuty(t *testing.T) {
	fake := newFake(t, reply(202, `{"status":"success","message":"Event processed","dedup_key":"fp-7"}`))
	s, _ := testSender(t, Config{Providers: Providers{PagerDutyAPI: fake.srv.URL}})
	key := "0123456789abcdef0123456789ABCDEF"
	if out := send(t, s, "pagerduty", map[string]string{"routing_key": key}, sampleMessage()); out.Err != nil {
		t.Fatalf("send: %+v", out)
	}
	trigger, resolve := fake.next(t), fake.next(t)
	if trigger.Method != "POST" || trigger.Path != "/v2/enqueue" || resolve.Path != "/v2/enqueue" {
		t.Errorf("paths %s %s", trigger.Path, resolve.Path)
	}
	tb := trigger.json(t)
	payload := tb["payload"].(map[string]any)
	details := payload["custom_details"].(map[string]any)
	if tb["routing_key"] != key || tb["event_action"] != "trigger" || tb["dedup_key"] != "fp-7" ||
		payload["severity"] != "critical" || payload["source"] != "web-1 <prod>" ||
		!strings.HasPrefix(payload["summary"].(string), `CPU > 90% & <rising>`) || payload["timestamp"] != "2030-06-01T11:48:00Z" ||
		details["notification_id"] != float64(101) || details["idempotency_key"] != float64(101) ||
		tb["links"].([]any)[0].(map[string]any)["href"] != "https://iw.example.com/api/v1/alerts/7" {
		t.Errorf("trigger %s", trigger.Body)
	}
	if rb := resolve.json(t); len(rb) != 3 || rb["event_action"] != "resolve" || rb["dedup_key"] != "fp-8" || rb["routing_key"] != key {
		t.Errorf("resolve %s", resolve.Body)
	}
	fake.then(reply(400, `{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing"]}`))
	out := send(t, s, "pagerduty", map[string]string{"routing_key": key}, sampleMessage())
	fake.next(t)
	if out.Err == nil || out.Retry || !strings.Contains(out.ErrorText(), "'payload.summary' is missing") {
		t.Errorf("400: %+v %q", out, out.ErrorText())
	}
	fake.then(reply(429, ``))
	out = send(t, s, "pagerduty", map[string]string{"routing_key": key}, sampleMessage())
	fake.next(t)
	if out.Err == nil || !out.Retry || out.Status != http.StatusTooManyRequests {
		t.Errorf("429: %+v", out)
	}
}
