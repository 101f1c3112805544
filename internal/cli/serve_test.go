package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// A short operator token could be guessed; serve refuses to start with one and says why, before it
// touches the database.
func TestServeRefusesAShortOperatorToken(t *testing.T) {
	code, _, stderr := run(t, "serve", "--database-url", "postgres://nobody@127.0.0.1:1/none", "--operator-token", "only-24-characters-long!")
	if code != 1 || !strings.Contains(stderr, "--operator-token must be at least 32 characters") {
		t.Fatalf("serve with a 24-character operator token: exit %d, %q; want 1 and a message asking for 32 characters", code, stderr)
	}
}

// lockedBuffer is a log destination the server writes from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// --roles decides what a process runs: every process serves health and metrics and reloads the signing
// keys; the samples writer runs for the roles that write samples (the push routes of ingest, the
// poller's results, a check run now through the API); the stream hub for api, the poller engine for
// poller, maintenance and the BI enforcer for scheduler, the notifier for notifier, the alert engine
// for alerter, the trap receiver for traps when --snmp-trap-listen is set. The push routes answer with
// ingest only.
func TestServeRunsTheWorkersOfItsRoles(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trapAddr := udp.LocalAddr().String()
	udp.Close()
	for _, tc := range []struct {
		roles, workers string
		push           int    // status of a push without a credential
		trapListen     string // --snmp-trap-listen
	}{
		{"all", "replica heartbeat,samples writer,signing key reloader,stream hub,poller,maintenance,bi enforcer,sla gap settler,report worker,notifier,alerter", http.StatusUnauthorized, ""},
		{"api", "replica heartbeat,samples writer,signing key reloader,stream hub", http.StatusNotFound, ""},
		{"ingest", "replica heartbeat,samples writer,signing key reloader", http.StatusUnauthorized, ""},
		{"poller", "replica heartbeat,samples writer,signing key reloader,poller", http.StatusNotFound, ""},
		{"scheduler,alerter,notifier", "replica heartbeat,signing key reloader,maintenance,bi enforcer,sla gap settler,report worker,notifier,alerter", http.StatusNotFound, ""},
		{"alerter", "replica heartbeat,signing key reloader,alerter", http.StatusNotFound, ""},
		{"traps", "replica heartbeat,samples writer,signing key reloader,trap receiver", http.StatusNotFound, "udp:" + trapAddr},
		{"traps", "replica heartbeat,signing key reloader", http.StatusNotFound, ""},
	} {
		t.Run(tc.roles+tc.trapListen, func(t *testing.T) {
			cfg := defaultServeConfig()
			cfg.Listen, cfg.Roles, cfg.DB.URL, cfg.Secrets.Keys = "127.0.0.1:0", parseRoles(tc.roles), d.URL, dbtest.SecretKey
			cfg.Traps.Listen = tc.trapListen
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			logs := &lockedBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addr, done := make(chan string, 1), make(chan error, 1)
			go func() {
				done <- serve(ctx, cfg, d.Pool, slog.New(slog.NewJSONHandler(logs, nil)), func(a string) { addr <- a })
			}()
			var base string
			select {
			case a := <-addr:
				base = "http://" + a
			case err := <-done:
				t.Fatalf("serve returned before serving: %v", err)
			case <-time.After(time.Minute):
				t.Fatal("serve did not listen within a minute")
			}
			for _, probe := range []struct {
				method, path string
				want         int
			}{{"GET", "/healthz", http.StatusOK}, {"GET", "/metrics", http.StatusOK}, {"POST", "/api/v1/ingest", tc.push}} {
				req, _ := http.NewRequest(probe.method, base+probe.path, strings.NewReader("{}"))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != probe.want {
					t.Errorf("%s %s = %d, want %d", probe.method, probe.path, resp.StatusCode, probe.want)
				}
			}
			// The scheduler's processes export the storage jobs on /metrics.
			resp, err := http.Get(base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got, want := strings.Contains(string(metrics), `infrawatch_storage_job_state{job="retention"`), cfg.has("scheduler"); got != want {
				t.Errorf("/metrics has the storage jobs: %v, want %v", got, want)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("serve: %v", err)
			}

			var workers string
			var idle []string
			for _, line := range logs.lines() {
				switch line["msg"] {
				case "infrawatch serving":
					workers, _ = line["workers"].(string)
				case "role has nothing to run yet":
					idle = append(idle, fmt.Sprint(line["role"]))
				}
			}
			if workers != tc.workers {
				t.Errorf("workers %q, want %q", workers, tc.workers)
			}
			if len(idle) > 0 {
				t.Errorf("roles with nothing to run logged: %v; every role runs something", idle)
			}
		})
	}
}

// serve validates the BI address too, naming its flag.
func TestServeValidatesTheBIAddress(t *testing.T) {
	cfg := defaultServeConfig()
	cfg.Roles, cfg.DB.URL, cfg.Secrets.Keys = parseRoles("all"), "postgres://localhost/iw", dbtest.SecretKey
	cfg.BI.PublicDSN = "postgres://owner:secret@db.example.com/iw"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--bi-public-dsn") {
		t.Errorf("Validate = %v, want an error naming --bi-public-dsn", err)
	}
	cfg.BI.PublicDSN = "postgres://db.example.com/iw"
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}
