package db_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
)

// The database flags carry the documented defaults, and Validate names the flag that is wrong.
func TestConfigFlags(t *testing.T) {
	parse := func(args ...string) db.Config {
		t.Helper()
		cfg := db.DefaultConfig()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.AddURLFlag(fs)
		cfg.AddFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := parse("--database-url", "postgres://x@127.0.0.1/x")
	if cfg.MaxConns != 20 || cfg.StatementTimeout != 10*time.Second {
		t.Errorf("defaults: %+v, want 20 connections and 10s", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults with a URL: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--database-url is required"},
		{[]string{"--database-url", "postgres://x@127.0.0.1/x", "--database-max-conns", "3"}, "--database-max-conns must be at least 4, got 3"},
		{[]string{"--database-url", "postgres://x@127.0.0.1/x", "--statement-timeout", "50ms"}, "--statement-timeout must be at least 100ms"},
	} {
		if err := parse(tc.args...).Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: Validate() = %v, want %q", tc.args, err, tc.want)
		}
	}
}
