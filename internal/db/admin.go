package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Admin runs what comes before any infrawatch database: statements on the server itself, as a
// superuser, to create and drop databases (`infrawatch dev` makes its own; the test harness makes one
// per test). Each call opens a connection of its own and closes it.
type Admin struct {
	url string
}

// NewAdmin returns an Admin that connects with url, a superuser's connection to any database of the
// server (postgres, say).
func NewAdmin(url string) *Admin { return &Admin{url: url} }

func (a *Admin) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, a.url)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", RedactURL(a.url), Redact(err))
	}
	return conn, nil
}

// Ping reports whether the server accepts a connection.
func (a *Admin) Ping(ctx context.Context) error {
	conn, err := a.connect(ctx)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// EnsureDatabase creates the database name unless it exists.
func (a *Admin) EnsureDatabase(ctx context.Context, name string) error {
	err := a.CreateDatabase(ctx, name, "")
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	return err
}

// CreateDatabase creates the database name, a copy of template when it is not empty.
func (a *Admin) CreateDatabase(ctx context.Context, name, template string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if err := a.exec(ctx, sql); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// MakeTemplate turns the database name into a template that CREATE DATABASE … TEMPLATE copies: it takes
// no connection any more, and those it had are ended (TimescaleDB's job scheduler holds one, and a
// template with a connection cannot be copied).
func (a *Admin) MakeTemplate(ctx context.Context, name string) error {
	conn, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"); err != nil {
		return fmt.Errorf("make %s a template: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
		return fmt.Errorf("end the connections to template %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops the database name, a template too, ending its connections; a database that does
// not exist is no error.
func (a *Admin) DropDatabase(ctx context.Context, name string) error {
	conn, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var template bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&template)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	if template {
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE false"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// TimescaleUsable reports whether the server can build the timescale flavor (TimescaleDB installed and
// preloaded), and if not, why.
func (a *Admin) TimescaleUsable(ctx context.Context) (bool, string, error) {
	conn, err := a.connect(ctx)
	if err != nil {
		return false, "", err
	}
	defer conn.Close(ctx)
	return timescaleUsable(ctx, conn)
}

func (a *Admin) exec(ctx context.Context, sql string) error {
	conn, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
