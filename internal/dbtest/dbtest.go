// Package dbtest hands tests a real, migrated PostgreSQL database — never a mock.
//
// The server comes from, in this order: INFRAWATCH_TEST_DATABASE_URL (a superuser connection to a server
// someone else runs); a reachable Docker daemon (a TimescaleDB container); or a throwaway cluster that the
// harness starts itself from the PostgreSQL server binaries on the machine, with TimescaleDB preloaded
// when it is installed. It never uses a server that merely happens to be running.
//
// Each test binary migrates once per storage flavor into a template database; every test then gets its own
// database copied from the template, so tests run in parallel. A package that uses dbtest calls Main from
// its TestMain.
//
// Under `go test -short` (make test-short, the quick loop of unit tests) every test that asks for a
// database is skipped, with a message saying so.
package dbtest

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/migrations"
)

// EnvDatabaseURL names the variable that points the harness at an existing server.
const EnvDatabaseURL = "INFRAWATCH_TEST_DATABASE_URL"

// server is the PostgreSQL server of this test binary.
type server struct {
	adminURL  string // superuser connection to a maintenance database
	admin     *db.Admin
	source    string // where the server came from, for messages
	logFile   string // the server's log, when the harness started the server itself
	flavors   []db.Flavor
	prefix    string // unique per test binary, so binaries sharing one server never collide
	stop      func()
	mu        sync.Mutex
	templates map[db.Flavor]string
	counter   atomic.Int64
}

var (
	current    *server
	startErr   error
	inMain     bool
	serverOnce sync.Once
)

// Main runs the package's tests and then stops the server the harness started, if any. Call it from
// TestMain: func TestMain(m *testing.M) { dbtest.Main(m) }.
func Main(m *testing.M) {
	inMain = true
	code := m.Run()
	if current != nil {
		current.cleanup()
	}
	os.Exit(code)
}

// skipShort is the message of a test skipped under -short.
const skipShort = "dbtest: -short runs unit tests only; this test needs PostgreSQL (run it without -short, e.g. make test)"

func get(t testing.TB) *server {
	t.Helper()
	if testing.Short() {
		t.Skip(skipShort)
	}
	if !inMain {
		t.Fatal("dbtest: call dbtest.Main(m) from this package's TestMain")
	}
	serverOnce.Do(func() { current, startErr = start() })
	if startErr != nil {
		t.Fatalf("dbtest: no PostgreSQL server for the tests: %v", startErr)
	}
	return current
}

func start() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := &server{prefix: fmt.Sprintf("iwt_%d_%04d", os.Getpid()%100000, rand.IntN(10000)), templates: map[db.Flavor]string{}}
	switch {
	case os.Getenv(EnvDatabaseURL) != "":
		s.adminURL, s.source, s.stop = os.Getenv(EnvDatabaseURL), EnvDatabaseURL, func() {}
	default:
		url, stop, err := startDocker(ctx)
		if err == nil {
			s.adminURL, s.source, s.stop = url, "Docker (TimescaleDB image)", stop
			break
		}
		url, logFile, stop, err := startLocalCluster(ctx)
		if err != nil {
			return nil, err
		}
		s.adminURL, s.source, s.stop, s.logFile = url, "a throwaway cluster from the local server binaries", stop, logFile
	}
	s.admin = db.NewAdmin(s.adminURL)
	flavors, err := availableFlavors(ctx, s.adminURL)
	if err != nil {
		s.stop()
		return nil, err
	}
	s.flavors = flavors
	return s, nil
}

func availableFlavors(ctx context.Context, adminURL string) ([]db.Flavor, error) {
	usable, _, err := db.NewAdmin(adminURL).TimescaleUsable(ctx)
	if err != nil {
		return nil, fmt.Errorf("detect TimescaleDB on test server: %w", err)
	}
	if usable {
		return []db.Flavor{db.FlavorTimescale, db.FlavorPostgres}, nil
	}
	return []db.Flavor{db.FlavorPostgres}, nil
}

func (s *server) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range s.templates {
		_ = s.admin.DropDatabase(ctx, name)
	}
	s.stop()
}

// Flavors lists the storage flavors the test server can build: postgres always, timescale when the
// server has TimescaleDB.
func Flavors(t testing.TB) []db.Flavor {
	return get(t).flavors
}

// ForEachFlavor runs fn as a parallel subtest for every available flavor. A storage test uses it so that
// it runs on each flavor the machine has. When TimescaleDB is missing it says so in the test log.
func ForEachFlavor(t *testing.T, fn func(t *testing.T, flavor db.Flavor)) {
	t.Helper()
	flavors := Flavors(t)
	if len(flavors) == 1 {
		t.Logf("dbtest: TimescaleDB is not available on %s; running the postgres flavor only", get(t).source)
	}
	for _, flavor := range flavors {
		t.Run(string(flavor), func(t *testing.T) {
			t.Parallel()
			fn(t, flavor)
		})
	}
}

// DB is a migrated database of its own for one test, dropped when the test ends.
type DB struct {
	Name   string
	URL    string   // connects as the owning login (a superuser on the harness's own server)
	Pool   *db.Pool // the owner's pool, as the process wiring holds it; tests may run any SQL on it
	Flavor db.Flavor
}

// System is the system runner over the database, as system work (auth, tenants, maintenance) gets it.
func (d *DB) System() *db.System { return db.NewSystem(d.Pool) }

// New creates a database for t from the flavor's template, migrated to the newest version.
func New(t testing.TB, flavor db.Flavor) *DB {
	t.Helper()
	s := get(t)
	tpl := s.template(t, flavor)
	name := fmt.Sprintf("%s_%s_%d", s.prefix, flavor, s.counter.Add(1))
	ctx := context.Background()
	s.do(t, func(ctx context.Context) error { return s.admin.CreateDatabase(ctx, name, tpl) })
	d := &DB{Name: name, URL: s.urlFor(t, name), Flavor: flavor}
	pool, err := db.Open(ctx, db.Config{URL: d.URL})
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", name, err)
	}
	d.Pool = pool
	// A copy keeps the template's schema but not its database-level privileges (pg_database.datacl):
	// take TEMPORARY from PUBLIC again, as migration 000013 did in the template.
	if _, err := pool.Exec(ctx, `DO $$
		BEGIN
			IF to_regprocedure('infrawatch.bi_deny_temporary()') IS NOT NULL THEN
				PERFORM infrawatch.bi_deny_temporary();
			END IF;
		END
		$$`); err != nil {
		t.Fatalf("dbtest: deny TEMPORARY on %s: %v", name, err)
	}
	t.Cleanup(func() {
		pool.Close()
		dropBILogins(t, d.URL)
		s.do(t, func(ctx context.Context) error { return s.admin.DropDatabase(ctx, name) })
	})
	return d
}

// dropBILogins drops the BI logins a test made, before its database goes: they are roles of the whole
// server and would outlive it. Deleting their mappings drops them (migration 000013's trigger). It
// connects on its own: the test may have closed its pool.
func dropBILogins(t testing.TB, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := db.Open(ctx, db.Config{URL: url})
	if err != nil {
		t.Errorf("dbtest: drop the test's BI logins: %v", err)
		return
	}
	defer pool.Close()
	_, err = pool.Exec(ctx, `DO $$
		BEGIN
			IF to_regclass('app.bi_credentials') IS NOT NULL THEN
				DELETE FROM app.bi_credentials;
			END IF;
		END
		$$`)
	if err != nil {
		t.Errorf("dbtest: drop the test's BI logins: %v", err)
	}
}

// NewEmpty creates an empty database for t, with no migration applied, dropped when the test ends.
// Migration tests use it.
func NewEmpty(t testing.TB) (name, url string) {
	t.Helper()
	s := get(t)
	name = fmt.Sprintf("%s_empty_%d", s.prefix, s.counter.Add(1))
	s.do(t, func(ctx context.Context) error { return s.admin.CreateDatabase(ctx, name, "") })
	t.Cleanup(func() { s.do(t, func(ctx context.Context) error { return s.admin.DropDatabase(ctx, name) }) })
	return name, s.urlFor(t, name)
}

func (s *server) template(t testing.TB, flavor db.Flavor) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if name, ok := s.templates[flavor]; ok {
		return name
	}
	name := fmt.Sprintf("%s_tpl_%s", s.prefix, flavor)
	s.do(t, func(ctx context.Context) error { return s.admin.CreateDatabase(ctx, name, "") })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := db.NewMigrator(s.urlFor(t, name)).Up(ctx, flavor); err != nil {
		t.Fatalf("dbtest: migrate template for the %s flavor: %v", flavor, err)
	}
	if flavor == db.FlavorTimescale {
		pauseRollupPolicies(ctx, t, s.urlFor(t, name))
	}
	s.do(t, func(ctx context.Context) error { return s.admin.MakeTemplate(ctx, name) })
	s.templates[flavor] = name
	return name
}

// do runs one statement of the server's admin (creating, copying, dropping a database), failing t with
// the end of the server's log when it does not work.
func (s *server) do(t testing.TB, statement func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := statement(ctx); err != nil {
		t.Fatalf("dbtest: %v%s", err, s.logTail())
	}
}

func (s *server) urlFor(t testing.TB, dbname string) string {
	t.Helper()
	u, err := url.Parse(s.adminURL)
	if err != nil || u.Scheme == "" {
		t.Fatalf("dbtest: the server address must be a postgres:// URL (%s)", EnvDatabaseURL)
	}
	u.Path = "/" + dbname
	return u.String()
}

// logTail is the end of the server's log, to explain a server that stopped answering; empty when the
// harness did not start the server.
func (s *server) logTail() string {
	if s.logFile == "" {
		return ""
	}
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return "\n(the server's log cannot be read: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return "\nthe server's log ends with:\n" + strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// MigrationsAbove counts the migrations numbered above version: the steps of a `migrate down` back to
// version. Numbers may skip (parallel branches reserve theirs), so the latest number minus version is not it.
func MigrationsAbove(t testing.TB, version int) int {
	t.Helper()
	ups, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range ups {
		v, err := strconv.Atoi(name[:strings.IndexByte(name, '_')])
		if err != nil {
			t.Fatalf("migration %s: no number", name)
		}
		if v > version {
			n++
		}
	}
	return n
}
