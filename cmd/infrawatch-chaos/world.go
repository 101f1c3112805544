package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// world is what the run made in the database: its tenants, their ingest keys and a read key of tenant 0
// (the late-data probe's).
type world struct {
	tenants []uuid.UUID
	keys    []string // ingest key of each tenant
	readKey string
}

// setupWorld creates the tenants (limits lifted well above the run's load, so that no 429 of a quota
// hides in the counts), an ingest key each, and the checks, spread over the tenants and over one
// interval so that they do not all fall due together.
func setupWorld(ctx context.Context, pool *db.Pool, o options, t *targets) (*world, error) {
	w := &world{}
	sys := db.NewSystem(pool)
	for i := range o.tenants {
		created, err := tenant.Create(ctx, sys, tenant.NewTenant{Name: fmt.Sprintf("chaos %d", i),
			AdminEmail: fmt.Sprintf("admin@chaos%d.example", i), AdminPassword: "chaos-password-" + uuid.NewString()})
		if err != nil {
			return nil, err
		}
		if _, err := pool.Exec(ctx, `UPDATE app.tenants SET ingest_rate = 10000000, ingest_burst = 10000000,
		                                   max_series = 1000000, max_checks = 100000 WHERE id = $1`, created.TenantID); err != nil {
			return nil, fmt.Errorf("lift the limits of tenant %d: %w", i, err)
		}
		key, prefix, hash, err := auth.NewAPIKey()
		if err != nil {
			return nil, err
		}
		if _, err := pool.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes)
		                             VALUES ($1, 'chaos agents', $2, $3, '{ingest}')`, created.TenantID, prefix, hash); err != nil {
			return nil, fmt.Errorf("make the ingest key of tenant %d: %w", i, err)
		}
		w.tenants = append(w.tenants, created.TenantID)
		w.keys = append(w.keys, key)
	}
	key, prefix, hash, err := auth.NewAPIKey()
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes)
	                             VALUES ($1, 'chaos late-data probe', $2, $3, '{read}')`, w.tenants[0], prefix, hash); err != nil {
		return nil, fmt.Errorf("make the read key of tenant 0: %w", err)
	}
	w.readKey = key
	for i, id := range w.tenants {
		// Checks i, i+tenants, i+2·tenants… belong to tenant i; even ones are tcp, odd ones http.
		n := 0
		for c := i; c < o.checks; c += o.tenants {
			n++
		}
		if n == 0 {
			continue
		}
		_, err := pool.Exec(ctx, `
			INSERT INTO app.checks (tenant_id, name, kind, target, interval_seconds, timeout_seconds, next_run_at)
			SELECT $1, 'chaos-' || c, CASE WHEN c % 2 = 0 THEN 'tcp' ELSE 'http' END,
			       CASE WHEN c % 2 = 0 THEN $2::text ELSE $3::text || c END, $4::int, $5::int,
			       now() + make_interval(secs => random() * $4::int)
			  FROM generate_series(0, $6::int - 1) g, LATERAL (SELECT $7::int + g * $8::int) AS x(c)`,
			id, t.tcpAddr, "http://"+t.httpAddr+"/c/", o.checkInterval, checkTimeoutSeconds, n, i, o.tenants)
		if err != nil {
			return nil, fmt.Errorf("create the checks of tenant %d: %w", i, err)
		}
	}
	return w, nil
}

// targets are the loopback listeners the checks probe: a TCP port that accepts and closes, and an HTTP
// server that answers 200.
type targets struct {
	tcp, httpL        net.Listener
	srv               *http.Server
	tcpAddr, httpAddr string
}

func startTargets() (*targets, error) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	httpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tcp.Close()
		return nil, err
	}
	t := &targets{tcp: tcp, httpL: httpL, tcpAddr: tcp.Addr().String(), httpAddr: httpL.Addr().String()}
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})}
	go func() { _ = t.srv.Serve(httpL) }()
	return t, nil
}

func (t *targets) close() {
	t.tcp.Close()
	_ = t.srv.Close()
}
