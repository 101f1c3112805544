package dbtest

import (
	"context"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
)

// Rollups names every rollup, each after the one it is built from.
var Rollups = []string{"ts.samples_5m", "ts.samples_1h", "ts.samples_1d", "ts.check_results_1h", "ts.check_results_1d"}

// pauseRollupPolicies stops TimescaleDB's refresh policies in a template database, so that in the test
// databases made from it only the test decides what is materialized and when: a policy that ran before a
// test wrote rows hours old would make them late rows, missing from the rollups until the next refresh.
// Tests materialize with MaterializeRollups, or run a policy with CALL run_job.
func pauseRollupPolicies(ctx context.Context, t testing.TB, url string) {
	t.Helper()
	pool, err := db.Open(ctx, db.Config{URL: url, MaxConns: 1})
	if err != nil {
		t.Fatalf("dbtest: connect to template: %v", err)
	}
	defer pool.Close()
	_, err = pool.Exec(ctx, `SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs
	                          WHERE proc_name = 'policy_refresh_continuous_aggregate'`)
	if err != nil {
		t.Fatalf("dbtest: pause the rollups' refresh policies: %v", err)
	}
}

// MaterializeRollups materializes every rollup for the buckets that end by upto, finest tier first: in
// the postgres flavor with infrawatch.refresh_rollups, called until no tier reports a backlog; in the
// timescale flavor with refresh_continuous_aggregate from the beginning of time. Newer buckets stay
// real-time. In production maintenance does this (postgres flavor), or TimescaleDB's policies do; in
// test databases those policies are paused.
func MaterializeRollups(t testing.TB, d *DB, upto time.Time) {
	t.Helper()
	ctx := context.Background()
	if d.Flavor == db.FlavorTimescale {
		for _, r := range Rollups {
			// CALL cannot run in a transaction; pgx sends it on its own.
			if _, err := d.Pool.Exec(ctx, "CALL refresh_continuous_aggregate($1::regclass, NULL, $2::timestamptz)", r, upto); err != nil {
				t.Fatalf("refresh %s: %v", r, err)
			}
		}
		return
	}
	for range 1000 {
		var backlog bool
		err := d.Pool.QueryRow(ctx, "SELECT coalesce(bool_or(backlog), false) FROM infrawatch.refresh_rollups($1)", upto).Scan(&backlog)
		if err != nil {
			t.Fatalf("refresh rollups: %v", err)
		}
		if !backlog {
			return
		}
	}
	t.Fatal("refresh rollups: still a backlog after 1000 calls")
}

// MaterializedRows counts the rows of a rollup that are materialized, as opposed to aggregated on the
// fly when read: its store (postgres flavor) or its materialization hypertable (timescale flavor).
func MaterializedRows(t testing.TB, d *DB, rollup string) int64 {
	t.Helper()
	ctx := context.Background()
	query := `SELECT store::text FROM infrawatch.rollups WHERE name = $1`
	if d.Flavor == db.FlavorTimescale {
		query = `SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
		           FROM timescaledb_information.continuous_aggregates
		          WHERE format('%I.%I', view_schema, view_name)::regclass = $1::regclass`
	}
	var table string
	if err := d.Pool.QueryRow(ctx, query, rollup).Scan(&table); err != nil {
		t.Fatalf("find the materialized rows of %s: %v", rollup, err)
	}
	var n int64
	if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count the materialized rows of %s: %v", rollup, err)
	}
	return n
}
