package db_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// catalogQueries describe the parts of the schema a migration may touch, each row as one line of text.
// Partitions are left out (their names follow the clock) but partitioned parents are not; TimescaleDB's
// own catalog is summarised by hypertable and job, without its internal ids.
var catalogQueries = []string{
	`SELECT format('relation %s.%s kind=%s rls=%s force=%s acl=%s options=%s', n.nspname, c.relname, c.relkind,
	               c.relrowsecurity, c.relforcerowsecurity, c.relacl, c.reloptions)
	   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE n.nspname IN ('app', 'ts', 'api', 'bi', 'infrawatch', 'public') AND NOT c.relispartition
	    AND c.relkind NOT IN ('i', 'I', 'S', 'c', 't')
	    AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')`,
	`SELECT format('column %s.%s.%s %s notnull=%s default=%s', n.nspname, c.relname, a.attname,
	               format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
	   FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	  WHERE n.nspname IN ('app', 'ts', 'api', 'bi', 'infrawatch', 'public') AND NOT c.relispartition
	    AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')`,
	`SELECT format('index %s', indexdef) FROM pg_indexes i JOIN pg_class c ON c.relname = i.tablename
	   JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = i.schemaname
	  WHERE i.schemaname IN ('app', 'ts', 'api', 'bi', 'infrawatch', 'public') AND NOT c.relispartition`,
	`SELECT format('constraint %s on %s: %s', conname, conrelid::regclass, pg_get_constraintdef(oid))
	   FROM pg_constraint WHERE connamespace IN (SELECT oid FROM pg_namespace
	                                              WHERE nspname IN ('app', 'ts', 'api', 'bi', 'infrawatch', 'public'))
	    AND conrelid IN (SELECT oid FROM pg_class WHERE NOT relispartition)`,
	`SELECT format('policy %s.%s %s roles=%s cmd=%s using=%s check=%s', schemaname, tablename, policyname, roles, cmd,
	               qual, with_check) FROM pg_policies`,
	`SELECT format('function %s acl=%s: %s', p.oid::regprocedure, p.proacl, md5(p.prosrc))
	   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	  WHERE n.nspname IN ('app', 'ts', 'api', 'bi', 'infrawatch', 'public')
	    AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')`,
	// A continuous aggregate's view names its materialization hypertable by an id that a second up
	// does not reuse; the view's own name says which one it is.
	`SELECT format('view %s.%s: %s', schemaname, viewname,
	               regexp_replace(definition, '(_materialized_hypertable_|cagg_watermark\()[0-9]+', '\1N', 'g'))
	   FROM pg_views WHERE schemaname IN ('app', 'ts', 'api', 'bi', 'infrawatch')`,
	`SELECT format('schema %s owner=%s acl=%s', nspname, nspowner::regrole, nspacl) FROM pg_namespace
	  WHERE nspname IN ('app', 'ts', 'api', 'bi', 'infrawatch', 'public')`,
}

var timescaleCatalogQueries = []string{
	`SELECT format('hypertable %s.%s compression=%s', hypertable_schema, hypertable_name, compression_enabled)
	   FROM timescaledb_information.hypertables`,
	// A continuous aggregate's materialization hypertable is named by its aggregate, not by its id.
	`SELECT format('dimension %s.%s %s %s', coalesce(a.view_schema, d.hypertable_schema),
	               coalesce(a.view_name, d.hypertable_name), d.column_name, d.time_interval)
	   FROM timescaledb_information.dimensions d
	   LEFT JOIN timescaledb_information.continuous_aggregates a
	     ON a.materialization_hypertable_schema = d.hypertable_schema
	    AND a.materialization_hypertable_name = d.hypertable_name`,
	`SELECT format('continuous aggregate %s.%s materialized_only=%s', view_schema, view_name, materialized_only)
	   FROM timescaledb_information.continuous_aggregates`,
	`SELECT format('job %s on %s.%s every %s config=%s', proc_name, hypertable_schema, hypertable_name,
	               schedule_interval, config - 'hypertable_id' - 'mat_hypertable_id')
	   FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL`,
	`SELECT format('compression %s.%s %s segmentby=%s orderby=%s', hypertable_schema, hypertable_name, attname,
	               segmentby_column_index, orderby_column_index)
	   FROM timescaledb_information.compression_settings`,
}

func dumpCatalog(t *testing.T, url string, flavor db.Flavor) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	queries := catalogQueries
	if flavor == db.FlavorTimescale {
		queries = append(slices.Clone(queries), timescaleCatalogQueries...)
	}
	var lines []string
	for _, q := range queries {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("dump catalog: %v\n%s", err, q)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("dump catalog: %v\n%s", err, q)
		}
		lines = append(lines, got...)
	}
	slices.Sort(lines)
	return lines
}

func TestMigrationsUpDownUpGiveTheSameCatalog(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		_, url := dbtest.NewEmpty(t)
		m := db.NewMigrator(url)

		got, err := m.Up(ctx, flavor)
		if err != nil {
			t.Fatalf("first up: %v", err)
		}
		if got != flavor {
			t.Fatalf("up built flavor %q, want %q", got, flavor)
		}
		first := dumpCatalog(t, url, flavor)
		if len(first) < 50 {
			t.Fatalf("catalog dump has only %d lines; the dump queries are broken", len(first))
		}

		if err := m.Down(ctx, 0); err != nil {
			t.Fatalf("down: %v", err)
		}
		afterDown := dumpCatalog(t, url, flavor)
		for _, line := range afterDown {
			if !strings.HasPrefix(line, "schema public") && !strings.Contains(line, "schema_migrations") {
				t.Errorf("left behind by down: %s", line)
			}
		}
		st, err := m.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Version != 0 || st.Flavor != "" || st.Dirty {
			t.Errorf("status after down = %+v, want version 0, no flavor, clean", st)
		}

		if _, err := m.Up(ctx, flavor); err != nil {
			t.Fatalf("second up: %v", err)
		}
		second := dumpCatalog(t, url, flavor)
		if !slices.Equal(first, second) {
			t.Errorf("catalog differs after up → down → up:\n%s", lineDiff(first, second))
		}
	})
}

func lineDiff(a, b []string) string {
	var out strings.Builder
	for _, l := range a {
		if !slices.Contains(b, l) {
			out.WriteString("- " + l + "\n")
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out.WriteString("+ " + l + "\n")
		}
	}
	return out.String()
}

func TestStatusReportsVersionFlavorAndDirt(t *testing.T) {
	ctx := context.Background()
	_, url := dbtest.NewEmpty(t)
	m := db.NewMigrator(url)

	st, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != 0 || st.Flavor != "" || st.Latest != db.LatestMigration() || st.Current() {
		t.Errorf("status of an empty database = %+v", st)
	}
	if _, err := m.Up(ctx, db.FlavorPostgres); err != nil {
		t.Fatal(err)
	}
	st, err = m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != db.LatestMigration() || st.Flavor != db.FlavorPostgres || st.Dirty || !st.Current() {
		t.Errorf("status after up = %+v", st)
	}
	if err := m.Down(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Versions may leave gaps (branches number their migrations apart): one step down is below the latest.
	if st, _ = m.Status(ctx); st.Version == 0 || st.Version >= db.LatestMigration() || st.Current() {
		t.Errorf("status after down --steps 1 = %+v, want a version below %d", st, db.LatestMigration())
	}
	if _, err := m.Up(ctx, ""); err != nil {
		t.Fatalf("up again with the recorded flavor: %v", err)
	}

	// A migration that failed half-way leaves the schema dirty, and status says so.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE public.schema_migrations SET dirty = true"); err != nil {
		t.Fatal(err)
	}
	if st, _ = m.Status(ctx); !st.Dirty || st.Current() {
		t.Errorf("status of a dirty schema = %+v, want dirty", st)
	}
}

func TestFlavorCannotChangeOnceBuilt(t *testing.T) {
	ctx := context.Background()
	_, url := dbtest.NewEmpty(t)
	m := db.NewMigrator(url)
	if _, err := m.Up(ctx, db.FlavorPostgres); err != nil {
		t.Fatal(err)
	}
	_, err := m.Up(ctx, db.FlavorTimescale)
	if err == nil || !strings.Contains(err.Error(), "built with the postgres flavor") {
		t.Fatalf("up --flavor timescale on a postgres-flavor database: err = %v, want a refusal", err)
	}
}

func TestForcedTimescaleFlavorExplainsWhyItCannot(t *testing.T) {
	if slices.Contains(dbtest.Flavors(t), db.FlavorTimescale) {
		t.Skip("skipped: TimescaleDB is available on the test server, so forcing the flavor succeeds (covered by the flavor tests)")
	}
	_, url := dbtest.NewEmpty(t)
	_, err := db.NewMigrator(url).Up(context.Background(), db.FlavorTimescale)
	if err == nil || !strings.Contains(err.Error(), "TimescaleDB") {
		t.Fatalf("err = %v, want an explanation naming TimescaleDB", err)
	}
}

func TestFlavorBuildsItsStorage(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		tables := []string{"check_results", "logs", "samples"}
		switch flavor {
		case db.FlavorTimescale:
			rows, _ := d.Pool.Query(ctx, `SELECT hypertable_name FROM timescaledb_information.hypertables
			                               WHERE hypertable_schema = 'ts' ORDER BY 1`)
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tables) {
				t.Errorf("hypertables = %v, want %v", got, tables)
			}
			var policies int
			if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.jobs
			                                  WHERE proc_name = 'policy_compression' AND hypertable_schema = 'ts'`).
				Scan(&policies); err != nil {
				t.Fatal(err)
			}
			if policies != len(tables) {
				t.Errorf("compression policies = %d, want %d", policies, len(tables))
			}
		case db.FlavorPostgres:
			for _, table := range tables {
				// Partitions must already cover the accepted window: 30 days back, 7 days ahead.
				for _, at := range []time.Duration{-29 * 24 * time.Hour, 0, 6 * 24 * time.Hour} {
					var partition string
					err := d.Pool.QueryRow(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
					                              WHERE i.inhparent = $1::regclass
					                                AND pg_get_expr(c.relpartbound, c.oid) LIKE 'FOR VALUES FROM%'
					                                AND $2::timestamptz >= split_part(pg_get_expr(c.relpartbound, c.oid), '''', 2)::timestamptz
					                                AND $2::timestamptz <  split_part(pg_get_expr(c.relpartbound, c.oid), '''', 4)::timestamptz`,
						"ts."+table, time.Now().Add(at)).Scan(&partition)
					if err != nil {
						t.Errorf("ts.%s has no partition for now%+v: %v", table, at, err)
					}
				}
			}
			// ensure_partitions creates what is missing, and only that.
			var made int
			from := time.Now().Add(7 * 24 * time.Hour)
			if err := d.Pool.QueryRow(ctx, `SELECT infrawatch.ensure_partitions('ts.samples', $1, $2)`,
				from, from.Add(3*24*time.Hour)).Scan(&made); err != nil {
				t.Fatal(err)
			}
			if made < 2 || made > 4 {
				t.Errorf("ensure_partitions for 3 more days made %d partitions", made)
			}
			if err := d.Pool.QueryRow(ctx, `SELECT infrawatch.ensure_partitions('ts.samples', $1, $2)`,
				from, from.Add(3*24*time.Hour)).Scan(&made); err != nil || made != 0 {
				t.Errorf("second ensure_partitions made %d (err %v), want 0", made, err)
			}
		}
	})
}
