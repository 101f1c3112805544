package flagenv_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/flagenv"
)

func TestName(t *testing.T) {
	if got := flagenv.Name("INFRAWATCH_", "database-max-conns"); got != "INFRAWATCH_DATABASE_MAX_CONNS" {
		t.Errorf("Name = %q", got)
	}
}

// A flag on the command line wins over its environment variable, which wins over the default; flags
// named to skip are never read from the environment; a bad value names its variable.
func TestFillPrecedence(t *testing.T) {
	env := map[string]string{
		"X_LISTEN":    "127.0.0.1:9000",
		"X_LOG_LEVEL": "debug",
		"X_YES":       "true",
		"X_EMPTY":     "",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "127.0.0.1:8080", "")
	level := fs.String("log-level", "info", "")
	yes := fs.Bool("yes", false, "")
	empty := fs.String("empty", "default", "")
	timeout := fs.Duration("timeout", time.Second, "")
	if err := fs.Parse([]string{"--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if err := flagenv.Fill(fs, "X_", lookup, "yes"); err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:9000" || *level != "warn" || *yes || *empty != "" || *timeout != time.Second {
		t.Errorf("listen %q (want the environment's), log-level %q (want the flag's), yes %v (want false: skipped), "+
			"empty %q (want the environment's empty value), timeout %s (want the default)", *listen, *level, *yes, *empty, *timeout)
	}

	env["X_TIMEOUT"] = "soon"
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Duration("timeout", time.Second, "")
	_ = fs.Parse(nil)
	if err := flagenv.Fill(fs, "X_", lookup); err == nil || !strings.Contains(err.Error(), "environment variable X_TIMEOUT") {
		t.Errorf("a bad value: %v, want an error naming X_TIMEOUT", err)
	}
}
