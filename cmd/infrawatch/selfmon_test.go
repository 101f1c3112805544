package main_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// A server pushes its own metrics into an operator tenant of its own deployment: the Go runtime's, the
// storage jobs' (which alert rules there can watch) and its count of those pushes, under the host it
// was given, as series of that tenant only.
func TestServerPushesItsOwnMetricsIntoAnOperatorTenant(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test builds and runs infrawatch serve on PostgreSQL")
	}
	bin := buildBinary(t)
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		ops, err := tenant.Create(ctx, d.System(), tenant.NewTenant{Name: "operators", AdminEmail: "ops@ops.example", AdminPassword: "ops-password"})
		if err != nil {
			t.Fatal(err)
		}
		key, prefix, hash, _ := auth.NewAPIKey()
		if _, err := d.Pool.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes) VALUES ($1, 'self', $2, $3, '{ingest}')`,
			ops.TenantID, prefix, hash); err != nil {
			t.Fatal(err)
		}
		port, _ := pgcluster.FreePort()
		listen := "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(bin, "serve", "--database-url", d.URL, "--listen", listen, "--roles", "api,ingest,scheduler",
			"--log-level", "error", "--self-monitoring-url", "http://"+listen, "--self-monitoring-interval", "1s",
			"--self-monitoring-host", "infrawatch-replica-1")
		cmd.Env = append(os.Environ(), "INFRAWATCH_SECRET_KEY="+dbtest.SecretKey, "INFRAWATCH_SELF_MONITORING_KEY="+key)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

		stored := func(metric string) bool {
			var n int
			if err := d.Pool.QueryRow(ctx, `
				SELECT count(*) FROM app.series s JOIN app.hosts h ON h.id = s.host_id
				 WHERE s.tenant_id = $1 AND h.name = 'infrawatch-replica-1' AND s.name = $2
				   AND EXISTS (SELECT FROM ts.samples x WHERE x.series_id = s.id)`, ops.TenantID, metric).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n > 0
		}
		for _, metric := range []string{"go_goroutines", "infrawatch_storage_job_consecutive_failures", "infrawatch_self_monitoring_pushes_total"} {
			waitFor(t, metric+" in the operator tenant", func() bool { return stored(metric) })
		}
		var elsewhere int
		if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM app.series WHERE tenant_id <> $1`, ops.TenantID).Scan(&elsewhere); err != nil {
			t.Fatal(err)
		}
		if elsewhere != 0 {
			t.Fatalf("%d series outside the operator tenant", elsewhere)
		}
	})
}
