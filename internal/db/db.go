// Package db connects infrawatch to PostgreSQL: the connection pool, the tenant-scoped runner that is
// the only way request handlers reach the database, schema migrations and the storage flavor, and the
// translation of driver errors into the errors the rest of the code understands.
//
// It must never hand the owner's connection to handler code: handlers get a *TenantRunner, whose every
// transaction runs as the infrawatch_api role with the tenant set, so row-level security and the api
// views confine it to that tenant.
package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Config says how to reach the database.
type Config struct {
	// URL is a PostgreSQL connection string (postgres://user:pass@host:port/db?sslmode=…). Required.
	URL string
	// MaxConns caps the pool. Zero means pgx's default: the larger of 4 and the number of CPUs.
	MaxConns int32
}

// Validate reports what is missing or wrong in c.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("database URL is required (--database-url or INFRAWATCH_DATABASE_URL)")
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("database max connections must be zero or more, got %d", c.MaxConns)
	}
	return nil
}

// Open connects a pool as the owning login and checks that the server answers.
func Open(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", Redact(err))
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
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
