package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/infrawatch/infrawatch/internal/notify"
)

// receiver is a local webhook receiver: it records each request and answers status.
type receiver struct {
	srv    *httptest.Server
	got    chan *http.Request
	bodies chan []byte
	status atomic.Int64
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{got: make(chan *http.Request, 100), bodies: make(chan []byte, 100)}
	r.status.Store(200)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.got <- req
		r.bodies <- body
		w.WriteHeader(int(r.status.Load()))
		_, _ = io.WriteString(w, "receiver says "+strconv.Itoa(int(r.status.Load())))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// Channels are created, read, changed and deleted by admins; their secrets are never answered (the
// mask stands in), are sealed in the database, and a webhook's signing secret is answered once when
// the server makes it.
func TestChannelsCRUDAndSecrets(t *testing.T) {
	w := newWorld(t, testLimits)
	admin := w.a.tokens["admin"]
	hook := "https://hooks.example.com/services/T0/B0/very-secret-token"
	created := w.call(t, "POST", "/api/v1/channels", admin, map[string]any{"name": "ops hook", "kind": "webhook",
		"settings":           map[string]any{"url": hook, "headers": map[string]string{"Authorization": "Bearer receiver-token"}},
		"group_wait_seconds": 10}).must(t, http.StatusCreated)
	id := created.id(t)
	signing := created.str("signing_secret")
	if !strings.HasPrefix(signing, "whsec_") || len(signing) < 40 {
		t.Errorf("signing_secret %q", signing)
	}
	settings := created.json["settings"].(map[string]any)
	if settings["url"] != "********" || settings["secret"] != "********" ||
		settings["headers"].(map[string]any)["Authorization"] != "********" || created.json["group_wait_seconds"] != float64(10) ||
		created.json["group_interval_seconds"] != float64(300) || created.json["enabled"] != true {
		t.Errorf("created %s", created.raw)
	}
	leaks := func(where, raw string) {
		t.Helper()
		for _, s := range []string{"very-secret-token", "receiver-token", signing} {
			if strings.Contains(raw, s) {
				t.Errorf("%s shows %q", where, s)
			}
		}
	}
	got := w.call(t, "GET", "/api/v1/channels/"+id, admin, nil).must(t, http.StatusOK)
	leaks("GET", got.raw)
	leaks("the list", w.call(t, "GET", "/api/v1/channels?kind=webhook", admin, nil).must(t, http.StatusOK).raw)
	leaks("the audit log", w.call(t, "GET", "/api/v1/audit", admin, nil).must(t, http.StatusOK).raw)
	var row string
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT settings::text || encode(secrets, 'escape') FROM app.channels WHERE id = $1`,
		id).Scan(&row); err != nil {
		t.Fatal(err)
	}
	leaks("the stored row", row)

	// The answer sent back keeps every secret; a new URL needs the headers and the signing secret again.
	w.call(t, "PATCH", "/api/v1/channels/"+id, admin, map[string]any{"name": "ops hook 2", "settings": got.json["settings"]}).
		must(t, http.StatusOK)
	moved := got.json["settings"].(map[string]any)
	moved["url"] = "https://attacker.example.net/collect"
	namesFields(t, w.call(t, "PATCH", "/api/v1/channels/"+id, admin, map[string]any{"settings": moved}), "send the secret again",
		"settings.secret", "settings.headers.Authorization")
	namesFields(t, w.call(t, "PATCH", "/api/v1/channels/"+id, admin, map[string]any{"settings": map[string]any{
		"url": "********", "secret": "********", "headers": map[string]string{"X-New": "********"}}}), "no stored secret", "settings.headers.X-New")
	w.call(t, "PATCH", "/api/v1/channels/"+id, admin, map[string]any{"enabled": false, "group_interval_seconds": 60}).must(t, http.StatusOK)
	after := w.call(t, "GET", "/api/v1/channels/"+id, admin, nil).must(t, http.StatusOK)
	if after.json["name"] != "ops hook 2" || after.json["enabled"] != false || after.json["group_interval_seconds"] != float64(60) {
		t.Errorf("after the PATCHes: %s", after.raw)
	}
	w.call(t, "DELETE", "/api/v1/channels/"+id, admin, nil).must(t, http.StatusNoContent)
	w.call(t, "GET", "/api/v1/channels/"+id, admin, nil).must(t, http.StatusNotFound)
}

// Bad channels are refused with a 400 naming each bad field, server-owned fields included.
func TestChannelValidation(t *testing.T) {
	w := newWorld(t, testLimits)
	admin := w.a.tokens["admin"]
	for _, tc := range []struct {
		body   map[string]any
		fields []string
	}{
		{map[string]any{}, []string{"name", "kind", "settings"}},
		{map[string]any{"name": "x", "kind": "fax", "settings": map[string]any{}}, []string{"kind"}},
		{map[string]any{"name": "", "kind": "email", "settings": map[string]any{"to": []string{"no"}}, "group_wait_seconds": -1,
			"group_interval_seconds": 100000}, []string{"name", "settings.to[0]", "group_wait_seconds", "group_interval_seconds"}},
		{map[string]any{"name": "x", "kind": "telegram", "settings": map[string]any{"bot_token": "x", "chat": "1"}}, []string{"settings.chat"}},
		{map[string]any{"name": "x", "kind": "slack", "settings": map[string]any{"webhook_url": "********"}}, []string{"settings.webhook_url"}},
		{map[string]any{"name": "x", "kind": "email", "settings": map[string]any{"to": []string{"a@example.com"}}, "id": 3, "tenant_id": "x"},
			[]string{"id", "tenant_id"}},
	} {
		namesFields(t, w.call(t, "POST", "/api/v1/channels", admin, tc.body), "", tc.fields...)
	}
	// Kinds that take https only refuse http.
	namesFields(t, w.call(t, "POST", "/api/v1/channels", admin, map[string]any{"name": "x", "kind": "discord",
		"settings": map[string]any{"webhook_url": "http://discord.example.com/api/webhooks/1/x"}}), "https://", "settings.webhook_url")
}

// In SaaS mode a channel whose URL resolves to a private or loopback address is refused when it is
// saved, naming the field, and nothing connects to it.
func TestChannelSSRFRefusedAtSave(t *testing.T) {
	w := newWorld(t, testLimits)
	admin := w.a.tokens["admin"]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	defer ln.Close()
	w.guard.AllowPrivate = false
	defer func() { w.guard.AllowPrivate = true }()
	for _, tc := range []struct{ kind, field, url string }{
		{"webhook", "settings.url", "http://" + ln.Addr().String() + "/hook"},
		{"webhook", "settings.url", "http://169.254.169.254/latest/meta-data"},
		{"slack", "settings.webhook_url", "https://" + ln.Addr().String() + "/x"},
		{"teams", "settings.webhook_url", "https://10.1.2.3/x"},
		{"discord", "settings.webhook_url", "https://[::1]:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/x"},
	} {
		key := "url"
		if tc.kind != "webhook" {
			key = "webhook_url"
		}
		namesFields(t, w.call(t, "POST", "/api/v1/channels", admin, map[string]any{"name": "x", "kind": tc.kind,
			"settings": map[string]any{key: tc.url}}), "is not allowed", tc.field)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the listener accepted %d connections", n)
	}
}

// A test message goes out at once and the answer is the provider's: status and words, sent or failed.
// It is in the delivery log, with its attempt, for admins; filters narrow the log.
func TestChannelTestSendAndDeliveryLog(t *testing.T) {
	w := newWorld(t, testLimits)
	admin := w.a.tokens["admin"]
	rcv := newReceiver(t)
	created := w.call(t, "POST", "/api/v1/channels", admin, map[string]any{"name": "hook", "kind": "webhook",
		"settings": map[string]any{"url": rcv.srv.URL + "/in", "secret": "0123456789abcdef0123"}}).must(t, http.StatusCreated)
	id := created.id(t)
	sent := w.call(t, "POST", "/api/v1/channels/"+id+"/test", admin, nil).must(t, http.StatusOK)
	if sent.json["status"] != "sent" || sent.json["status_code"] != float64(200) || sent.json["error"] != "" {
		t.Errorf("test: %s", sent.raw)
	}
	req, body := <-rcv.got, <-rcv.bodies
	ts := req.Header.Get("X-Infrawatch-Timestamp")
	if req.Header.Get("X-Infrawatch-Signature") != "v1="+notify.Sign("0123456789abcdef0123", ts, body) ||
		req.Header.Get("X-Infrawatch-Id") != jsonNumber(sent.json["notification_id"].(float64)) {
		t.Errorf("the test message's headers %v", req.Header)
	}
	var msg notify.WebhookMessage
	if err := json.Unmarshal(body, &msg); err != nil || !msg.Test || msg.Tenant.Slug != "alpha" || len(msg.Alerts) != 1 {
		t.Errorf("the test message %s (%v)", body, err)
	}
	rcv.status.Store(401)
	refused := w.call(t, "POST", "/api/v1/channels/"+id+"/test", admin, nil).must(t, http.StatusOK)
	<-rcv.got
	if refused.json["status"] != "failed" || refused.json["status_code"] != float64(401) || refused.json["error"] != "status 401: receiver says 401" {
		t.Errorf("refused test: %s", refused.raw)
	}

	log := w.call(t, "GET", "/api/v1/notifications?channel_id="+id, admin, nil).must(t, http.StatusOK)
	items := log.json["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["state"] != "failed" || items[1].(map[string]any)["state"] != "sent" ||
		items[0].(map[string]any)["channel_name"] != "hook" || items[0].(map[string]any)["kind"] != "test" {
		t.Errorf("log %s", log.raw)
	}
	if failed := w.call(t, "GET", "/api/v1/notifications?state=failed&kind=test", admin, nil).must(t, http.StatusOK); len(failed.json["items"].([]any)) != 1 {
		t.Errorf("state=failed: %s", failed.raw)
	}
	nid := jsonNumber(refused.json["notification_id"].(float64))
	detail := w.call(t, "GET", "/api/v1/notifications/"+nid, admin, nil).must(t, http.StatusOK)
	attempts := detail.json["attempt_log"].([]any)
	if len(attempts) != 1 || attempts[0].(map[string]any)["status_code"] != float64(401) || attempts[0].(map[string]any)["outcome"] != "failed" ||
		detail.json["last_error"] != "status 401: receiver says 401" {
		t.Errorf("detail %s", detail.raw)
	}
	namesFields(t, w.call(t, "GET", "/api/v1/notifications?state=lost&channel_id=x&since=yesterday", admin, nil), "",
		"state", "channel_id", "since")

	// Editors neither see channels nor the log; test messages are limited per tenant.
	w.call(t, "GET", "/api/v1/channels", w.a.tokens["editor"], nil).must(t, http.StatusForbidden)
	w.call(t, "GET", "/api/v1/notifications", w.a.tokens["editor"], nil).must(t, http.StatusForbidden)
	w.call(t, "POST", "/api/v1/channels/"+id+"/test", admin, nil).must(t, http.StatusOK)
	<-rcv.got
	limited := w.call(t, "POST", "/api/v1/channels/"+id+"/test", admin, nil).must(t, http.StatusTooManyRequests)
	if limited.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// Tenant B can neither see, use, test nor read the delivery log of A's channels.
func TestChannelIsolation(t *testing.T) {
	w := newWorld(t, testLimits)
	rcv := newReceiver(t)
	a, b := w.a.tokens["owner"], w.b.tokens["owner"]
	id := w.call(t, "POST", "/api/v1/channels", a, map[string]any{"name": "a-hook", "kind": "webhook",
		"settings": map[string]any{"url": rcv.srv.URL}}).must(t, http.StatusCreated).id(t)
	nid := jsonNumber(w.call(t, "POST", "/api/v1/channels/"+id+"/test", a, nil).must(t, http.StatusOK).json["notification_id"].(float64))
	<-rcv.got
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/channels/" + id}, {"PATCH", "/api/v1/channels/" + id}, {"DELETE", "/api/v1/channels/" + id},
		{"POST", "/api/v1/channels/" + id + "/test"}, {"GET", "/api/v1/notifications/" + nid},
	} {
		w.call(t, c.method, c.path, b, map[string]any{}).must(t, http.StatusNotFound)
	}
	for _, path := range []string{"/api/v1/channels", "/api/v1/notifications", "/api/v1/notifications?channel_id=" + id} {
		if got := w.call(t, "GET", path, b, nil).must(t, http.StatusOK); strings.Contains(got.raw, "a-hook") || len(got.json["items"].([]any)) != 0 {
			t.Errorf("B's %s shows A's: %s", path, got.raw)
		}
	}
	select {
	case r := <-rcv.got:
		t.Errorf("B's test of A's channel reached A's receiver: %s", r.URL)
	default:
	}
	w.call(t, "GET", "/api/v1/channels/"+id, a, nil).must(t, http.StatusOK)
}
