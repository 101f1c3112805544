package maintenance_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/maintenance"
)

const day = 24 * time.Hour

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  maintenance.Config
		want string // part of the error; empty for none
	}{
		{"defaults", maintenance.Config{}, ""},
		{"short but ordered", maintenance.Config{Retention: maintenance.RetentionConfig{
			Samples: day, Samples5m: day, Samples1h: 3 * day, Samples1d: 3 * day,
			CheckResults: day, CheckResults1h: 3 * day, CheckResults1d: 3 * day, Logs: day}}, ""},
		{"negative", maintenance.Config{RefreshInterval: -time.Minute}, "must not be negative"},
		{"ahead too short", maintenance.Config{Interval: 5 * day}, "ahead"},
		{"5m shorter than raw", maintenance.Config{Retention: maintenance.RetentionConfig{Samples: 100 * day}},
			"--retention-5m (90d) must be at least --retention-raw (100d): ts.samples_5m is built from ts.samples"},
		{"1d shorter than 1h", maintenance.Config{Retention: maintenance.RetentionConfig{CheckResults1d: 365 * day}},
			"--retention-1d (365d) must be at least --retention-1h (730d): ts.check_results_1d is built from ts.check_results_1h"},
		{"under a day", maintenance.Config{Retention: maintenance.RetentionConfig{Logs: time.Hour}}, "--retention-logs (1h0m0s) must be at least a day (ts.logs)"},
		{"hourly tier under 3 days", maintenance.Config{Retention: maintenance.RetentionConfig{
			Samples: day, Samples5m: day, Samples1h: 2 * day}}, "--retention-1h (2d) must be at least 3 days (ts.samples_1h)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// Each relation keeps what is younger than its retention and loses what is older by more than one
// chunk; the timescale flavor's policies follow the configuration; and a refresh after retention keeps
// the rollups of dropped raw data, even with a late row queued for it.
func TestRetentionDropsWhatIsOlderThanEachTierKeeps(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		cfg := maintenance.Config{CompressAfter: 3 * day, Retention: maintenance.RetentionConfig{
			Samples: 10 * day, Samples5m: 20 * day, Samples1h: 40 * day, Samples1d: 80 * day,
			CheckResults: 10 * day, CheckResults1h: 40 * day, CheckResults1d: 80 * day, Logs: 10 * day}}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		svc := maintenance.New(cfg, d.System(), discard)

		// Rows at these ages, each well inside a retention or more than a chunk (a day, a week or 30
		// days) beyond it.
		ages := []time.Duration{5 * day, 15 * day, 30 * day, 60 * day, 120 * day}
		now := time.Now()
		for _, table := range []string{"ts.samples", "ts.check_results", "ts.logs"} {
			if _, err := d.Pool.Exec(ctx, "SELECT infrawatch.ensure_partitions($1, $2, $3)", table, now.Add(-130*day), now); err != nil {
				t.Fatal(err)
			}
		}
		ten := uuid.New()
		var samples []sample
		var results []result
		for _, age := range ages {
			for i := range 3 {
				at := now.Add(-age + time.Duration(i)*time.Minute)
				samples = append(samples, sample{at, ten, 9_100_001, float64(i)})
				results = append(results, result{at, ten, 8_100_001, i != 1, nil})
			}
			if _, err := d.Pool.Exec(ctx, `INSERT INTO ts.logs (time, tenant_id, message) VALUES ($1, $2, 'old')`, now.Add(-age), ten); err != nil {
				t.Fatal(err)
			}
		}
		copySamples(t, d, samples, false)
		copyResults(t, d, results)
		materialize(t, d, svc)

		want := map[string][]bool{ // kept, per age
			"ts.samples":          {true, false, false, false, false},
			"ts.samples_5m":       {true, true, false, false, false},
			"ts.samples_1h":       {true, true, true, false, false},
			"ts.samples_1d":       {true, true, true, true, false},
			"ts.check_results":    {true, false, false, false, false},
			"ts.check_results_1h": {true, true, true, false, false},
			"ts.check_results_1d": {true, true, true, true, false},
			"ts.logs":             {true, false, false, false, false},
		}
		check := func(when string, before bool) {
			t.Helper()
			for rel, kept := range want {
				column := "bucket"
				if !strings.Contains(rel, "_1") && !strings.Contains(rel, "_5m") {
					column = "time"
				}
				for i, age := range ages {
					var n int
					// Two days either side of the age: enough for a daily bucket, far from the next age.
					err := d.Pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE tenant_id = $1 AND %s >= $2 AND %s < $3",
						rel, column, column), ten, now.Add(-age-2*day), now.Add(-age+2*day)).Scan(&n)
					if err != nil {
						t.Fatal(err)
					}
					if wantRows := before || kept[i]; (n > 0) != wantRows {
						t.Errorf("%s: %s has %d rows %s old, want rows: %v", when, rel, n, age, wantRows)
					}
				}
			}
		}
		check("before retention", true)

		// A late row for a day whose raw data retention is about to drop: its rollups must survive.
		copySamples(t, d, []sample{{now.Add(-15*day + 30*time.Second), ten, 9_100_001, 99}}, false)

		if ran, err := svc.RunOnce(ctx); err != nil || !ran {
			t.Fatalf("pass: ran=%v err=%v", ran, err)
		}
		check("after retention", false)

		if flavor == db.FlavorTimescale {
			var policies []string
			rows, err := d.Pool.Query(ctx, `SELECT format('%s %s.%s %s', proc_name, hypertable_schema, hypertable_name,
			                                             coalesce(config->>'compress_after', config->>'start_offset'))
			                                  FROM timescaledb_information.jobs
			                                 WHERE proc_name IN ('policy_compression', 'policy_refresh_continuous_aggregate')
			                                 ORDER BY 1`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var p string
				if err := rows.Scan(&p); err != nil {
					t.Fatal(err)
				}
				policies = append(policies, p)
			}
			wantPolicies := []string{
				"policy_compression ts.check_results 72:00:00", "policy_compression ts.logs 72:00:00",
				"policy_compression ts.samples 72:00:00",
				"policy_refresh_continuous_aggregate ts.check_results_1d 264:00:00",
				"policy_refresh_continuous_aggregate ts.check_results_1h 240:00:00",
				"policy_refresh_continuous_aggregate ts.samples_1d 288:00:00",
				"policy_refresh_continuous_aggregate ts.samples_1h 264:00:00",
				"policy_refresh_continuous_aggregate ts.samples_5m 240:00:00",
			}
			if strings.Join(policies, "\n") != strings.Join(wantPolicies, "\n") {
				t.Errorf("policies after the pass:\n%s\nwant:\n%s", strings.Join(policies, "\n"), strings.Join(wantPolicies, "\n"))
			}
			// Run the refresh policies as TimescaleDB would, with the windows maintenance gave them.
			rows, err = d.Pool.Query(ctx, `SELECT job_id FROM timescaledb_information.jobs
			                                WHERE proc_name = 'policy_refresh_continuous_aggregate'
			                                ORDER BY hypertable_name LIKE '%\_1d', hypertable_name LIKE '%\_1h', job_id`)
			if err != nil {
				t.Fatal(err)
			}
			var jobs []int
			for rows.Next() {
				var id int
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				jobs = append(jobs, id)
			}
			for _, id := range jobs {
				if _, err := d.Pool.Exec(ctx, "CALL run_job($1)", id); err != nil {
					t.Fatalf("run refresh policy %d: %v", id, err)
				}
			}
		} else {
			materialize(t, d, svc)
		}
		check("after retention and a refresh", false)
	})
}

// A storage pass forgets the tenants' ingest usage older than maintenance.IngestUsageKept and keeps the rest.
func TestStoragePassForgetsOldIngestUsage(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "acme") // one row of the current minute
	if _, err := d.Pool.Exec(ctx, `INSERT INTO app.ingest_usage (tenant_id, minute, slot, samples)
	                               VALUES ($1, date_trunc('minute', now() - $2::interval), 1, 10),
	                                      ($1, date_trunc('minute', now() - $3::interval), 1, 20)`,
		ten.ID, maintenance.IngestUsageKept+2*time.Minute, maintenance.IngestUsageKept-2*time.Minute); err != nil {
		t.Fatal(err)
	}
	svc := maintenance.New(maintenance.Config{}, d.System(), discard)
	if ran, err := svc.RunOnce(ctx); err != nil || !ran {
		t.Fatalf("pass: ran=%v err=%v", ran, err)
	}
	var kept []int64
	rows, err := d.Pool.Query(ctx, `SELECT samples FROM app.ingest_usage WHERE tenant_id = $1 ORDER BY minute`, ten.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, n)
	}
	if fmt.Sprint(kept) != "[20 1]" {
		t.Errorf("ingest usage after the pass: %v, want the minute within %s (20) and the current one (1)", kept, maintenance.IngestUsageKept)
	}
}
