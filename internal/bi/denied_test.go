package bi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// What a BI login must not do, each tried for real: read anything outside schema bi (tables, rollups,
// partitions and chunks, the API's views, statistics), create anything (tables, temporary tables,
// functions, large objects), write anything (also with its read-only default switched off), manage
// logins, or read what another login's session runs.
func TestLoginIsDeniedEverythingElse(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		w := newWorld(t, flavor)
		dbtest.MaterializeRollups(t, w.d, time.Now().Add(-48*time.Hour))
		// Statistics of every table exist, so that pg_stats would have rows to leak.
		if _, err := w.d.Pool.Exec(ctx, "ANALYZE"); err != nil {
			t.Fatal(err)
		}
		alpha, bravo := w.issue(t, w.alpha), w.issue(t, w.bravo)
		conn, other := connect(t, alpha), connect(t, bravo)

		// Every relation outside bi and the system catalogs: tables, partitions, chunks, rollups (their
		// views and materialization tables), the API's views, bookkeeping.
		relations, err := rows(ctx, w.d.Pool, `
			SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
			   AND n.nspname IN ('app', 'ts', 'api', 'infrawatch', '_timescaledb_internal', 'public')
			   -- TimescaleDB's own catalog views (job and size statistics) are PUBLIC's, and hold no
			   -- tenant's rows; the isolation audit leaves extension members out alike.
			   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
			 ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		joined := strings.Join(relations, " ")
		wantSome := map[db.Flavor][]string{
			db.FlavorTimescale: {"_timescaledb_internal._hyper_", "_timescaledb_internal._materialized_hypertable_", "ts.samples_5m"},
			db.FlavorPostgres:  {"ts.samples_p", "ts.samples_5m_store_p", "ts.samples_5m"},
		}[flavor]
		for _, want := range append(wantSome, "app.hosts", "api.samples", "infrawatch.storage", "app.bi_credentials", "public.schema_migrations") {
			if !strings.Contains(joined, want) {
				t.Fatalf("no relation %s* among those tried: %v", want, relations)
			}
		}
		for _, rel := range relations {
			if _, err := conn.Exec(ctx, "SELECT * FROM "+rel+" LIMIT 1"); sqlState(err) != "42501" {
				t.Errorf("SELECT FROM %s: %v, want permission denied", rel, err)
			}
		}

		// Statistics: pg_statistic is the superuser's; pg_stats shows no row of a table the login may
		// not read.
		if _, err := conn.Exec(ctx, "SELECT * FROM pg_catalog.pg_statistic LIMIT 1"); sqlState(err) != "42501" {
			t.Errorf("SELECT FROM pg_statistic: %v, want permission denied", err)
		}
		// pg_stats rows of the relations denied above: the owner sees some (the control), the login none.
		const statsOfDenied = `SELECT count(*) FROM pg_stats WHERE format('%I.%I', schemaname, tablename) = ANY ($1)`
		var ownerSees, loginSees, loginSeesExt int
		if err := w.d.Pool.QueryRow(ctx, statsOfDenied, relations).Scan(&ownerSees); err != nil || ownerSees == 0 {
			t.Fatalf("the owner sees %d rows of pg_stats (%v); ANALYZE made none?", ownerSees, err)
		}
		if err := conn.QueryRow(ctx, statsOfDenied, relations).Scan(&loginSees); err != nil || loginSees != 0 {
			t.Errorf("the login sees %d rows of pg_stats of the relations it may not read (%v), want none", loginSees, err)
		}
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stats_ext WHERE format('%I.%I', schemaname, tablename) = ANY ($1)`,
			relations).Scan(&loginSeesExt); err != nil || loginSeesExt != 0 {
			t.Errorf("the login sees %d rows of pg_stats_ext (%v), want none", loginSeesExt, err)
		}

		// Creating and writing, read-only default or not: each statement in a read-write transaction
		// of its own, so that only the privileges refuse it.
		denied := []string{
			"CREATE TABLE bi.mine (x int)",
			"CREATE TABLE public.mine (x int)",
			"CREATE TEMPORARY TABLE mine (x int)",
			"CREATE FUNCTION pg_temp.leak(x float8) RETURNS boolean LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE '%', x; RETURN true; END$$",
			"CREATE FUNCTION public.leak() RETURNS int LANGUAGE sql AS 'SELECT 1'",
			"CREATE SCHEMA mine",
			"CREATE VIEW public.mine AS SELECT 1",
			"INSERT INTO bi.hosts (host_name) VALUES ('smuggled')",
			"UPDATE bi.hosts SET host_name = 'renamed'",
			"DELETE FROM bi.logs",
			"TRUNCATE bi.hosts", // 42809: not a table
			"SELECT lo_create(0)",
			"SELECT lo_creat(-1)",
			"SELECT lo_from_bytea(0, 'x')",
			"SELECT lo_import('/etc/passwd')",
			"COPY bi.hosts TO '/tmp/bi-hosts'",
			"SELECT pg_read_file('/etc/passwd')",
			"SELECT infrawatch.bi_login_create('bi_aaaaaaaaaaaaaaaa', 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5')",
			"SELECT infrawatch.bi_login_set_password('" + bravo.Login + "', 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5')",
			"SELECT infrawatch.bi_drop_login('" + bravo.Login + "')",
			"SELECT * FROM infrawatch.bi_enforce_limits(NULL)",
			"SELECT infrawatch.bi_deny_temporary()",
			"SELECT api.search_logs(now() - interval '1 day', now(), NULL, '{}', NULL, 0, 10)",
			"ALTER ROLE " + pgx.Identifier{alpha.Login}.Sanitize() + " CONNECTION LIMIT -1",
			"ALTER ROLE " + pgx.Identifier{bravo.Login}.Sanitize() + " PASSWORD 'mine now'",
			"DROP ROLE " + pgx.Identifier{bravo.Login}.Sanitize(),
			"CREATE ROLE mine LOGIN",
			"GRANT infrawatch_bi TO " + pgx.Identifier{bravo.Login}.Sanitize(),
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + bravo.Login + "'",
		}
		for _, stmt := range denied {
			err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadWrite}, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, stmt)
				return err
			})
			// A write into a view that joins is refused before its privileges are checked (not updatable,
			// 55000), and TRUNCATE takes tables only (42809): refused all the same.
			if code := sqlState(err); code != "42501" && !(code == "55000" && strings.Contains(stmt, "bi.logs")) &&
				!(code == "42809" && strings.HasPrefix(stmt, "TRUNCATE")) {
				t.Errorf("%s: %v, want permission denied (42501)", stmt, err)
			}
		}

		// Another login's session: its query text and state are hidden; the owner sees them (the
		// control). An idle session shows its last statement.
		if _, err := other.Exec(ctx, "SELECT 'the secret query of bravo'"); err != nil {
			t.Fatal(err)
		}
		var pid uint32 = other.PgConn().PID()
		var ownerQuery string
		if err := w.d.Pool.QueryRow(ctx, `SELECT query FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&ownerQuery); err != nil ||
			!strings.Contains(ownerQuery, "secret query") {
			t.Fatalf("the owner sees %q (%v) as bravo's query; the control failed", ownerQuery, err)
		}
		var query, state, clientAddr *string
		if err := conn.QueryRow(ctx, `SELECT query, state, client_addr::text FROM pg_stat_activity WHERE pid = $1`, pid).
			Scan(&query, &state, &clientAddr); err != nil {
			t.Fatal(err)
		}
		if query == nil || *query != "<insufficient privilege>" || state != nil || clientAddr != nil {
			t.Errorf("alpha reads bravo's session as query=%v state=%v client=%v, want it hidden", deref(query), deref(state), deref(clientAddr))
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}
