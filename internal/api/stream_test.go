package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/events"
	"github.com/infrawatch/infrawatch/internal/stream"
)

// The live stream of the test world: a short heartbeat, so that the heartbeat test sees one soon, and few
// streams per tenant, so that the limit is reached cheaply.
const (
	testHeartbeat        = 200 * time.Millisecond
	testStreamsPerTenant = 4
)

// streamGuard bounds every wait for an event: a failure guard, never an expected duration.
const streamGuard = 20 * time.Second

// sseEvent is one message of a stream; a comment line (the heartbeat) comes as Comment alone.
type sseEvent struct {
	ID, Event, Data, Retry, Comment string
}

// sseClient reads a stream in the background.
type sseClient struct {
	cancel context.CancelFunc
	ch     chan sseEvent
}

// openStream opens GET /api/v1/stream?query and fails the test unless it answers 200 text/event-stream.
func (w *world) openStream(t *testing.T, credential, query string, header http.Header) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", w.srv.URL+"/api/v1/stream?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		var body strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET /api/v1/stream?%s: %d %s: %s", query, resp.StatusCode, resp.Header.Get("Content-Type"), body.String())
	}
	c := &sseClient{cancel: cancel, ch: make(chan sseEvent, 1024)}
	go func() {
		defer close(c.ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			field, value, _ := strings.Cut(line, ": ")
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					c.ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				c.ch <- sseEvent{Comment: strings.TrimSpace(line[1:])}
			case field == "id":
				ev.ID = value
			case field == "event":
				ev.Event = value
			case field == "data":
				ev.Data = value
			case field == "retry":
				ev.Retry = value
			}
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) close() { c.cancel() }

// nextRaw returns the next message or comment; ok is false when the stream ended.
func (c *sseClient) nextRaw(t *testing.T) (sseEvent, bool) {
	t.Helper()
	select {
	case ev, ok := <-c.ch:
		return ev, ok
	case <-time.After(streamGuard):
		t.Fatal("no event arrived on the stream")
	}
	return sseEvent{}, false
}

// next returns the next event, skipping heartbeats and the retry hint.
func (c *sseClient) next(t *testing.T) sseEvent {
	t.Helper()
	for {
		ev, ok := c.nextRaw(t)
		if !ok {
			t.Fatal("the stream ended")
		}
		if ev.Event != "" {
			return ev
		}
	}
}

// nextStatus returns the next check.status event, skipping check.result events.
func (c *sseClient) nextStatus(t *testing.T) sseEvent {
	t.Helper()
	for {
		if ev := c.next(t); ev.Event != "check.result" {
			return ev
		}
	}
}

// waitEnd waits for the server to end the stream, skipping whatever comes before.
func (c *sseClient) waitEnd(t *testing.T) {
	t.Helper()
	for {
		if _, ok := c.nextRaw(t); !ok {
			return
		}
	}
}

func decodeData[T any](t *testing.T, ev sseEvent) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(ev.Data), &v); err != nil {
		t.Fatalf("event %s: data %q: %v", ev.Event, ev.Data, err)
	}
	return v
}

type statusData struct {
	ID      int64  `json:"id"`
	CheckID int64  `json:"check_id"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Time    int64  `json:"time"`
}

type resultData struct {
	CheckID   int64    `json:"check_id"`
	Status    string   `json:"status"`
	Reason    string   `json:"reason"`
	LatencyMS *float64 `json:"latency_ms"`
	Time      int64    `json:"time"`
}

// mustStatus fails unless ev is the check.status event with id and check.
func mustStatus(t *testing.T, ev sseEvent, id, check int64) statusData {
	t.Helper()
	if ev.Event != "check.status" || ev.ID != strconv.FormatInt(id, 10) {
		t.Fatalf("got %s id %q (%s), want check.status id %d", ev.Event, ev.ID, ev.Data, id)
	}
	d := decodeData[statusData](t, ev)
	if d.ID != id || d.CheckID != check {
		t.Fatalf("check.status data %s, want id %d of check %d", ev.Data, id, check)
	}
	return d
}

// waitHub waits until the world's hub listens, so that a stream opened next misses nothing.
func (w *world) waitHub(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), streamGuard)
	defer cancel()
	if err := w.hub.WaitListening(ctx); err != nil {
		t.Fatal(err)
	}
}

func (w *world) createCheck(t *testing.T, tw *tenantWorld, name string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(w.call(t, "POST", "/api/v1/checks", tw.tokens["owner"],
		map[string]any{"name": name, "kind": "tcp", "target": "127.0.0.1:1"}).must(t, http.StatusCreated).id(t), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// statusChange plays the poller: it records a status change of a check and publishes it, in one
// transaction as the owner; it answers the change's id.
func (w *world) statusChange(t *testing.T, tw *tenantWorld, check int64, status string) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	err := pgx.BeginFunc(ctx, w.d.Pool, func(tx pgx.Tx) error {
		now := time.Now()
		if err := tx.QueryRow(ctx, `INSERT INTO app.check_events (tenant_id, check_id, time, status, reason)
		                            VALUES ($1, $2, $3, $4, 'test') RETURNING id`, tw.id, check, now, status).Scan(&id); err != nil {
			return err
		}
		return events.Publish(ctx, dbsqlc.New(tx), events.Event{Type: events.CheckStatus, Tenant: tw.id, ID: id, CheckID: check,
			Status: status, Reason: "test", Time: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// checkResults plays the poller's results: one check.result event per check, in one transaction.
func (w *world) checkResults(t *testing.T, tw *tenantWorld, reason string, checks ...int64) {
	t.Helper()
	ctx := context.Background()
	evs := make([]events.Event, len(checks))
	for i, c := range checks {
		latency := 1.5
		evs[i] = events.Event{Type: events.CheckResult, Tenant: tw.id, CheckID: c, Status: "up", Reason: reason,
			LatencyMS: &latency, Time: time.Now()}
	}
	if err := pgx.BeginFunc(ctx, w.d.Pool, func(tx pgx.Tx) error { return events.Publish(ctx, dbsqlc.New(tx), evs...) }); err != nil {
		t.Fatal(err)
	}
}

func TestStreamDeliversCheckEvents(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		w.waitHub(t)
		web, dns := w.createCheck(t, w.a, "web"), w.createCheck(t, w.a, "dns")

		// Any role may stream: the viewer reads one check, the owner all of them.
		one := w.openStream(t, w.a.tokens["viewer"], fmt.Sprintf("check=%d", web), nil)
		all := w.openStream(t, w.a.tokens["owner"], "", nil)
		if ev, _ := one.nextRaw(t); ev.Retry == "" {
			t.Errorf("the stream does not start with a retry hint: %+v", ev)
		}
		down := w.statusChange(t, w.a, web, "down")
		w.checkResults(t, w.a, "refused", dns, web)
		up := w.statusChange(t, w.a, web, "up")
		other := w.statusChange(t, w.a, dns, "down")

		d := mustStatus(t, one.next(t), down, web)
		if d.Status != "down" || d.Reason != "test" || d.Time == 0 {
			t.Errorf("check.status data: %+v", d)
		}
		res := one.next(t)
		if res.Event != "check.result" || res.ID != "" {
			t.Fatalf("second event: %+v, want a check.result without id", res)
		}
		if r := decodeData[resultData](t, res); r.CheckID != web || r.Status != "up" || r.Reason != "refused" ||
			r.LatencyMS == nil || *r.LatencyMS != 1.5 || r.Time == 0 {
			t.Errorf("check.result data: %s", res.Data)
		}
		mustStatus(t, one.next(t), up, web)

		// The stream of all checks gets every event, in order.
		mustStatus(t, all.next(t), down, web)
		if ev := all.next(t); ev.Event != "check.result" || !strings.Contains(ev.Data, fmt.Sprintf(`"check_id":%d`, dns)) {
			t.Fatalf("all checks, second event: %+v", ev)
		}
		if ev := all.next(t); ev.Event != "check.result" || !strings.Contains(ev.Data, fmt.Sprintf(`"check_id":%d`, web)) {
			t.Fatalf("all checks, third event: %+v", ev)
		}
		mustStatus(t, all.next(t), up, web)
		mustStatus(t, all.next(t), other, dns)

		// The stream of one check never saw the other's change: a sentinel published after it comes next.
		sentinel := w.statusChange(t, w.a, web, "down")
		mustStatus(t, one.next(t), sentinel, web)
	})
}

// A tenant's stream never carries another tenant's events, whatever it asks for.
func TestStreamTenantIsolation(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		w.waitHub(t)
		aCheck, bCheck := w.createCheck(t, w.a, "a-web"), w.createCheck(t, w.b, "b-web")
		aSeries := w.pushSample(t, w.a, "a.metric", time.Now().Add(-time.Minute), 1)
		aOld := w.statusChange(t, w.a, aCheck, "down")

		// B naming A's ids: 404 naming the id, before any streaming.
		for _, q := range []string{fmt.Sprintf("check=%d", aCheck), fmt.Sprintf("check=%d&check=%d", bCheck, aCheck),
			fmt.Sprintf("series=%d", aSeries)} {
			got := w.call(t, "GET", "/api/v1/stream?"+q, w.b.tokens["owner"], nil)
			if got.status != http.StatusNotFound || !strings.Contains(got.str("detail"), "no ") ||
				(!strings.Contains(got.str("detail"), strconv.FormatInt(aCheck, 10)) && !strings.Contains(got.str("detail"), strconv.FormatInt(aSeries, 10))) {
				t.Errorf("B streaming %s: %d %s, want 404 naming A's id", q, got.status, got.raw)
			}
		}

		// B streaming everything, resuming from before A's change: it replays none of A's.
		b := w.openStream(t, w.b.tokens["owner"], "", http.Header{"Last-Event-Id": {strconv.FormatInt(aOld-1, 10)}})
		a := w.openStream(t, w.a.tokens["owner"], "", nil)
		aNew := w.statusChange(t, w.a, aCheck, "up")
		w.checkResults(t, w.a, "", aCheck)
		w.pushSample(t, w.a, "a.metric", time.Now(), 2)
		mustStatus(t, a.next(t), aNew, aCheck)
		if ev := a.next(t); ev.Event != "check.result" {
			t.Fatalf("A's second event: %+v", ev)
		}
		// A's events were committed before this one of B: B's first event must be its own.
		bNew := w.statusChange(t, w.b, bCheck, "down")
		mustStatus(t, b.next(t), bNew, bCheck)
	})
}

// A client that reconnects with Last-Event-ID (header or query) gets exactly the status changes it
// missed, then live events, without duplicates.
func TestStreamResumesFromLastEventID(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		w.waitHub(t)
		web, other := w.createCheck(t, w.a, "web"), w.createCheck(t, w.a, "other")
		q := fmt.Sprintf("check=%d", web)
		owner := w.a.tokens["owner"]

		first := w.openStream(t, owner, q, nil)
		e1, e2 := w.statusChange(t, w.a, web, "down"), w.statusChange(t, w.a, web, "up")
		mustStatus(t, first.next(t), e1, web)
		last := mustStatus(t, first.next(t), e2, web).ID
		first.close()

		// Missed while away: two changes of web, one of a check not subscribed, a result (not replayed).
		e3 := w.statusChange(t, w.a, web, "down")
		w.statusChange(t, w.a, other, "down")
		w.checkResults(t, w.a, "", web)
		e4 := w.statusChange(t, w.a, web, "up")

		// The result committed while away may still come live to a stream that just opened: it is
		// not replayed, and the client never had it. Status changes come exactly once.
		again := w.openStream(t, owner, q, http.Header{"Last-Event-Id": {strconv.FormatInt(last, 10)}})
		mustStatus(t, again.nextStatus(t), e3, web)
		mustStatus(t, again.nextStatus(t), e4, web)
		e5 := w.statusChange(t, w.a, web, "down")
		mustStatus(t, again.nextStatus(t), e5, web)

		byQuery := w.openStream(t, owner, q+"&last_event_id="+strconv.FormatInt(e3, 10), nil)
		mustStatus(t, byQuery.nextStatus(t), e4, web)
		mustStatus(t, byQuery.nextStatus(t), e5, web)
		e6 := w.statusChange(t, w.a, web, "up")
		mustStatus(t, byQuery.nextStatus(t), e6, web)
		mustStatus(t, again.nextStatus(t), e6, web)
	})
}

// Changes committed while a resuming stream starts land in its replay, its live events or both: the
// client sees each exactly once, in order.
func TestStreamResumeRacesWithLiveEvents(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		w.waitHub(t)
		web := w.createCheck(t, w.a, "web")
		start := w.statusChange(t, w.a, web, "up")
		for range 5 {
			const n = 30
			ids := make(chan int64, n)
			go func() {
				defer close(ids)
				for i := range n {
					ids <- w.statusChange(t, w.a, web, []string{"up", "down"}[i%2])
				}
			}()
			var want []int64
			want = append(want, <-ids) // at least one committed before the stream starts
			s := w.openStream(t, w.a.tokens["viewer"], fmt.Sprintf("check=%d&last_event_id=%d", web, start), nil)
			for id := range ids {
				want = append(want, id)
			}
			for _, id := range want {
				mustStatus(t, s.next(t), id, web)
			}
			sentinel := w.statusChange(t, w.a, web, "up")
			mustStatus(t, s.next(t), sentinel, web)
			s.close()
			start = sentinel
		}
	})
}

// Heartbeats arrive on a quiet stream.
func TestStreamHeartbeat(t *testing.T) {
	w := newWorld(t, testLimits)
	w.waitHub(t)
	s := w.openStream(t, w.a.tokens["viewer"], "", nil)
	for {
		ev, ok := s.nextRaw(t)
		if !ok {
			t.Fatal("the stream ended")
		}
		if ev.Comment == "ping" {
			return
		}
	}
}

// Events published in a transaction that rolls back never reach a stream.
func TestStreamRolledBackEventsNeverArrive(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		w.waitHub(t)
		web := w.createCheck(t, w.a, "web")
		s := w.openStream(t, w.a.tokens["owner"], "", nil)
		ctx := context.Background()
		tx, err := w.d.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO app.check_events (tenant_id, check_id, time, status)
		                            VALUES ($1, $2, now(), 'down') RETURNING id`, w.a.id, web).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if err := events.Publish(ctx, dbsqlc.New(tx), events.Event{Type: events.CheckStatus, Tenant: w.a.id, ID: id, CheckID: web, Status: "down"},
			events.Event{Type: events.CheckResult, Tenant: w.a.id, CheckID: web, Status: "down"}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		committed := w.statusChange(t, w.a, web, "up")
		mustStatus(t, s.next(t), committed, web)
	})
}

// After the hub's LISTEN connection is killed, a stream is told it may have missed events, gets the
// status changes committed meanwhile exactly once, and live events again.
func TestStreamSurvivesHubReconnect(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		w.waitHub(t)
		web := w.createCheck(t, w.a, "web")
		s := w.openStream(t, w.a.tokens["owner"], fmt.Sprintf("check=%d", web), nil)
		var killed int
		if err := w.d.Pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		                            WHERE application_name = $1 AND datname = current_database()`, stream.ApplicationName).Scan(&killed); err != nil || killed != 1 {
			t.Fatalf("terminated %d hub connections (err %v), want 1", killed, err)
		}
		during := w.statusChange(t, w.a, web, "down") // before or after the hub is back: either way it arrives once
		var sawResync, sawDuring bool
		for !sawResync || !sawDuring {
			ev := s.next(t)
			switch {
			case ev.Event == "resync":
				if sawResync {
					t.Fatalf("a second resync: %+v", ev)
				}
				sawResync = true
				if d := decodeData[map[string]string](t, ev); d["reason"] != "missed" {
					t.Errorf("resync data: %s", ev.Data)
				}
			case ev.Event == "check.status" && !sawDuring:
				mustStatus(t, ev, during, web)
				sawDuring = true
			default:
				t.Fatalf("unexpected event %+v", ev)
			}
		}
		after := w.statusChange(t, w.a, web, "up")
		mustStatus(t, s.next(t), after, web)
	})
}

// pushSample pushes one sample of metric for tw's host through the ingest API and answers its series id.
func (w *world) pushSample(t *testing.T, tw *tenantWorld, metric string, at time.Time, value float64) int64 {
	t.Helper()
	key := w.ingestKey(t, tw)
	w.call(t, "POST", "/api/v1/ingest", key, map[string]any{"host": map[string]any{"name": "web-1"},
		"metrics": []map[string]any{{"name": metric, "points": [][]any{{at.UnixMilli(), value}}}}}).must(t, http.StatusOK)
	var id int64
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT id FROM app.series WHERE tenant_id = $1 AND name = $2`,
		tw.id, metric).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

type samplesData struct {
	Series []struct {
		ID    int64    `json:"id"`
		Time  int64    `json:"time"`
		Value *float64 `json:"value"`
	} `json:"series"`
}

// A stream of series gets their values at once, then a samples message when the ingest writer stores
// more; series of the same tenant not subscribed to stay out.
func TestStreamSamples(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		w.waitHub(t)
		t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		cpu := w.pushSample(t, w.a, "cpu", t0, 1)
		mem := w.pushSample(t, w.a, "mem", t0, 10)
		w.pushSample(t, w.a, "disk", t0, 100)
		s := w.openStream(t, w.a.tokens["viewer"], fmt.Sprintf("series=%d&series=%d", cpu, mem), nil)

		first := decodeData[samplesData](t, mustEvent(t, s.next(t), "samples"))
		if len(first.Series) != 2 || first.Series[0].ID != cpu || *first.Series[0].Value != 1 || first.Series[0].Time != t0.UnixMilli() ||
			first.Series[1].ID != mem || *first.Series[1].Value != 10 {
			t.Fatalf("first samples message: %+v", first)
		}
		t1 := t0.Add(30 * time.Second)
		w.pushSample(t, w.a, "disk", t1, 101) // not subscribed: no message
		w.pushSample(t, w.a, "cpu", t1, 2)
		// A push that committed just before the stream subscribed may still bring mem in a later message;
		// disk never comes.
		for {
			msg := decodeData[samplesData](t, mustEvent(t, s.next(t), "samples"))
			var gotCPU bool
			for _, sr := range msg.Series {
				switch {
				case sr.ID == cpu && *sr.Value == 2 && sr.Time == t1.UnixMilli():
					gotCPU = true
				case sr.ID == cpu || sr.ID == mem:
				default:
					t.Fatalf("a samples message names series %d, which the stream did not subscribe to", sr.ID)
				}
			}
			if gotCPU {
				break
			}
		}
	})
}

func mustEvent(t *testing.T, ev sseEvent, name string) sseEvent {
	t.Helper()
	if ev.Event != name {
		t.Fatalf("got %s (%s), want %s", ev.Event, ev.Data, name)
	}
	return ev
}

// Requests the stream refuses, before streaming.
func TestStreamRefusals(t *testing.T) {
	w := newWorld(t, testLimits)
	w.waitHub(t)
	viewer := w.a.tokens["viewer"]
	many := strings.Repeat("check=1&", 1000) + "series=2"
	var tooMany strings.Builder
	for i := 1; i <= 1001; i++ {
		fmt.Fprintf(&tooMany, "check=%d&", i)
	}
	for _, c := range []struct {
		query, field string
		status       int
	}{
		{"check=abc", "check", http.StatusBadRequest},
		{"series=0", "series", http.StatusBadRequest},
		{"last_event_id=-1", "last_event_id", http.StatusBadRequest},
		{tooMany.String(), "check", http.StatusBadRequest},
		{many, "", http.StatusNotFound}, // 1,000 times the same id is one id; neither is A's
		{"check=999999", "", http.StatusNotFound},
	} {
		got := w.call(t, "GET", "/api/v1/stream?"+c.query, viewer, nil)
		if got.status != c.status || (c.field != "" && !strings.Contains(got.raw, `"field":"`+c.field+`"`)) {
			t.Errorf("%.40s…: %d %s, want %d naming %q", c.query, got.status, got.raw, c.status, c.field)
		}
	}
	if got := w.call(t, "GET", "/api/v1/stream", "", nil); got.status != http.StatusUnauthorized {
		t.Errorf("without a credential: %d", got.status)
	}
	key := w.ingestKey(t, w.a)
	if got := w.call(t, "GET", "/api/v1/stream", key, nil); got.status != http.StatusForbidden {
		t.Errorf("with an ingest key: %d, want 403", got.status)
	}

	// Streams per tenant: the next one is refused with Retry-After; the other tenant is unaffected.
	for range testStreamsPerTenant {
		w.openStream(t, viewer, "", nil)
	}
	got := w.call(t, "GET", "/api/v1/stream", viewer, nil)
	if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" {
		t.Errorf("stream %d of A: %d %s, want 429 with Retry-After", testStreamsPerTenant+1, got.status, got.raw)
	}
	w.openStream(t, w.b.tokens["viewer"], "", nil)
}

// A client that does not read does not hold up another client of the same tenant: the fast one gets
// every event while the slow one's buffers fill and it starts missing events.
func TestStreamSlowClientDoesNotBlockOthers(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		w.waitHub(t)
		// The slow client sends its request and never reads the answer.
		u, _ := url.Parse(w.srv.URL)
		slow, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { slow.Close() })
		_ = slow.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(slow, "GET /api/v1/stream HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", u.Host, w.a.tokens["viewer"])
		fast := w.openStream(t, w.a.tokens["viewer"], "", nil)

		reason := strings.Repeat("x", 6000) // large events fill the slow client's socket buffers sooner
		checks := make([]int64, 50)
		for round := 0; ; round++ {
			for i := range checks {
				checks[i] = int64(round*len(checks) + i + 1)
			}
			w.checkResults(t, w.a, reason, checks...)
			for _, c := range checks {
				if ev := mustEvent(t, fast.next(t), "check.result"); !strings.Contains(ev.Data, fmt.Sprintf(`"check_id":%d,`, c)) {
					t.Fatalf("the fast client got %.60s, want check %d", ev.Data, c)
				}
			}
			if dropped := metricValue(t, w, "infrawatch_stream_dropped_total"); dropped > 0 {
				t.Logf("the slow client missed %v events after %d rounds; the fast one got all %d", dropped, round+1, (round+1)*len(checks))
				return
			}
			if round == 1000 {
				t.Fatal("the slow client never missed an event: its buffers did not fill")
			}
		}
	})
}

var metricLine = regexp.MustCompile(`(?m)^(\S+) (\S+)$`)

func metricValue(t *testing.T, w *world, name string) float64 {
	t.Helper()
	got := w.call(t, "GET", "/metrics", "", nil).must(t, http.StatusOK)
	for _, m := range metricLine.FindAllStringSubmatch(got.raw, -1) {
		if m[1] == name {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A graceful shutdown ends open streams at once (they never go idle by themselves), and the client
// sees the stream end cleanly.
func TestStreamEndsOnShutdown(t *testing.T) {
	w := newWorld(t, testLimits)
	w.waitHub(t)
	srv := httptest.NewUnstartedServer(w.engine)
	srv.Config.RegisterOnShutdown(w.hub.Close)
	srv.Start()
	defer srv.Close()
	local := &world{srv: srv, hub: w.hub}
	s := local.openStream(t, w.a.tokens["viewer"], "", nil)
	if _, ok := s.nextRaw(t); !ok {
		t.Fatal("the stream ended before the shutdown")
	}
	ctx, cancel := context.WithTimeout(context.Background(), streamGuard)
	defer cancel()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	s.waitEnd(t)
}
