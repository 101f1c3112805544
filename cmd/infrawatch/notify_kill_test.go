package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

// startNotifier runs `infrawatch serve --roles notifier` with a short lease, and waits until it is ready.
func startNotifier(t *testing.T, bin, url string) *exec.Cmd {
	t.Helper()
	port, _ := pgcluster.FreePort()
	return startServe(t, bin, url, "127.0.0.1:"+strconv.Itoa(port), "notifier", nil,
		"--allow-private-targets", "--notify-lease", "3s", "--notify-timeout", "2s")
}

// provider is a webhook receiver that counts every request by its idempotency key. While hold is set it
// takes a request (the provider accepted it) and keeps the answer back until the client goes away, so a
// test can kill the notifier after the provider accepted and before the notifier recorded anything.
type provider struct {
	srv *httptest.Server
	got chan string

	mu   sync.Mutex
	hold bool
	keys map[string]int
}

func newProvider(t *testing.T) *provider {
	t.Helper()
	p := &provider{got: make(chan string, 10000), keys: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: only then does the server notice a client that goes away.
		_, _ = io.Copy(io.Discard, r.Body)
		key := r.Header.Get("X-Infrawatch-Id")
		p.mu.Lock()
		p.keys[key]++
		hold := p.hold
		p.mu.Unlock()
		p.got <- key
		if hold {
			<-r.Context().Done() // the notifier was killed: its connection closed
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) setHold(hold bool) {
	p.mu.Lock()
	p.hold = hold
	p.mu.Unlock()
}

func (p *provider) next(t *testing.T) string {
	t.Helper()
	select {
	case k := <-p.got:
		return k
	case <-time.After(time.Minute):
		t.Fatal("the provider got no request within a minute")
		return ""
	}
}

func (p *provider) count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[key]
}

// notifyWorld is a tenant with webhook channels to a provider, on a real database.
type notifyWorld struct {
	d        *dbtest.DB
	tenant   uuid.UUID
	channels []int64
}

func newNotifyWorld(t *testing.T, flavor db.Flavor, url string, channels int) *notifyWorld {
	t.Helper()
	ctx := context.Background()
	w := &notifyWorld{d: dbtest.New(t, flavor)}
	if err := w.d.Pool.QueryRow(ctx, `INSERT INTO app.tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id`).Scan(&w.tenant); err != nil {
		t.Fatal(err)
	}
	keys, _ := secrets.Parse(dbtest.SecretKey)
	for i := range channels {
		sealed, err := keys.SealJSON(map[string]string{"url": fmt.Sprintf("%s/hook/%d", url, i), "secret": "0123456789abcdef"},
			secrets.For(secrets.ChannelsColumn, w.tenant))
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := w.d.Pool.QueryRow(ctx, `INSERT INTO app.channels (tenant_id, name, kind, settings, secrets, group_wait_seconds)
		    VALUES ($1, $2, 'webhook', '{"url": "********", "secret": "********"}', $3, 0) RETURNING id`,
			w.tenant, fmt.Sprintf("hook %d", i), sealed).Scan(&id); err != nil {
			t.Fatal(err)
		}
		w.channels = append(w.channels, id)
	}
	return w
}

// enqueue writes n notifications to each channel, as alerting does, and returns their ids.
func (w *notifyWorld) enqueue(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for _, ch := range w.channels {
		for i := range n {
			payload, _ := json.Marshal(map[string]any{"alert": map[string]any{"id": i + 1, "state": "firing", "summary": "x"},
				"rule": map[string]any{"id": ch*1000 + int64(i), "name": "r"}, "tenant": map[string]any{"slug": "acme"}})
			var id int64
			if err := w.d.Pool.QueryRow(context.Background(), `INSERT INTO app.notifications (tenant_id, channel_id, kind, payload)
			    VALUES ($1, $2, 'firing', $3) RETURNING id`, w.tenant, ch, payload).Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, strconv.FormatInt(id, 10))
		}
	}
	return ids
}

// waitAllSent waits until every notification is recorded as sent (a minute at most: a hang guard). The
// notifier is another process: the test reads the database until it shows them.
func (w *notifyWorld) waitAllSent(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var sent int
		if err := w.d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM app.notifications WHERE state = 'sent'`).Scan(&sent); err != nil {
			t.Fatal(err)
		}
		if sent == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notifications sent within a minute", sent, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A notifier killed (SIGKILL) after the providers accepted its messages and before it recorded them:
// once its leases run out another notifier sends each of them again — exactly once more, with the same
// idempotency key — and records them.
func TestKilledNotifierResendsOnceWithTheSameKey(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test builds and kills infrawatch serve on PostgreSQL")
	}
	bin := buildBinary(t)
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		p := newProvider(t)
		w := newNotifyWorld(t, flavor, p.srv.URL, 5)
		p.setHold(true)
		ids := w.enqueue(t, 1)
		first := startNotifier(t, bin, w.d.URL)
		for range ids {
			p.next(t) // every message accepted by the provider, none answered
		}
		if err := first.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = first.Wait()
		var sending int
		if err := w.d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM app.notifications WHERE state = 'sending'`).Scan(&sending); err != nil || sending != len(ids) {
			t.Fatalf("after the kill %d notifications are leased (%v), want %d: nothing was recorded", sending, err, len(ids))
		}

		p.setHold(false)
		startNotifier(t, bin, w.d.URL)
		w.waitAllSent(t, len(ids))
		for _, id := range ids {
			if n := p.count(id); n != 2 {
				t.Errorf("notification %s reached the provider %d times, want 2 (the send and one resend, same key)", id, n)
			}
		}
		var attempts int
		if err := w.d.Pool.QueryRow(context.Background(), `SELECT min(attempts) FROM app.notifications`).Scan(&attempts); err != nil || attempts != 2 {
			t.Errorf("attempts %d (%v), want 2", attempts, err)
		}
	})
}

// Two notifier processes on one outbox deliver every notification exactly once, counted at the provider.
func TestTwoNotifierProcessesDeliverEachOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test runs two infrawatch serve processes on PostgreSQL")
	}
	bin := buildBinary(t)
	p := newProvider(t)
	w := newNotifyWorld(t, db.FlavorPostgres, p.srv.URL, 20)
	ids := w.enqueue(t, 10)
	startNotifier(t, bin, w.d.URL)
	startNotifier(t, bin, w.d.URL)
	w.waitAllSent(t, len(ids))
	for _, id := range ids {
		if n := p.count(id); n != 1 {
			t.Errorf("notification %s reached the provider %d times, want once", id, n)
		}
	}
}
