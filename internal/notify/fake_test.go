package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

// captured is one request a fake provider received.
type captured struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// json decodes the request's body.
func (c captured) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.Body, &m); err != nil {
		t.Fatalf("%s %s: the body is not a JSON object: %v: %s", c.Method, c.Path, err, c.Body)
	}
	return m
}

// scripted is how a fake provider answers one request.
type scripted func(w http.ResponseWriter, r *http.Request)

// reply answers status with a body and headers (name, value pairs).
func reply(status int, body string, headers ...string) scripted {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// fakeProvider is a local HTTP server standing in for a provider: it records every request and answers
// from a script, then with its default scripted.
type fakeProvider struct {
	srv  *httptest.Server
	reqs chan captured

	mu     sync.Mutex
	script []scripted
	dflt   scripted
}

func newFake(t *testing.T, dflt scripted) *fakeProvider {
	t.Helper()
	return startFake(t, dflt, false)
}

// newTLSFake is a fake provider on https (the test certificate of net/http/httptest, which testSender
// trusts), for the kinds that take https URLs only.
func newTLSFake(t *testing.T, dflt scripted) *fakeProvider {
	t.Helper()
	return startFake(t, dflt, true)
}

func startFake(t *testing.T, dflt scripted, tls bool) *fakeProvider {
	f := &fakeProvider{reqs: make(chan captured, 10000), dflt: dflt}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.reqs <- captured{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
		f.mu.Lock()
		a := f.dflt
		if len(f.script) > 0 {
			a, f.script = f.script[0], f.script[1:]
		}
		f.mu.Unlock()
		a(w, r)
	}))
	if tls {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(f.srv.Close)
	return f
}

// then scripts the next answers.
func (f *fakeProvider) then(answers ...scripted) *fakeProvider {
	f.mu.Lock()
	f.script = append(f.script, answers...)
	f.mu.Unlock()
	return f
}

// next waits for the next request (a minute at most: a hang guard).
func (f *fakeProvider) next(t *testing.T) captured {
	t.Helper()
	select {
	case c := <-f.reqs:
		return c
	case <-time.After(time.Minute):
		t.Fatal("the fake provider got no request within a minute")
		return captured{}
	}
}

// none fails the test when a request arrived that the test did not take.
func (f *fakeProvider) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-f.reqs:
		t.Fatalf("unexpected request %s %s: %s", c.Method, c.Path, c.Body)
	default:
	}
}

// fakeClock is a clock the test moves by hand: After fires once Advance passes its time, and every call
// of After is signalled, so a test knows the code under test waits.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	waiting chan time.Duration
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(start time.Time) *fakeClock {
	return &fakeClock{now: start, waiting: make(chan time.Duration, 10000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) DatabaseNow() *time.Time {
	now := c.Now()
	return &now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	select {
	case c.waiting <- d:
	default:
	}
	return ch
}

// Advance moves the clock on by d and fires the waits that end by then.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// catchUp moves the clock on to t if it is behind it, firing the waits that end by then.
func (c *fakeClock) catchUp(t time.Time) {
	if d := t.Sub(c.Now()); d > 0 {
		c.Advance(d)
	}
}

// waitFor waits until the code under test waits d on the clock (a minute at most: a hang guard).
func (c *fakeClock) waitFor(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case got := <-c.waiting:
			if got == d {
				return
			}
		case <-deadline:
			t.Fatalf("nothing waited %s on the clock within a minute", d)
		}
	}
}

var testStart = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func testKeys(t *testing.T) *secrets.Keyring {
	t.Helper()
	k, err := secrets.Parse("test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testSender is a sender whose providers are the given fakes, allowing loopback (the fakes), on a fake
// clock.
func testSender(t *testing.T, cfg Config) (*Sender, *fakeClock) {
	t.Helper()
	if cfg.PublicURL == "" {
		cfg.PublicURL = "https://iw.example.com"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	s, err := NewSender(cfg, &checks.Guard{AllowPrivate: true}, testKeys(t), quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(testStart)
	s.setClock(clock)
	// Trust the certificate of net/http/httptest's TLS servers, as the fakes of https-only kinds use it.
	tlsFake := httptest.NewTLSServer(http.NotFoundHandler())
	pool := x509.NewCertPool()
	pool.AddCert(tlsFake.Certificate())
	tlsFake.Close()
	for _, c := range []*http.Client{s.env.userHTTP, s.env.apiHTTP} {
		c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return s, clock
}

// send sends m to a channel of kind with settings (the secrets in them, unsealed).
func send(t *testing.T, s *Sender, kind string, settings any, m *Message) Outcome {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	if ps := Validate(kind, raw); len(ps) > 0 {
		t.Fatalf("settings %s of %s: %v", raw, kind, ps)
	}
	return s.Send(context.Background(), SealedChannel{ID: 42, Kind: kind, Name: "ops", Settings: raw}, m)
}

// sampleMessage is a group of two alerts, one firing and one resolved, whose texts hold what every
// kind must escape: <, >, &, quotes and Markdown.
func sampleMessage() *Message {
	started := testStart.Add(-12 * time.Minute)
	resolved := testStart.Add(-2 * time.Minute)
	value, threshold, cmp := 93.5, 90.0, ">"
	tenant := PayloadTenant{ID: "6f1c0d1e-0000-4000-8000-000000000001", Slug: "acme", Name: "Acme & Co"}
	rule := PayloadRule{ID: 3, Name: "CPU <high> & *hot*", Kind: "threshold"}
	firing := Payload{Rule: rule, Tenant: tenant, Alert: PayloadAlert{ID: 7, Fingerprint: "fp-7", State: "firing",
		Severity: "critical", StartedAt: started, Summary: `CPU > 90% & <rising> *bold* _it_ [x](y) @everyone "q"`,
		Description: "Check `top` on the host", Labels: map[string]string{"env": "prod"}, Value: &value,
		Threshold: &threshold, Comparator: &cmp, Host: &Ref{ID: 1, Name: "web-1 <prod>"}}}
	back := Payload{Rule: rule, Tenant: tenant, Alert: PayloadAlert{ID: 8, Fingerprint: "fp-8", State: "resolved",
		Severity: "warning", StartedAt: started, ResolvedAt: &resolved, Summary: "Disk & inode pressure",
		Host: &Ref{ID: 2, Name: "db-1"}}}
	return NewMessage([]Notification{{ID: 101, Kind: "firing", Payload: firing}, {ID: 102, Kind: "resolved", Payload: back}},
		"https://iw.example.com/", testStart)
}
