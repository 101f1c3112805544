package db_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// cutter is a TCP proxy on loopback in front of the test server whose connections can be cut, as a
// server stopped in immediate mode (or a crash) cuts its sessions mid-statement.
type cutter struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln}
	t.Cleanup(func() { ln.Close(); c.cut() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, client, server)
			c.mu.Unlock()
			go func() { _, _ = io.Copy(server, client) }()
			go func() { _, _ = io.Copy(client, server) }()
		}
	}()
	return c
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// A session cut in the middle of a statement (the chaos run's immediate shutdown of PostgreSQL) fails
// with the driver's "unexpected EOF". That is a database that cannot serve now, so callers answer 503
// with Retry-After and the poller does not take it for a refused run; it was answered 500.
func TestSessionCutMidStatementIsUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test needs PostgreSQL")
	}
	_, direct := dbtest.NewEmpty(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutter(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
	defer cancel()
	pool, err := db.Open(ctx, db.Config{URL: u.String(), MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	watcher, err := db.Open(ctx, db.Config{URL: direct, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()

	failed := make(chan error, 1)
	go func() {
		var n int
		failed <- pool.QueryRow(ctx, "SELECT 1 FROM pg_sleep(30)").Scan(&n)
	}()
	for {
		var running bool
		if err := watcher.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE query = 'SELECT 1 FROM pg_sleep(30)')`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the statement never started")
		case <-time.After(10 * time.Millisecond):
		}
	}
	proxy.cut()
	err = <-failed
	if err == nil {
		t.Fatal("the statement succeeded through a cut session")
	}
	if ctx.Err() != nil {
		t.Fatalf("the hang guard ended the statement, not the cut: %v", err)
	}
	if !db.IsUnavailable(err) {
		t.Fatalf("IsUnavailable(%q) = false, want true: a cut session is a database that cannot serve now", err)
	}
	// Wrapped as callers wrap it, too.
	if wrapped := db.Translate(err); !db.IsUnavailable(wrapped) {
		t.Fatalf("IsUnavailable(Translate(%q)) = false", err)
	}
}
