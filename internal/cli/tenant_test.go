package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// `tenant limits` prints a tenant's limits and usage, sets those of --set with the API's names and
// ranges, refuses a bad value by name without setting anything, and records the change in the tenant's
// audit log.
func TestTenantLimitsCommandSetsAndPrints(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t, db.FlavorPostgres)
	if _, err := tenant.Create(ctx, d.System(), tenant.NewTenant{Name: "Acme", AdminEmail: "owner@acme.example"}); err != nil {
		t.Fatal(err)
	}
	report := func(args ...string) tenant.LimitsReport {
		t.Helper()
		code, out, errOut := run(t, append([]string{"tenant", "limits", "--database-url", d.URL, "--tenant", "acme"}, args...)...)
		if code != 0 {
			t.Fatalf("tenant limits %v: exit %d: %s", args, code, errOut)
		}
		var r tenant.LimitsReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		return r
	}
	r := report()
	if r.Slug != "acme" || r.Limits.IngestRate != 10000 || r.Limits.MaxStreams != nil || r.Usage.Series != 0 || r.Usage.Minute.IsZero() {
		t.Fatalf("the defaults: %+v", r)
	}
	r = report("--set", "ingest_rate=5000", "--set", "max_streams=3", "--set", "max_heavy_reads=2")
	if r.Limits.IngestRate != 5000 || r.Limits.MaxStreams == nil || *r.Limits.MaxStreams != 3 || *r.Limits.MaxHeavyReads != 2 ||
		r.Limits.IngestBurst != 200000 {
		t.Fatalf("after --set: %+v", r.Limits)
	}
	if again := report(); again.Limits.IngestRate != 5000 || again.Limits.MaxStreams == nil || *again.Limits.MaxStreams != 3 {
		t.Fatalf("read again: %+v", again.Limits)
	}

	code, _, errOut := run(t, "tenant", "limits", "--database-url", d.URL, "--tenant", "acme", "--set", "ingest_rate=7",
		"--set", "max_checks=-1", "--set", "colour=blue")
	if code != 1 || !strings.Contains(errOut, "--set max_checks: must be from 0 to 1,000,000") || !strings.Contains(errOut, "--set colour: unknown limit") {
		t.Fatalf("bad values: exit %d: %s", code, errOut)
	}
	if r := report(); r.Limits.IngestRate != 5000 {
		t.Errorf("a refused --set changed ingest_rate to %d", r.Limits.IngestRate)
	}
	if code, _, errOut := run(t, "tenant", "limits", "--database-url", d.URL, "--tenant", "nope"); code != 1 || !strings.Contains(errOut, `no tenant has the slug "nope"`) {
		t.Errorf("unknown slug: exit %d: %s", code, errOut)
	}
	if code, _, _ := run(t, "tenant", "limits", "--database-url", d.URL); code != 2 {
		t.Errorf("without --tenant: exit %d, want 2 (usage)", code)
	}
	var entries int
	if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM app.audit_log WHERE action = 'tenant.limits' AND actor_kind = 'system'`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if entries != 1 {
		t.Errorf("%d audit entries of the command line's changes, want 1", entries)
	}
}
