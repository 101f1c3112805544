package api_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/pgcluster"
)

// A real Prometheus (Debian package prometheus) scrapes itself and remote-writes to infrawatch with a
// tenant's ingest key; its own metrics must arrive as that tenant's series.
func TestPrometheusRemoteWritesIntoTheTenant(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("SKIPPED: no prometheus binary on this machine (Debian: apt-get install prometheus; .ci/run installs it) — " +
			"the remote write protocol is then covered only by the decoder tests")
	}
	w := newWorld(t, testLimits)
	key := w.ingestKey(t, w.a)
	dir := t.TempDir()
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prom-self
    static_configs:
      - targets: ['127.0.0.1:%d']
remote_write:
  - url: %s/api/v1/prom/write
    authorization:
      credentials: %s
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
`, port, w.srv.URL, key)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	ctx := context.Background()
	for {
		var n int
		var labels string
		err := w.d.Pool.QueryRow(ctx, `
			SELECT count(*), coalesce(max(r.labels::text), '') FROM ts.samples s JOIN app.series r ON r.id = s.series_id
			 WHERE r.tenant_id = $1 AND r.name = 'prometheus_build_info'`, w.a.id).Scan(&n, &labels)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			if !strings.Contains(labels, `"job": "prom-self"`) || !strings.Contains(labels, fmt.Sprintf(`"instance": "127.0.0.1:%d"`, port)) {
				t.Fatalf("prometheus_build_info arrived with labels %s", labels)
			}
			break
		}
		select {
		case <-w.pushed: // Prometheus wrote again: look again
		case <-time.After(90 * time.Second): // a hang guard
			t.Fatalf("no remote write from Prometheus in 90 s; its log:\n%s", logs.String())
		}
	}
	var other int
	if err := w.d.Pool.QueryRow(ctx, `SELECT count(*) FROM app.series WHERE tenant_id <> $1`, w.a.id).Scan(&other); err != nil || other != 0 {
		t.Fatalf("%d series landed outside the key's tenant (%v)", other, err)
	}
}
