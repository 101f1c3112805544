package main_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// startServe runs `infrawatch serve --roles roles` against url on listen, with the extra flags and
// environment given, and waits until it is ready.
func startServe(t *testing.T, bin, url, listen, roles string, env []string, flags ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"serve", "--database-url", url, "--listen", listen, "--roles", roles, "--log-level", "error"}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "INFRAWATCH_SECRET_KEY="+dbtest.SecretKey), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 400 {
		if resp, err := http.Get("http://" + listen + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("infrawatch serve --roles %s did not become ready", roles)
	return nil
}

// The server is killed (SIGKILL) in the middle of a load. Every push that got a 2xx has all its samples
// in the database; retrying every push that did not completes the data, and nothing is stored twice.
func TestKilledServerLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test builds and kills infrawatch serve on PostgreSQL")
	}
	bin := buildBinary(t)
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		created, err := tenant.Create(ctx, d.System(), tenant.NewTenant{Name: "kill", AdminEmail: "k@kill.example", AdminPassword: "kill-password"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Pool.Exec(ctx, `UPDATE app.tenants SET ingest_rate = 10000000, ingest_burst = 10000000 WHERE id = $1`,
			created.TenantID); err != nil {
			t.Fatal(err)
		}
		key, prefix, hash, _ := auth.NewAPIKey()
		if _, err := d.Pool.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes) VALUES ($1, 'k', $2, $3, '{ingest}')`,
			created.TenantID, prefix, hash); err != nil {
			t.Fatal(err)
		}
		port, _ := pgcluster.FreePort()
		listen := "127.0.0.1:" + strconv.Itoa(port)
		server := startServe(t, bin, d.URL, listen, "api,ingest", nil)

		const agents, pushesPerAgent, pointsPerPush = 8, 400, 100
		base := time.Now().Add(-time.Hour).UnixMilli()
		body := func(agent, push int) []byte {
			var b bytes.Buffer
			fmt.Fprintf(&b, `{"host": {"name": "agent-%d"}, "metrics": [{"name": "kill.test", "points": [`, agent)
			for p := range pointsPerPush {
				if p > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "[%d, %d]", base+int64(push*pointsPerPush+p), push)
			}
			b.WriteString("]}]}")
			return b.Bytes()
		}
		send := func(agent, push int) int {
			req, _ := http.NewRequest("POST", "http://"+listen+"/api/v1/ingest", bytes.NewReader(body(agent, push)))
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}

		acked := make([][]bool, agents)
		var wg sync.WaitGroup
		var mu sync.Mutex
		sent := 0
		for a := range agents {
			acked[a] = make([]bool, pushesPerAgent)
			wg.Go(func() {
				for p := range pushesPerAgent {
					code := send(a, p)
					mu.Lock()
					sent++
					mu.Unlock()
					switch code {
					case http.StatusOK:
						acked[a][p] = true
					case 0:
						return // the server is gone
					default:
						t.Errorf("agent %d push %d: %d before the kill", a, p, code)
						return
					}
				}
			})
		}
		// Kill once a fair share of the load went through, while pushes are in flight.
		for {
			mu.Lock()
			n := sent
			mu.Unlock()
			if n >= agents*pushesPerAgent/4 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := server.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		wg.Wait()

		stored := func(agent, push int) int {
			var n int
			err := d.Pool.QueryRow(ctx, `
				SELECT count(*) FROM ts.samples s JOIN app.series r ON r.id = s.series_id
				 WHERE r.labels->>'host' = $1 AND s.time >= $2 AND s.time < $3`,
				fmt.Sprintf("agent-%d", agent), time.UnixMilli(base+int64(push*pointsPerPush)),
				time.UnixMilli(base+int64((push+1)*pointsPerPush))).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		ackedCount, unacked := 0, 0
		for a := range agents {
			for p := range pushesPerAgent {
				if acked[a][p] {
					ackedCount++
					if n := stored(a, p); n != pointsPerPush {
						t.Errorf("agent %d push %d was acknowledged but %d of its %d samples are stored", a, p, n, pointsPerPush)
					}
				} else {
					unacked++
				}
			}
		}
		if ackedCount == 0 || unacked == 0 {
			t.Fatalf("acknowledged %d, unacknowledged %d: the kill did not land mid-load", ackedCount, unacked)
		}
		t.Logf("killed after %d acknowledged pushes; %d were not acknowledged", ackedCount, unacked)

		// Restart and retry everything not acknowledged (a client would); then the data is complete, once.
		startServe(t, bin, d.URL, listen, "api,ingest", nil)
		for a := range agents {
			wg.Go(func() {
				for p := range pushesPerAgent {
					if !acked[a][p] {
						if code := send(a, p); code != http.StatusOK {
							t.Errorf("retry of agent %d push %d: %d", a, p, code)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		var total, distinct int
		if err := d.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (series_id, time)) FROM ts.samples`).Scan(&total, &distinct); err != nil {
			t.Fatal(err)
		}
		if want := agents * pushesPerAgent * pointsPerPush; total != want || distinct != want {
			t.Fatalf("after retries: %d samples (%d distinct), want %d exactly once", total, distinct, want)
		}
	})
}
