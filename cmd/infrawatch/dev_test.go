package main_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/pgcluster"
)

// buildBinary compiles the infrawatch command once for the test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "infrawatch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type devRun struct {
	cmd    *exec.Cmd
	banner string
	stderr *strings.Builder
}

// startDev runs `infrawatch dev` and waits for the banner it prints once it serves.
func startDev(t *testing.T, bin, dataDir, listen string) *devRun {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--data-dir", dataDir, "--listen", listen)
	cmd.Env = append(os.Environ(), "INFRAWATCH_LOG_LEVEL=warn")
	stdout, _ := cmd.StdoutPipe()
	r := &devRun{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var banner strings.Builder
	deadline := time.After(3 * time.Minute)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("infrawatch dev exited before serving:\n%s\n%s", banner.String(), r.stderr.String())
			}
			banner.WriteString(line + "\n")
			if strings.HasPrefix(line, "Ctrl-C stops") {
				r.banner = banner.String()
				go func() {
					for range lines {
					}
				}()
				return r
			}
		case <-deadline:
			t.Fatalf("infrawatch dev did not serve within 3 minutes:\n%s\n%s", banner.String(), r.stderr.String())
		}
	}
}

// stop sends Ctrl-C and waits for a clean exit.
func (r *devRun) stop(t *testing.T) {
	t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("infrawatch dev exited with %v after Ctrl-C:\n%s", err, r.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("infrawatch dev did not stop within a minute of Ctrl-C")
	}
}

var demoTenant = regexp.MustCompile(`demo tenant:\s+(\S+)`)

func TestDevStartsOnAnEmptyDataDirAndReusesIt(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test starts infrawatch dev and its PostgreSQL")
	}
	bin := buildBinary(t)
	// The PostgreSQL server runs as the postgres user when the tests run as root: it must reach the directory.
	parent, err := os.MkdirTemp("", "infrawatch-dev-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	_ = os.Chmod(parent, 0o755)
	dataDir := filepath.Join(parent, "data")

	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)

	first := startDev(t, bin, dataDir, listen)
	assertReady(t, "http://"+listen+"/readyz")
	assertConsole(t, "http://"+listen+"/")
	if !strings.Contains(first.banner, "console:      http://"+listen+"/") {
		t.Errorf("the banner does not say where the console is:\n%s", first.banner)
	}
	m := demoTenant.FindStringSubmatch(first.banner)
	if m == nil {
		t.Fatalf("banner names no demo tenant:\n%s", first.banner)
	}
	tenantID := m[1]
	// The built-in agent pushes this machine's metrics as the demo tenant.
	dbURL := regexp.MustCompile(`database:\s+(\S+)`).FindStringSubmatch(first.banner)
	if dbURL == nil {
		t.Fatalf("banner names no database:\n%s", first.banner)
	}
	conn, err := pgx.Connect(context.Background(), dbURL[1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM ts.samples WHERE tenant_id = $1`, tenantID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sample from the built-in agent within a minute:\n%s", first.stderr.String())
		}
	}
	// The demo checks of this machine (HTTP to the server itself, ICMP to 127.0.0.1, TCP to PostgreSQL) run
	// and are up.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		var kinds []string
		if err := conn.QueryRow(context.Background(), `SELECT coalesce(array_agg(kind ORDER BY kind), '{}') FROM app.checks
		    WHERE tenant_id = $1 AND status = 'up'`, tenantID).Scan(&kinds); err != nil {
			t.Fatal(err)
		}
		if strings.Join(kinds, ",") == "http,icmp,tcp" {
			break
		}
		if time.Now().After(deadline) {
			rows, _ := conn.Query(context.Background(), `SELECT kind, coalesce(status, 'never ran'), status_reason FROM app.checks WHERE tenant_id = $1`, tenantID)
			states, _ := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Kind, Status, Reason string }])
			t.Fatalf("demo checks up within a minute: %v, want http, icmp and tcp; all: %+v\n%s", kinds, states, first.stderr.String())
		}
	}
	conn.Close(context.Background())
	first.stop(t)
	if p := pgcluster.RunningPort(filepath.Join(dataDir, "postgres")); p != 0 {
		t.Fatalf("PostgreSQL still runs on port %d after Ctrl-C", p)
	}

	second := startDev(t, bin, dataDir, listen)
	assertReady(t, "http://"+listen+"/readyz")
	if m := demoTenant.FindStringSubmatch(second.banner); m == nil || m[1] != tenantID {
		t.Fatalf("second run did not reuse the data: demo tenant %v, want %s\n%s", m, tenantID, second.banner)
	}
	second.stop(t)
}

func assertReady(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"ready"`) {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, body)
	}
}

// assertConsole checks that url answers the web console, under its Content-Security-Policy.
func assertConsole(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" ||
		!strings.Contains(string(body), `src="/assets/js/main.js"`) {
		t.Fatalf("GET %s = %d (CSP %q), want the console:\n%s", url, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
	}
}
