package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/infrawatch/infrawatch/migrations"
)

// Flavor is how time series are stored: see ARCHITECTURE.md § Two storage flavors.
type Flavor string

// The storage flavors. Both build the same relation names and columns.
const (
	// FlavorTimescale uses TimescaleDB hypertables, compression and continuous aggregates.
	FlavorTimescale Flavor = "timescale"
	// FlavorPostgres uses declarative partitioning on plain PostgreSQL 15 or newer.
	FlavorPostgres Flavor = "postgres"
)

// ParseFlavor accepts "timescale", "postgres", or "" (detect).
func ParseFlavor(s string) (Flavor, error) {
	switch f := Flavor(strings.ToLower(strings.TrimSpace(s))); f {
	case FlavorTimescale, FlavorPostgres, "":
		return f, nil
	}
	return "", fmt.Errorf("unknown storage flavor %q: use timescale or postgres", s)
}

// MigrationStatus describes the schema of one database.
type MigrationStatus struct {
	Flavor  Flavor // empty when no migration has run
	Version uint   // 0 when no migration has run
	Latest  uint   // the newest migration this binary carries
	Dirty   bool   // a migration failed half-way; fix it by hand, then force the version
}

// Current reports whether the schema is exactly what this binary expects.
func (s MigrationStatus) Current() bool { return !s.Dirty && s.Version == s.Latest }

// Migrator applies the embedded migrations to one database as the owning login.
type Migrator struct {
	url string
}

// NewMigrator returns a migrator for the database at url.
func NewMigrator(url string) *Migrator { return &Migrator{url: url} }

// Up detects or checks the flavor (requested may be empty to detect it), then applies every pending
// migration. It returns the flavor the database is built with.
func (m *Migrator) Up(ctx context.Context, requested Flavor) (Flavor, error) {
	flavor, err := m.resolveFlavor(ctx, requested)
	if err != nil {
		return "", err
	}
	err = m.run(flavor, func(mg *migrate.Migrate) error { return mg.Up() })
	return flavor, err
}

// Down reverts steps migrations, or all of them when steps is zero.
func (m *Migrator) Down(ctx context.Context, steps int) error {
	flavor, err := m.resolveFlavor(ctx, "")
	if err != nil {
		return err
	}
	return m.run(flavor, func(mg *migrate.Migrate) error {
		if steps > 0 {
			return mg.Steps(-steps)
		}
		return mg.Down()
	})
}

// Status reads the schema version and flavor without changing anything.
func (m *Migrator) Status(ctx context.Context) (MigrationStatus, error) {
	conn, err := pgx.Connect(ctx, m.url)
	if err != nil {
		return MigrationStatus{}, fmt.Errorf("connect to database %s: %w", RedactURL(m.url), Redact(err))
	}
	defer conn.Close(ctx)
	return ReadStatus(ctx, conn)
}

// Querier is what ReadStatus needs: a connection, a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ReadStatus reads the schema version, dirt and flavor through q. /readyz calls it on every probe.
func ReadStatus(ctx context.Context, q Querier) (MigrationStatus, error) {
	st := MigrationStatus{Latest: LatestMigration()}
	var storageExists, versionsExist bool
	err := q.QueryRow(ctx, `SELECT to_regclass('infrawatch.storage') IS NOT NULL,
	                               to_regclass('public.schema_migrations') IS NOT NULL`).Scan(&storageExists, &versionsExist)
	if err != nil {
		return st, fmt.Errorf("read schema status: %w", err)
	}
	if storageExists {
		if err := q.QueryRow(ctx, "SELECT flavor FROM infrawatch.storage").Scan(&st.Flavor); err != nil {
			return st, fmt.Errorf("read storage flavor: %w", err)
		}
	}
	if !versionsExist {
		return st, nil
	}
	var version int64
	err = q.QueryRow(ctx, "SELECT version, dirty FROM public.schema_migrations LIMIT 1").Scan(&version, &st.Dirty)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("read schema version: %w", err)
	}
	if version > 0 {
		st.Version = uint(version)
	}
	return st, nil
}

func (m *Migrator) run(flavor Flavor, step func(*migrate.Migrate) error) error {
	cfg, err := pgx.ParseConfig(m.url)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", Redact(err))
	}
	// Migrations read the flavor from this session setting (see migrations/000001).
	cfg.RuntimeParams["infrawatch.flavor"] = string(flavor)
	sqlDB := stdlib.OpenDB(*cfg)
	defer sqlDB.Close()

	driver, err := migratepgx.WithInstance(sqlDB, &migratepgx.Config{MigrationsTable: "schema_migrations", SchemaName: "public"})
	if err != nil {
		return fmt.Errorf("open migration driver: %w", Redact(err))
	}
	source, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return fmt.Errorf("read embedded migrations: %w", err)
	}
	mg, err := migrate.NewWithInstance("iofs", source, "pgx5", driver)
	if err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	defer mg.Close()
	if err := step(mg); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// resolveFlavor decides the flavor: the one recorded in the database if it has one (requested must
// agree), else the requested one, else timescale when TimescaleDB can be used and postgres otherwise.
func (m *Migrator) resolveFlavor(ctx context.Context, requested Flavor) (Flavor, error) {
	conn, err := pgx.Connect(ctx, m.url)
	if err != nil {
		return "", fmt.Errorf("connect to database %s: %w", RedactURL(m.url), Redact(err))
	}
	defer conn.Close(ctx)

	st, err := ReadStatus(ctx, conn)
	if err != nil {
		return "", err
	}
	if recorded := st.Flavor; recorded != "" {
		if requested != "" && requested != recorded {
			return "", fmt.Errorf("this database is built with the %s flavor; --flavor %s cannot change it "+
				"(migrate down first, which deletes all data)", recorded, requested)
		}
		return recorded, nil
	}
	usable, why, err := timescaleUsable(ctx, conn)
	if err != nil {
		return "", err
	}
	switch requested {
	case FlavorPostgres:
		return FlavorPostgres, nil
	case FlavorTimescale:
		if !usable {
			return "", fmt.Errorf("--flavor timescale: %s", why)
		}
		return FlavorTimescale, nil
	}
	if usable {
		return FlavorTimescale, nil
	}
	return FlavorPostgres, nil
}

// timescaleUsable reports whether the timescale flavor can be built here, and if not, why.
func timescaleUsable(ctx context.Context, conn *pgx.Conn) (bool, string, error) {
	var installed, available bool
	var preload string
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'timescaledb'),
	                                  EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb'),
	                                  current_setting('shared_preload_libraries')`).Scan(&installed, &available, &preload)
	if err != nil {
		return false, "", fmt.Errorf("detect TimescaleDB: %w", err)
	}
	switch {
	case installed:
		return true, "", nil
	case !available:
		return false, "the TimescaleDB extension is not installed on this server", nil
	case !strings.Contains(preload, "timescaledb"):
		return false, "TimescaleDB is installed but not in shared_preload_libraries; add it and restart the server", nil
	}
	return true, "", nil
}

var migrationName = regexp.MustCompile(`^(\d+)_.*\.up\.sql$`)

// MigrationsAfter counts the embedded migrations newer than version: the steps `migrate down` takes back
// to it. Versions may leave gaps (branches number their migrations apart), so the difference of two
// versions is not a number of steps.
func MigrationsAfter(version uint) int {
	entries, _ := fs.ReadDir(migrations.FS, ".")
	n := 0
	for _, e := range entries {
		if m := migrationName.FindStringSubmatch(e.Name()); m != nil {
			if v, _ := strconv.ParseUint(m[1], 10, 32); uint(v) > version {
				n++
			}
		}
	}
	return n
}

// LatestMigration is the version of the newest embedded migration. The embedded files never change, so
// it is worked out once (/readyz asks on every probe).
var LatestMigration = sync.OnceValue(func() uint {
	entries, _ := fs.ReadDir(migrations.FS, ".")
	var latest uint
	for _, e := range entries {
		if m := migrationName.FindStringSubmatch(e.Name()); m != nil {
			v, _ := strconv.ParseUint(m[1], 10, 32)
			latest = max(latest, uint(v))
		}
	}
	return latest
})
