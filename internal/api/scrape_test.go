package api_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
)

// startNodeExporter runs Debian's prometheus-node-exporter on a loopback port until the test ends and
// returns its /metrics URL once it listens (it says so on stderr), or skips the test without it.
func startNodeExporter(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		t.Skip("SKIPPED: no prometheus-node-exporter on this machine (Debian: apt-get install prometheus-node-exporter; " +
			".ci/run installs it) — the prometheus check kind is then covered only by internal/checks' tests")
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--web.listen-address="+addr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	listening := make(chan struct{})
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			if !said {
				log.WriteString(sc.Text() + "\n")
			}
			if !said && strings.Contains(sc.Text(), "Listening on") {
				said = true
				close(listening)
			}
		}
	}()
	select {
	case <-listening:
	case <-time.After(30 * time.Second): // a hang guard
		t.Fatalf("prometheus-node-exporter did not listen within 30 s; it said:\n%s", log.String())
	}
	return "http://" + addr + "/metrics"
}

// A prometheus check scrapes a real node_exporter on loopback: its samples are stored under the check's
// host with the check's labels and are queryable like any series, beside up and scrape_duration_seconds;
// the deny list keeps what it names out. In SaaS mode the same target is refused when the check is saved.
func TestPrometheusCheckScrapesNodeExporter(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		target := startNodeExporter(t)
		w := newWorldOn(t, flavor, testLimits)
		editor := w.a.tokens["editor"]
		host := w.call(t, "POST", "/api/v1/hosts", editor, map[string]any{"name": "node-1"}).must(t, http.StatusCreated)
		check := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "node", "kind": "prometheus", "target": target,
			"host_id": host.json["id"], "settings": map[string]any{"deny": []string{"go_.*"}, "max_series": 20000}}).
			must(t, http.StatusCreated)
		id := check.id(t)
		run := w.call(t, "POST", "/api/v1/checks/"+id+"/run", editor, nil).must(t, http.StatusOK)
		if run.json["status"] != "up" {
			t.Fatalf("the scrape: %s", run.raw)
		}
		viewer := w.a.tokens["viewer"]
		latest := func(metric string) []any {
			t.Helper()
			got := w.call(t, "GET", "/api/v1/query/latest?metric="+metric+"&host=node-1&label.check_id="+id, viewer, nil).must(t, http.StatusOK)
			return got.json["series"].([]any)
		}
		load := latest("node_load1")
		if len(load) != 1 || load[0].(map[string]any)["labels"].(map[string]any)["check"] != "node" {
			t.Fatalf("node_load1: %v", load)
		}
		if up := latest("up"); len(up) != 1 || up[0].(map[string]any)["value"] != 1.0 {
			t.Errorf("up: %v", up)
		}
		if d := latest("scrape_duration_seconds"); len(d) != 1 || d[0].(map[string]any)["value"].(float64) <= 0 {
			t.Errorf("scrape_duration_seconds: %v", d)
		}
		if cpu := latest("node_cpu_seconds_total"); len(cpu) == 0 || cpu[0].(map[string]any)["labels"].(map[string]any)["mode"] == nil {
			t.Errorf("node_cpu_seconds_total: %v", cpu)
		}
		if goroutines := latest("go_goroutines"); len(goroutines) != 0 {
			t.Errorf("go_goroutines was denied but stored: %v", goroutines)
		}
		series := w.call(t, "GET", "/api/v1/series?name_prefix=node_&host=node-1&limit=500", viewer, nil).must(t, http.StatusOK)
		if n := len(series.json["items"].([]any)); n < 50 {
			t.Errorf("only %d node_ series are listed", n)
		}
		// Tenant B sees none of it.
		other := w.call(t, "GET", "/api/v1/series?name_prefix=node_", w.b.tokens["viewer"], nil).must(t, http.StatusOK)
		if n := len(other.json["items"].([]any)); n != 0 {
			t.Errorf("B lists %d node_ series", n)
		}

		w.guard.AllowPrivate = false
		refused := w.call(t, "POST", "/api/v1/checks", editor, map[string]any{"name": "node2", "kind": "prometheus", "target": target}).
			must(t, http.StatusBadRequest)
		if !strings.Contains(refused.raw, `"field":"target"`) || !strings.Contains(refused.raw, "loopback") {
			t.Errorf("SaaS mode: %s", refused.raw)
		}
	})
}
