package notify

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

const hookSecret = "0123456789abcdef-hook"

func hook(url string) map[string]any { return map[string]any{"url": url, "secret": hookSecret} }

// A notification is claimed, sent with its id as the idempotency key, and recorded: sent, with its
// attempt (outcome, status, duration, key). On every flavor: delivery lives in app alone.
func TestNotifierDeliversAndRecords(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorld(t, flavor, Config{})
		fake := newFake(t, reply(200, "ok"))
		ch := w.channel(t, "webhook", hook(fake.srv.URL+"/hook"), 0, 0)
		id := w.enqueue(t, ch, "firing", payload(1, 7, "firing"))
		n := w.notifier(t, "n1")
		if r := recorded(t, n); r.Outcome != "sent" || !slices.Equal(r.IDs, []int64{id}) {
			t.Fatalf("recorded %+v", r)
		}
		req := fake.next(t)
		if req.Header.Get("X-Infrawatch-Id") != strconv.FormatInt(id, 10) {
			t.Errorf("X-Infrawatch-Id %q, want %d", req.Header.Get("X-Infrawatch-Id"), id)
		}
		if r := w.row(t, id); r.State != "sent" || r.Attempts != 1 || r.SentAt == nil || r.LastError != "" {
			t.Errorf("row %+v", r)
		}
		if a := w.attempts(t, id); len(a) != 1 || a[0].Outcome != "sent" || *a[0].StatusCode != 200 || a[0].MessageKey != id {
			t.Errorf("attempts %+v", a)
		}
	})
}

// Timeouts, refused connections, 5xx and 429 are retried after a backoff (429: after Retry-After);
// 400 and 401 fail at once with the provider's reason; a retried notification goes out later.
func TestRetryMatrix(t *testing.T) {
	w := newWorld(t, db.FlavorPostgres, Config{Timeout: 300 * time.Millisecond})
	hang := newFake(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	closed := newFake(t, reply(200, ""))
	closed.srv.Close() // nothing listens there any more: connection refused
	fails := newFake(t, reply(200, "ok")).then(reply(500, "upstream exploded"))
	limited := newFake(t, reply(429, "slow down", "Retry-After", "120"))
	bad := newFake(t, reply(400, `{"error":"unknown field alerts"}`))
	denied := newFake(t, reply(401, "invalid token"))
	cases := []struct {
		name       string
		url        string
		state      string
		status     *int
		errorPart  string
		retryAfter time.Duration
	}{
		{"timeout", hang.srv.URL, "pending", nil, "timeout", 0},
		{"connection refused", closed.srv.URL, "pending", nil, "connection refused", 0},
		{"500", fails.srv.URL, "pending", ptr(500), "status 500: upstream exploded", 0},
		{"429", limited.srv.URL, "pending", ptr(429), "status 429: slow down", 120 * time.Second},
		{"400", bad.srv.URL, "failed", ptr(400), `status 400: {"error":"unknown field alerts"}`, 0},
		{"401", denied.srv.URL, "failed", ptr(401), "status 401: invalid token", 0},
	}
	ids := make([]int64, len(cases))
	for i, c := range cases {
		ids[i] = w.enqueue(t, w.channel(t, "webhook", hook(c.url+"/hook"), 0, 0), "firing", payload(int64(i+1), int64(i+1), "firing"))
	}
	start := w.clock.Now()
	n := w.notifier(t, "n1")
	for range cases {
		recorded(t, n)
	}
	for i, c := range cases {
		r := w.row(t, ids[i])
		a := w.attempts(t, ids[i])
		if r.State != c.state || r.Attempts != 1 || !strings.Contains(r.LastError, c.errorPart) || len(a) != 1 ||
			(a[0].StatusCode == nil) != (c.status == nil) || (c.status != nil && *a[0].StatusCode != *c.status) {
			t.Errorf("%s: row %+v, attempts %+v", c.name, r, a)
			continue
		}
		wantOutcome := "retry"
		if c.state == "failed" {
			wantOutcome = "failed"
		}
		if a[0].Outcome != wantOutcome {
			t.Errorf("%s: outcome %s, want %s", c.name, a[0].Outcome, wantOutcome)
		}
		if c.state != "pending" {
			continue
		}
		wait := r.NextAttemptAt.Sub(start)
		switch {
		case c.retryAfter > 0 && wait != c.retryAfter:
			t.Errorf("%s: next attempt in %s, want Retry-After's %s", c.name, wait, c.retryAfter)
		case c.retryAfter == 0 && (wait < w.cfg.BackoffBase/2 || wait > w.cfg.BackoffBase):
			t.Errorf("%s: next attempt in %s, want the first backoff (%s to %s)", c.name, wait, w.cfg.BackoffBase/2, w.cfg.BackoffBase)
		}
	}
	// The provider that failed with 500 answers 200 next time: after the backoff, it is delivered.
	fails.next(t)
	w.clock.Advance(w.cfg.BackoffBase)
	for {
		r := recorded(t, n)
		if slices.Contains(r.IDs, ids[2]) {
			if r.Outcome != "sent" {
				t.Fatalf("the retry of the 500: %+v", r)
			}
			break
		}
	}
	if a := w.attempts(t, ids[2]); len(a) != 2 || a[1].Outcome != "sent" || a[1].Attempt != 2 {
		t.Errorf("attempts after the retry: %+v", a)
	}
	fails.next(t)
}

func ptr[T any](v T) *T { return &v }

// A notification older than the max age is not sent any more; one whose next attempt would come past
// it gives up with its last error. Both say so in the log.
func TestMaxAge(t *testing.T) {
	w := newWorld(t, db.FlavorPostgres, Config{MaxAge: time.Hour})
	fake := newFake(t, reply(503, "maintenance"))
	ch := w.channel(t, "webhook", hook(fake.srv.URL), 0, 0)
	old := w.enqueue(t, ch, "firing", payload(1, 1, "firing"))
	dying := w.enqueue(t, ch, "firing", payload(2, 2, "firing"))
	ctx := context.Background()
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.notifications SET created_at = $2, last_error = 'status 503: maintenance'
	                                  WHERE id = $1`, old, w.clock.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.notifications SET created_at = $2 WHERE id = $1`,
		dying, w.clock.Now().Add(-time.Hour+time.Second)); err != nil {
		t.Fatal(err)
	}
	n := w.notifier(t, "n1")
	recorded(t, n)
	recorded(t, n)
	if r := w.row(t, old); r.State != "failed" || r.LastError != "not delivered within 1h0m0s; last error: status 503: maintenance" {
		t.Errorf("old: %+v", r)
	}
	if r := w.row(t, dying); r.State != "failed" || r.LastError != "gave up after 1h0m0s: status 503: maintenance" {
		t.Errorf("dying: %+v", r)
	}
	fake.next(t) // the dying one was tried once
	fake.none(t)
}

// Alerts of one rule that fire within group_wait go out as one message per channel; a later one waits
// group_interval after that message; another rule is its own group.
func TestGrouping(t *testing.T) {
	w := newWorld(t, db.FlavorPostgres, Config{})
	fake := newFake(t, reply(200, "ok"))
	ch := w.channel(t, "webhook", hook(fake.srv.URL), 30, 300)
	var ruleFive []int64
	for alert := int64(1); alert <= 3; alert++ {
		ruleFive = append(ruleFive, w.enqueue(t, ch, "firing", payload(5, alert, "firing")))
	}
	ruleSix := w.enqueue(t, ch, "firing", payload(6, 10, "firing"))
	n := w.notifier(t, "n1")
	idle(t, n, w.clock)
	fake.none(t) // within group_wait: nothing yet

	w.clock.Advance(31 * time.Second)
	got := map[string]WebhookMessage{}
	for range 2 {
		var body WebhookMessage
		req := fake.next(t)
		if err := jsonUnmarshal(req.Body, &body); err != nil {
			t.Fatal(err)
		}
		got[body.Rule.Name] = body
	}
	five, six := got["rule 5"], got["rule 6"]
	if !slices.Equal(five.NotificationIDs, ruleFive) || five.ID != ruleFive[0] || len(five.Alerts) != 3 || five.Title != "[FIRING:3] rule 5" {
		t.Errorf("rule 5's message: ids %v, key %d, %d alerts, %q", five.NotificationIDs, five.ID, len(five.Alerts), five.Title)
	}
	if !slices.Equal(six.NotificationIDs, []int64{ruleSix}) {
		t.Errorf("rule 6's message: %v", six.NotificationIDs)
	}
	recorded(t, n)
	recorded(t, n)

	// A later alert of rule 5, and its resolution of an earlier one, wait group_interval from the message.
	later := w.enqueue(t, ch, "firing", payload(5, 4, "firing"))
	resolved := w.enqueue(t, ch, "resolved", payload(5, 1, "resolved"))
	w.clock.Advance(31 * time.Second)
	idle(t, n, w.clock)
	fake.none(t)
	w.clock.Advance(270 * time.Second)
	var body WebhookMessage
	if err := jsonUnmarshal(fake.next(t).Body, &body); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(body.NotificationIDs, []int64{later, resolved}) || body.Title != "[FIRING:1, RESOLVED:1] rule 5" {
		t.Errorf("the later batch: ids %v, %q", body.NotificationIDs, body.Title)
	}
	recorded(t, n)
	for _, id := range append(ruleFive, ruleSix, later, resolved) {
		if r := w.row(t, id); r.State != "sent" {
			t.Errorf("%d: %+v", id, r)
		}
	}
}

// One channel that answers slowly holds up only itself: the others' messages go out meanwhile.
func TestSlowChannelDoesNotDelayOthers(t *testing.T) {
	w := newWorld(t, db.FlavorPostgres, Config{})
	release := make(chan struct{})
	slow := newFake(t, func(w http.ResponseWriter, r *http.Request) { <-release; w.WriteHeader(200) })
	fast := newFake(t, reply(200, "ok"))
	slowID := w.enqueue(t, w.channel(t, "webhook", hook(slow.srv.URL), 0, 0), "firing", payload(1, 1, "firing"))
	fastCh := w.channel(t, "webhook", hook(fast.srv.URL), 0, 0)
	var fastIDs []int64
	for alert := int64(2); alert <= 6; alert++ {
		fastIDs = append(fastIDs, w.enqueue(t, fastCh, "firing", payload(alert, alert, "firing")))
	}
	n := w.notifier(t, "n1")
	slow.next(t) // the slow channel's message is under way, and stays so
	var sent []int64
	for len(sent) < len(fastIDs) {
		r := recorded(t, n)
		if r.Outcome != "sent" || slices.Contains(r.IDs, slowID) {
			t.Fatalf("recorded %+v while the slow channel still answers", r)
		}
		sent = append(sent, r.IDs...)
	}
	slices.Sort(sent)
	if !slices.Equal(sent, fastIDs) {
		t.Errorf("sent %v, want %v", sent, fastIDs)
	}
	close(release)
	if r := recorded(t, n); !slices.Equal(r.IDs, []int64{slowID}) || r.Outcome != "sent" {
		t.Errorf("the slow one: %+v", r)
	}
}

// A notifier that died while sending leaves its notifications leased; when the lease runs out another
// notifier sends them again, with the same idempotency key, and the dead one's late record changes
// nothing.
func TestLeaseExpiryTakeover(t *testing.T) {
	w := newWorld(t, db.FlavorPostgres, Config{})
	fake := newFake(t, reply(200, "ok"))
	ch := w.channel(t, "webhook", hook(fake.srv.URL), 0, 0)
	id := w.enqueue(t, ch, "firing", payload(0, 1, "firing"))
	ctx := context.Background()
	// What a notifier leaves when it is killed after claiming: sending, leased to it, the lease running.
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.notifications SET state = 'sending', attempts = 1, lease_owner = 'dead',
	                                    lease_until = $2, next_attempt_at = $2 WHERE id = $1`, id, w.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	n := w.notifier(t, "heir")
	idle(t, n, w.clock)
	fake.none(t) // the lease still holds
	w.clock.Advance(time.Minute)
	if r := recorded(t, n); r.Outcome != "sent" {
		t.Fatalf("after the lease: %+v", r)
	}
	if req := fake.next(t); req.Header.Get("X-Infrawatch-Id") != strconv.FormatInt(id, 10) {
		t.Errorf("the resend carries X-Infrawatch-Id %q, want %d", req.Header.Get("X-Infrawatch-Id"), id)
	}
	if r := w.row(t, id); r.State != "sent" || r.Attempts != 2 {
		t.Errorf("row %+v", r)
	}
	var late int
	if err := w.d.Pool.QueryRow(ctx, `UPDATE app.notifications SET state = 'failed' WHERE id = $1 AND state = 'sending'
	                                  AND lease_owner = 'dead' RETURNING 1`, id).Scan(&late); err == nil {
		t.Error("the dead notifier's late record still matched its notification")
	}
}

// Two notifiers on one outbox deliver every notification exactly once, counted at the provider.
func TestTwoNotifiersDeliverEachOnce(t *testing.T) {
	w := newWorld(t, db.FlavorPostgres, Config{Concurrency: 4, Batch: 10})
	var count atomic.Int64
	seen := make(chan string, 1000)
	fake := newFake(t, func(rw http.ResponseWriter, r *http.Request) {
		count.Add(1)
		seen <- r.Header.Get("X-Infrawatch-Id")
		rw.WriteHeader(200)
	})
	var ids []int64
	for c := range 20 {
		ch := w.channel(t, "webhook", hook(fake.srv.URL+"/"+strconv.Itoa(c)), 0, 0)
		for a := range 10 {
			ids = append(ids, w.enqueue(t, ch, "firing", payload(0, int64(c*100+a+1), "firing")))
		}
	}
	a, b := w.notifier(t, "a"), w.notifier(t, "b")
	delivered := map[int64]bool{}
	for len(delivered) < len(ids) {
		select {
		case r := <-a.testSignals.recorded:
			for _, id := range r.IDs {
				delivered[id] = true
			}
		case r := <-b.testSignals.recorded:
			for _, id := range r.IDs {
				delivered[id] = true
			}
		case <-time.After(time.Minute):
			t.Fatalf("%d of %d recorded within a minute", len(delivered), len(ids))
		}
	}
	if got := count.Load(); got != int64(len(ids)) {
		t.Errorf("the provider got %d requests for %d notifications", got, len(ids))
	}
	keys := map[string]int{}
	for range len(ids) {
		keys[<-seen]++
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("key %s sent %d times", k, n)
		}
	}
	var notSent int
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM app.notifications WHERE state <> 'sent'`).Scan(&notSent); err != nil || notSent != 0 {
		t.Errorf("%d notifications not sent (%v)", notSent, err)
	}
}

// A disabled channel's notifications fail, saying so, and nothing is sent.
func TestDisabledChannel(t *testing.T) {
	w := newWorld(t, db.FlavorPostgres, Config{})
	fake := newFake(t, reply(200, "ok"))
	ch := w.channel(t, "webhook", hook(fake.srv.URL), 0, 0)
	if _, err := w.d.Pool.Exec(context.Background(), `UPDATE app.channels SET enabled = false WHERE id = $1`, ch); err != nil {
		t.Fatal(err)
	}
	id := w.enqueue(t, ch, "firing", payload(1, 1, "firing"))
	n := w.notifier(t, "n1")
	recorded(t, n)
	if r := w.row(t, id); r.State != "failed" || r.LastError != "the channel is disabled" {
		t.Errorf("row %+v", r)
	}
	fake.none(t)
}

// Sealed secrets open with the deployment's key; without it, the notification waits (the key may come
// back) and says why, naming no secret.
func TestSealedSecretsOpenOnlyWithTheKey(t *testing.T) {
	w := newWorld(t, db.FlavorPostgres, Config{})
	fake := newFake(t, reply(200, "ok"))
	ch := w.channel(t, "webhook", hook(fake.srv.URL+"/secret-path"), 0, 0)
	var stored []byte
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT settings::text::bytea || coalesce(secrets, '') FROM app.channels WHERE id = $1`,
		ch).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), "secret-path") || strings.Contains(string(stored), hookSecret) {
		t.Fatalf("the channel's row holds its secrets in the clear: %q", stored)
	}
	other, _ := secrets.Parse("other:" + strings.Repeat("A", 43) + "=")
	w.sender.keys = other
	id := w.enqueue(t, ch, "firing", payload(1, 1, "firing"))
	n := w.notifier(t, "n1")
	recorded(t, n)
	if r := w.row(t, id); r.State != "pending" || !strings.Contains(r.LastError, "not configured") {
		t.Errorf("without the key: %+v", r)
	}
	fake.none(t)
}

// In SaaS mode a webhook to a loopback address is refused at connect, and the listener sees no
// connection at all; the refusal is final.
func TestSSRFGuardRefusesAtConnect(t *testing.T) {
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
	t.Cleanup(func() { ln.Close() })
	s := saasSender(t, Config{})
	for _, url := range []string{"http://" + ln.Addr().String() + "/hook", "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)} {
		out := send(t, s, "webhook", hook(url), sampleMessage())
		if out.Err == nil || out.Retry || !strings.Contains(out.ErrorText(), "loopback") {
			t.Errorf("%s: %+v %q", url, out, out.ErrorText())
		}
	}
	for _, kind := range []string{"slack", "teams", "discord"} {
		out := send(t, s, kind, map[string]string{"webhook_url": "https://" + ln.Addr().String() + "/x"}, sampleMessage())
		if out.Err == nil || out.Retry {
			t.Errorf("%s: %+v", kind, out)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the loopback listener accepted %d connections", n)
	}
}

// A test message goes out now and answers the provider's result; it is in the delivery log, and a
// tenant's test messages are limited. Another tenant's channel is not found.
func TestTestSend(t *testing.T) {
	w := newWorld(t, db.FlavorPostgres, Config{TestSendBurst: 2, TestSendEvery: time.Minute})
	fake := newFake(t, reply(200, "ok")).then(reply(200, "ok"), reply(403, "forbidden by the receiver"))
	ch := w.channel(t, "webhook", hook(fake.srv.URL), 0, 0)
	tester := NewTester(w.sys, w.sender)
	ctx := context.Background()
	res, err := tester.TestChannel(ctx, w.tenant, ch)
	if err != nil || res.Status != "sent" || *res.StatusCode != 200 || res.Error != "" {
		t.Fatalf("test send: %+v %v", res, err)
	}
	var body WebhookMessage
	if err := jsonUnmarshal(fake.next(t).Body, &body); err != nil || !body.Test || body.Alerts[0].ID != 0 || body.Title != "[TEST] [FIRING:1] infrawatch test" {
		t.Errorf("test body %+v %v", body, err)
	}
	if r := w.row(t, res.NotificationID); r.State != "sent" {
		t.Errorf("row %+v", r)
	}
	res, err = tester.TestChannel(ctx, w.tenant, ch)
	if err != nil || res.Status != "failed" || *res.StatusCode != 403 || res.Error != "status 403: forbidden by the receiver" {
		t.Errorf("refused test: %+v %v", res, err)
	}
	fake.next(t)
	if a := w.attempts(t, res.NotificationID); len(a) != 1 || a[0].Outcome != "failed" || *a[0].StatusCode != 403 {
		t.Errorf("attempts %+v", a)
	}
	if _, err := tester.TestChannel(ctx, w.tenant, ch); err == nil {
		t.Error("a third test message within the limit was sent")
	} else if tooSoon, ok := err.(*TooSoonError); !ok || tooSoon.RetryAfter <= 0 {
		t.Errorf("third: %v", err)
	}
	other := w.newTenant(t, "other")
	if _, err := NewTester(w.sys, w.sender).TestChannel(ctx, other, ch); !isNotFound(err) {
		t.Errorf("another tenant's channel: %v, want not found", err)
	}
}

// The database's list of channel kinds is the registry's.
func TestDatabaseAllowsExactlyTheRegisteredKinds(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	var def string
	if err := d.Pool.QueryRow(context.Background(), `SELECT pg_get_constraintdef(oid) FROM pg_constraint
	                                                 WHERE conname = 'channels_kind_check'`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, part := range strings.Split(def, "'")[1:] {
		if name := strings.TrimSpace(part); name != "" && !strings.ContainsAny(name, "(),:[]") {
			got = append(got, name)
		}
	}
	want := Names()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("app.channels allows %v, the registry has %v", got, want)
	}
}
