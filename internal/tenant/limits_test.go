package tenant_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// fieldsOf names the refused fields with their messages, for the failure output and the checks.
func fieldsOf(errs []tenant.FieldError) map[string]string {
	out := map[string]string{}
	for _, e := range errs {
		out[e.Field] = e.Message
	}
	return out
}

// The API's JSON and the command line's key=value take the same names and ranges, and refuse each bad
// value by its name, saying what is allowed.
func TestParseLimitsRefusesEachBadFieldByName(t *testing.T) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(`{"ingest_rate": 5000, "max_streams": null, "max_heavy_reads": 2, "max_checks": 0,
		"ingest_burst": 0, "max_series": null, "max_labels_per_series": 1.5, "max_label_name_length": "64",
		"max_label_value_length": 99999, "bogus": 1}`), &body); err != nil {
		t.Fatal(err)
	}
	change, errs := tenant.ParseLimitsJSON(body)
	got := fieldsOf(errs)
	want := map[string]string{
		"ingest_burst":           "must be from 1 to 100,000,000, not 0",
		"max_series":             "must be a whole number from 1 to 100,000,000, not null",
		"max_labels_per_series":  "must be a whole number from 1 to 100",
		"max_label_name_length":  "must be a whole number from 1 to 1,024",
		"max_label_value_length": "must be from 1 to 2,048, not 99999",
		"bogus":                  "unknown limit; the limits are max_series, ",
	}
	if len(got) != len(want) {
		t.Errorf("refused %v, want exactly %v", got, want)
	}
	for field, msg := range want {
		if !strings.HasPrefix(got[field], msg) {
			t.Errorf("%s: %q, want it to start %q", field, got[field], msg)
		}
	}
	if len(change) != 4 || *change["ingest_rate"] != 5000 || change["max_streams"] != nil || *change["max_heavy_reads"] != 2 ||
		*change["max_checks"] != 0 {
		t.Errorf("accepted %v, want ingest_rate 5000, max_streams null, max_heavy_reads 2, max_checks 0", change)
	}
	if _, ok := change["max_streams"]; !ok {
		t.Error("max_streams: null was dropped; it must set the limit back to the server's")
	}

	change, errs = tenant.ParseLimitsSet([]string{"ingest_rate=5000", "max_streams=null", "max_heavy_reads=0", "ingest_burst",
		"nope=1", "max_series=1e3", "max_checks=null"})
	got = fieldsOf(errs)
	for field, msg := range map[string]string{
		"max_heavy_reads": "must be from 1 to 1,000, or null for the server's value, not 0",
		"ingest_burst":    "must be key=value",
		"nope":            "unknown limit",
		"max_series":      `must be a whole number from 1 to 100,000,000, not "1e3"`,
		"max_checks":      "must be a whole number from 0 to 1,000,000, not null",
	} {
		if !strings.HasPrefix(got[field], msg) {
			t.Errorf("--set %s: %q, want it to start %q", field, got[field], msg)
		}
	}
	if len(got) != 5 || len(change) != 2 || *change["ingest_rate"] != 5000 || change["max_streams"] != nil {
		t.Errorf("--set: accepted %v, refused %v", change, got)
	}
}

// SetLimits changes only the limits named, sets a nullable one back to null, records who changed what in
// the tenant's audit log in the same transaction, and answers not found for a tenant that is not there.
func TestSetLimitsChangesWhatIsNamedAndAudits(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "acme")
	other := dbtest.SeedTenant(t, d, "other")
	sys := d.System()

	set := func(pairs ...string) tenant.Limits {
		t.Helper()
		change, errs := tenant.ParseLimitsSet(pairs)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		row, err := tenant.SetLimits(ctx, sys, ten.ID, change, tenant.ActorCommandLine)
		if err != nil {
			t.Fatal(err)
		}
		return tenant.LimitsOf(row)
	}
	got := set("ingest_rate=5000", "max_streams=3", "max_heavy_reads=2")
	if got.IngestRate != 5000 || got.IngestBurst != 200000 || got.MaxSeries != 150000 || got.MaxStreams == nil || *got.MaxStreams != 3 ||
		got.MaxHeavyReads == nil || *got.MaxHeavyReads != 2 {
		t.Fatalf("after the first change: %+v", got)
	}
	got = set("max_streams=null", "max_checks=0")
	if got.IngestRate != 5000 || got.MaxStreams != nil || got.MaxHeavyReads == nil || *got.MaxHeavyReads != 2 || got.MaxChecks != 0 {
		t.Fatalf("after the second change: %+v, want max_streams back to null and the others kept", got)
	}

	var entries []string
	rows, err := d.Pool.Query(ctx, `SELECT actor_kind, actor_id, action, object_id, details::text FROM app.audit_log
	                                 WHERE tenant_id = $1 AND action = 'tenant.limits' ORDER BY id`, ten.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, actor, action, object, details string
		if err := rows.Scan(&kind, &actor, &action, &object, &details); err != nil {
			t.Fatal(err)
		}
		if kind != "system" || actor != "infrawatch tenant limits" || object != ten.ID.String() {
			t.Errorf("audit entry by %s %s on %s, want the command line on the tenant", kind, actor, object)
		}
		entries = append(entries, details)
	}
	want := `[{"ingest_rate": 5000, "max_streams": 3, "max_heavy_reads": 2} {"max_checks": 0, "max_streams": null}]`
	if fmt.Sprint(entries) != want {
		t.Errorf("audit details %v, want %s", entries, want)
	}

	var otherRate int32
	var otherStreams *int32
	if err := d.Pool.QueryRow(ctx, `SELECT ingest_rate, max_streams FROM app.tenants WHERE id = $1`, other.ID).Scan(&otherRate, &otherStreams); err != nil {
		t.Fatal(err)
	}
	if otherRate != 10000 || otherStreams != nil {
		t.Errorf("the other tenant changed: ingest_rate %d, max_streams %v", otherRate, otherStreams)
	}

	if _, err := tenant.SetLimits(ctx, sys, uuid.New(), tenant.LimitsChange{"max_checks": new(int32)}, tenant.ActorOperator); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("SetLimits of no tenant = %v, want ErrNotFound", err)
	}
	// The database holds the ranges of the overrides too, whoever writes them.
	if _, err := d.Pool.Exec(ctx, `UPDATE app.tenants SET max_heavy_reads = 0 WHERE id = $1`, ten.ID); err == nil {
		t.Error("the database took max_heavy_reads = 0")
	}
}
