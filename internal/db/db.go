// Package db connects infrawatch to PostgreSQL: the connection pool, the tenant-scoped runner that is
// the only way request handlers reach the database, the system runner for work across tenants, the
// statements on the server itself (creating databases), schema migrations and the storage flavor, and
// the translation of driver errors into the errors the rest of the code understands.
//
// It is the boundary of the driver: outside it only the protocol-level users (the COPY of the samples
// writer, the LISTEN of the stream hub, the NOTIFY of events) import pgx, and a test over `go list`
// holds everyone else to it. It must never hand the owner's connection to handler code: handlers get a
// *TenantRunner, whose every transaction runs as the infrawatch_api role with the tenant set, so
// row-level security and the api views confine it to that tenant.
package db

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool is the owning login's connection pool. Only the process wiring and the test harness hold one:
// they make the System and TenantRunner that everyone else gets, and hand it to the users of the
// protocol itself (ingest's COPY, the stream hub's LISTEN). It is the driver's pool, named here so that
// they need not import the driver.
type Pool = pgxpool.Pool

// Config says how to reach the database and how long a tenant's statement may run. DefaultConfig holds
// the defaults; AddFlags registers the flags that set it.
type Config struct {
	// URL is a PostgreSQL connection string (postgres://user:pass@host:port/db?sslmode=…). Required.
	URL string
	// MaxConns caps the pool. Open takes zero as pgx's default, the larger of 4 and the number of CPUs
	// (tests); a server wants DefaultConfig's.
	MaxConns int
	// StatementTimeout bounds each statement of a tenant's request (the tenant runner's statement_timeout).
	StatementTimeout time.Duration
}

// DefaultStatementTimeout bounds each statement a tenant's request runs, unless the process sets
// another (serve --statement-timeout): long enough for a dashboard over years of rollups, short enough
// that one expensive request cannot hold a connection of the shared pool for long.
const DefaultStatementTimeout = 10 * time.Second

// minMaxConns leaves room for the ingest writers' two connections besides requests and lookups.
const minMaxConns = 4

// DefaultConfig is the configuration of a server process before flags: no URL, a pool of 20.
func DefaultConfig() Config {
	return Config{MaxConns: 20, StatementTimeout: DefaultStatementTimeout}
}

// AddURLFlag registers --database-url, the one database flag of the commands that only connect
// (migrate, tenant, keys).
func (c *Config) AddURLFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "database-url", c.URL, "PostgreSQL connection URL of the owning login (required)")
}

// AddFlags registers the flags of a server's pool and tenant statements, with c's values as defaults.
// The URL has a flag of its own (AddURLFlag), since `dev` makes its database itself.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.MaxConns, "database-max-conns", c.MaxConns,
		"most connections to the database, at least 4; ingest writers take 2, the rest serve requests and lookups")
	fs.DurationVar(&c.StatementTimeout, "statement-timeout", c.StatementTimeout,
		"longest a statement of a tenant's request may run in the database, at least 100ms; past it the request answers 422")
}

// Validate reports what is missing or wrong in c, naming the flag that sets it.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("--database-url is required (or INFRAWATCH_DATABASE_URL)")
	}
	if c.MaxConns < minMaxConns {
		return fmt.Errorf("--database-max-conns must be at least %d, got %d", minMaxConns, c.MaxConns)
	}
	if c.StatementTimeout < 100*time.Millisecond {
		return fmt.Errorf("--statement-timeout must be at least 100ms, got %s", c.StatementTimeout)
	}
	return nil
}

// Open connects a pool as the owning login and checks that the server answers. It needs only URL:
// MaxConns zero is pgx's default, and StatementTimeout is the tenant runner's business.
func Open(ctx context.Context, cfg Config) (*Pool, error) {
	if cfg.URL == "" {
		return nil, errors.New("--database-url is required (or INFRAWATCH_DATABASE_URL)")
	}
	if cfg.MaxConns < 0 {
		return nil, fmt.Errorf("database max connections must be zero or more, got %d", cfg.MaxConns)
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", Redact(err))
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = int32(cfg.MaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", Redact(err))
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s: %w", RedactURL(cfg.URL), Redact(err))
	}
	return pool, nil
}
