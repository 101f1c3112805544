package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/notify"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

// The alerting and delivery sides meet only in the outbox. This follows one alert across it: a rule made
// through the API fires on stored samples in the alerter, and the notifier posts it to a webhook channel
// made through the API, signed, with what the rule and the data said.
func TestAlertReachesAWebhookThroughTheNotifier(t *testing.T) {
	w := newWorld(t, testLimits)
	type call struct {
		header http.Header
		body   []byte
	}
	calls := make(chan call, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		calls <- call{r.Header.Clone(), body}
	}))
	t.Cleanup(hook.Close)

	channel := w.call(t, "POST", "/api/v1/channels", w.a.tokens["admin"], map[string]any{"name": "ops hook",
		"kind": "webhook", "settings": map[string]any{"url": hook.URL + "/hook"}, "group_wait_seconds": 0}).
		must(t, http.StatusCreated)
	channelID, _ := strconv.ParseInt(channel.id(t), 10, 64)
	w.call(t, "POST", "/api/v1/alert-rules", w.a.tokens["editor"], map[string]any{"name": "cpu high", "kind": "threshold",
		"severity": "critical", "channels": []int64{channelID}, "summary": "{{.Host}} cpu at {{.Value}}",
		"settings": map[string]any{"metric": "cpu", "comparator": ">", "threshold": 90}}).must(t, http.StatusCreated)
	w.cpuSeries(t, w.a, "web-1", 97)
	w.evaluate(t)

	keys, err := secrets.Parse(dbtest.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := notify.Config{PublicURL: "https://iw.example.com", Owner: "delivery-test"} // as serve gives both
	sender, err := notify.NewSender(cfg, &checks.Guard{AllowPrivate: true}, keys, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	notifier := notify.New(cfg, db.NewSystem(w.d.Pool), sender, quiet, nil)
	if err := notifier.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(notifier.Stop)

	var got call
	select {
	case got = <-calls:
	case <-time.After(hangGuard):
		t.Fatal("the webhook was not called")
	}
	if want := "v1=" + notify.Sign(channel.str("signing_secret"), got.header.Get("X-Infrawatch-Timestamp"), got.body); got.header.Get("X-Infrawatch-Signature") != want {
		t.Errorf("signature %q, want %q", got.header.Get("X-Infrawatch-Signature"), want)
	}
	var msg notify.WebhookMessage
	if err := json.Unmarshal(got.body, &msg); err != nil {
		t.Fatalf("body %s: %v", got.body, err)
	}
	if msg.Status != "firing" || msg.Rule.Name != "cpu high" || len(msg.Alerts) != 1 {
		t.Fatalf("message %s", got.body)
	}
	a := msg.Alerts[0]
	if a.Severity != "critical" || a.Summary != "web-1 cpu at 97" || a.Value == nil || *a.Value != 97 ||
		a.Threshold == nil || *a.Threshold != 90 || a.Host == nil || a.Host.Name != "web-1" || a.URL == nil ||
		*a.URL != "https://iw.example.com/api/v1/alerts/"+strconv.FormatInt(a.ID, 10) {
		t.Errorf("alert in the message: %s", got.body)
	}
	if got.header.Get("X-Infrawatch-Id") != strconv.FormatInt(a.NotificationID, 10) {
		t.Errorf("X-Infrawatch-Id %q, want the notification %d", got.header.Get("X-Infrawatch-Id"), a.NotificationID)
	}
}
