package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// recorder is an httptest server that keeps every accepted body (decompressed) in order; answer
// decides the status for each request number (0-based).
type recorder struct {
	mu     sync.Mutex
	n      int
	bodies [][]byte
	got    chan struct{}
	answer func(n int, body []byte) (int, string)
}

func newRecorder(t *testing.T, answer func(int, []byte) (int, string)) (*recorder, *httptest.Server) {
	r := &recorder{answer: answer, got: make(chan struct{}, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer key" || req.Header.Get("Content-Encoding") != "gzip" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(zr)
		r.mu.Lock()
		n := r.n
		r.n++
		code, retryAfter := r.answer(n, body)
		if code == http.StatusOK {
			r.bodies = append(r.bodies, body)
		}
		r.mu.Unlock()
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		if code == http.StatusOK {
			r.got <- struct{}{}
		}
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *recorder) accepted() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

func testAgent(t *testing.T, server, spoolDir string, max int64) *Agent {
	t.Helper()
	cfg := defaultConfig()
	cfg.Server, cfg.APIKey, cfg.Hostname, cfg.SpoolDir, cfg.Interval = server, "key", "test-host", spoolDir, time.Second
	cfg.Collectors = []string{"mem", "load"}
	if max > 0 {
		cfg.SpoolMaxBytes = max
	}
	a, err := New(cfg, Options{Backoff: Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond},
		ShutdownTimeout: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func ungzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func spooledBodies(t *testing.T, s *Spool) [][]byte {
	var out [][]byte
	for _, it := range s.Items() {
		b, err := s.Read(it)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ungzip(t, b))
	}
	return out
}

func drainWithin(t *testing.T, a *Agent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
}

func TestDeliveryRetries503UntilAccepted(t *testing.T) {
	rec, srv := newRecorder(t, func(n int, _ []byte) (int, string) {
		if n < 4 {
			return http.StatusServiceUnavailable, "0"
		}
		if n < 6 {
			return http.StatusTooManyRequests, "1"
		}
		return http.StatusOK, ""
	})
	a := testAgent(t, srv.URL, t.TempDir(), 0)
	for i := 0; i < 5; i++ {
		if err := a.CollectAndSpool(time.UnixMilli(int64(1_700_000_000_000 + i*10_000))); err != nil {
			t.Fatal(err)
		}
	}
	want := spooledBodies(t, a.Spool())
	drainWithin(t, a)
	got := rec.accepted()
	if len(got) != len(want) {
		t.Fatalf("accepted %d batches, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs or out of order", i)
		}
	}
	if n, _, _ := a.Spool().Stats(); n != 0 {
		t.Fatalf("%d batches left in spool", n)
	}
}

func TestDelivery400IsDroppedAndCounted(t *testing.T) {
	rec, srv := newRecorder(t, func(n int, _ []byte) (int, string) {
		if n == 0 {
			return http.StatusBadRequest, ""
		}
		return http.StatusOK, ""
	})
	a := testAgent(t, srv.URL, t.TempDir(), 0)
	for i := 0; i < 2; i++ {
		if err := a.CollectAndSpool(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	want := spooledBodies(t, a.Spool())
	drainWithin(t, a)
	if a.Rejected() != 1 {
		t.Fatalf("rejected = %d, want 1", a.Rejected())
	}
	if got := rec.accepted(); len(got) != 1 || !bytes.Equal(got[0], want[1]) {
		t.Fatalf("accepted %d batches, want only the second", len(got))
	}
	var p MetricsPayload
	_ = a.CollectAndSpool(time.Now())
	last := spooledBodies(t, a.Spool())
	if err := json.Unmarshal(last[len(last)-1], &p); err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Metrics {
		if m.Name == "agent.rejected_batches" && m.Points[0].Value != 1 {
			t.Fatalf("agent.rejected_batches = %v", m.Points[0].Value)
		}
	}
}

func TestSpoolSurvivesRestartAndIsSentFirst(t *testing.T) {
	dir := t.TempDir()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // connection refused from now on

	a1 := testAgent(t, downURL, dir, 0)
	ctx, cancel := context.WithCancel(context.Background())
	for i := 0; i < 3; i++ {
		if err := a1.CollectAndSpool(time.UnixMilli(int64(1_700_000_000_000 + i))); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() { done <- a1.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	old := spooledBodies(t, a1.Spool())
	if len(old) != 3 {
		t.Fatalf("spooled %d batches before restart, want 3", len(old))
	}

	rec, srv := newRecorder(t, func(int, []byte) (int, string) { return http.StatusOK, "" })
	a2 := testAgent(t, srv.URL, dir, 0)
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { done <- a2.Run(ctx2) }()
	for i := 0; i < 3; i++ {
		select {
		case <-rec.got:
		case <-time.After(20 * time.Second):
			t.Fatal("old batches were not delivered")
		}
	}
	cancel2()
	<-done
	got := rec.accepted()
	for i := range old {
		if !bytes.Equal(got[i], old[i]) {
			t.Fatalf("request %d is not old batch %d", i, i)
		}
	}
}

func TestSpoolLimitDropsOldestFirst(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 250)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := s.Put(KindMetrics, bytes.Repeat([]byte{byte('0' + i)}, 100)); err != nil {
			t.Fatal(err)
		}
	}
	items := s.Items()
	if len(items) != 2 {
		t.Fatalf("%d items kept, want 2", len(items))
	}
	for i, it := range items {
		b, _ := s.Read(it)
		if b[0] != byte('8'+i) {
			t.Fatalf("kept batch %c, want the newest", b[0])
		}
	}
	if _, _, dropped := s.Stats(); dropped != 8 {
		t.Fatalf("dropped = %d, want 8", dropped)
	}
	s2, err := OpenSpool(s.dir, 250)
	if err != nil {
		t.Fatal(err)
	}
	if len(s2.Items()) != 2 || s2.Items()[0].Seq != items[0].Seq {
		t.Fatal("reopened spool lost batches or order")
	}
	_ = s2.Put(KindLogs, []byte("x"))
	if got := s2.Items(); got[len(got)-1].Seq <= items[1].Seq {
		t.Fatal("sequence restarted after reopen")
	}
}

// waits is an Options.Sleep that returns at once and counts the waits; past limit it fails the wait,
// so that an agent retrying for ever ends the test instead of hanging it.
type waits struct {
	mu    sync.Mutex
	n     int
	limit int
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	if w.n > w.limit {
		return fmt.Errorf("still retrying after %d waits", w.limit)
	}
	return ctx.Err()
}

func (w *waits) count() int { w.mu.Lock(); defer w.mu.Unlock(); return w.n }

// agentWithWaits is testAgent whose waits between attempts are w's.
func agentWithWaits(t *testing.T, server string, w *waits) *Agent {
	t.Helper()
	a := testAgent(t, server, t.TempDir(), 0)
	a.opt.Sleep = w.sleep
	return a
}

// spoolRounds spools n rounds of metrics, each with its own timestamp, and returns their bodies.
func spoolRounds(t *testing.T, a *Agent, n int) [][]byte {
	t.Helper()
	for i := range n {
		if err := a.CollectAndSpool(time.UnixMilli(int64(1_700_000_000_000 + i*10_000))); err != nil {
			t.Fatal(err)
		}
	}
	return spooledBodies(t, a.Spool())
}

// A 4xx other than 401, 403, 404, 408 and 429 means the batch itself is refused: it is dropped and
// counted, and delivery goes on with the next batch.
func TestDelivery4xxDropsTheBatchAndGoesOn(t *testing.T) {
	for _, code := range []int{http.StatusUnprocessableEntity, http.StatusUnsupportedMediaType, http.StatusConflict} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			var first []byte
			rec, srv := newRecorder(t, func(n int, body []byte) (int, string) {
				if bytes.Equal(body, first) {
					return code, ""
				}
				return http.StatusOK, ""
			})
			w := &waits{limit: 100}
			a := agentWithWaits(t, srv.URL, w)
			want := spoolRounds(t, a, 2)
			first = want[0]
			drainWithin(t, a)
			if a.Rejected() != 1 || w.count() != 0 {
				t.Fatalf("rejected = %d after %d waits, want 1 after none", a.Rejected(), w.count())
			}
			if got := rec.accepted(); len(got) != 1 || !bytes.Equal(got[0], want[1]) {
				t.Fatalf("accepted %d batches, want only the second", len(got))
			}
			if n, _, _ := a.Spool().Stats(); n != 0 {
				t.Fatalf("%d batches left in the spool", n)
			}
		})
	}
}

// 401, 403 and 404 say the agent's key, tenant or server address is wrong, not the batch: the batch is
// kept and retried until the answer changes.
func TestDeliveryKeepsBatchesThroughCredentialErrors(t *testing.T) {
	codes := []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestTimeout}
	rec, srv := newRecorder(t, func(n int, _ []byte) (int, string) {
		if n < len(codes) {
			return codes[n], ""
		}
		return http.StatusOK, ""
	})
	w := &waits{limit: 100}
	a := agentWithWaits(t, srv.URL, w)
	want := spoolRounds(t, a, 1)
	drainWithin(t, a)
	if got := rec.accepted(); len(got) != 1 || !bytes.Equal(got[0], want[0]) || a.Rejected() != 0 || w.count() != len(codes) {
		t.Fatalf("accepted %d batches, rejected %d, after %d waits; want the batch delivered after %d waits", len(got), a.Rejected(),
			w.count(), len(codes))
	}
}

// A batch the server keeps failing with 500 (a poisoned batch) is given up after MaxAttempts, counted,
// and the batches behind it are delivered; 503 (the server is unavailable) is retried without limit.
func TestDeliveryGivesUpOnABatchTheServerKeepsFailing(t *testing.T) {
	var first []byte
	seen := map[string]int{}
	rec, srv := newRecorder(t, func(n int, body []byte) (int, string) {
		seen[string(body)]++
		switch {
		case bytes.Equal(body, first):
			return http.StatusInternalServerError, ""
		case seen[string(body)] <= 15:
			return http.StatusServiceUnavailable, "1"
		}
		return http.StatusOK, ""
	})
	w := &waits{limit: 100}
	a := agentWithWaits(t, srv.URL, w)
	want := spoolRounds(t, a, 2)
	first = want[0]
	drainWithin(t, a)
	if got := rec.accepted(); len(got) != 1 || !bytes.Equal(got[0], want[1]) {
		t.Fatalf("accepted %d batches, want only the second", len(got))
	}
	if a.Failed() != 1 || seen[string(first)] != DefaultMaxAttempts || a.Rejected() != 0 {
		t.Fatalf("failed = %d, rejected = %d, the poisoned batch was sent %d times; want failed 1 after %d attempts",
			a.Failed(), a.Rejected(), seen[string(first)], DefaultMaxAttempts)
	}
	if w.count() != DefaultMaxAttempts-1+15 {
		t.Errorf("%d waits, want %d", w.count(), DefaultMaxAttempts-1+15)
	}
	var p MetricsPayload
	if err := json.Unmarshal(a.collectJSON(t), &p); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range p.Metrics {
		if m.Name == "agent.failed_batches" {
			found = m.Points[0].Value == 1
		}
	}
	if !found {
		t.Errorf("agent.failed_batches is not 1 in the next round")
	}
}

// collectJSON is the JSON of one round of metrics, as it would be spooled.
func (a *Agent) collectJSON(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(a.Collect(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
