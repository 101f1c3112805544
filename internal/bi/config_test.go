package bi_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/bi"
)

func TestParseEndpoint(t *testing.T) {
	good := []struct {
		dsn  string
		want bi.Endpoint
	}{
		{"postgres://db.example.com:6432/infrawatch?sslmode=verify-full", bi.Endpoint{Host: "db.example.com", Port: 6432, Database: "infrawatch", SSLMode: "verify-full"}},
		{"postgresql://db.example.com/iw", bi.Endpoint{Host: "db.example.com", Port: 5432, Database: "iw", SSLMode: bi.DefaultSSLMode}},
		{"postgres://[2001:db8::7]:5433/iw?sslmode=disable", bi.Endpoint{Host: "2001:db8::7", Port: 5433, Database: "iw", SSLMode: "disable"}},
	}
	for _, g := range good {
		got, err := bi.ParseEndpoint(g.dsn)
		if err != nil || got != g.want {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v", g.dsn, got, err, g.want)
		}
	}
	bad := map[string]string{
		"postgres://user:secret@db.example.com/iw": "user or password",
		"postgres://user@db.example.com/iw":        "user or password",
		"mysql://db.example.com/iw":                "scheme",
		"postgres:///iw":                           "no host",
		"postgres://db.example.com":                "no database",
		"postgres://db.example.com:99999/iw":       "port",
		"postgres://db.example.com/iw?sslmode=on":  "sslmode",
		"postgres://db.example.com/iw?password=x":  "only sslmode",
		"postgres://db.example.com/a/b":            "no database",
	}
	for dsn, want := range bad {
		if _, err := bi.ParseEndpoint(dsn); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseEndpoint(%q) = %v, want an error about %q", dsn, err, want)
		}
	}
}

func TestEndpointURLRoundTrips(t *testing.T) {
	ep := bi.Endpoint{Host: "2001:db8::7", Port: 5433, Database: "iw", SSLMode: "require"}
	got := ep.URL("bi_abcdefghijklmnop", "PASS WORD/with@odd:chars")
	want := "postgres://bi_abcdefghijklmnop:PASS%20WORD%2Fwith%40odd%3Achars@[2001:db8::7]:5433/iw?sslmode=require"
	if got != want {
		t.Errorf("URL = %s, want %s", got, want)
	}
}

// The flag sets the public address, and Validate names the flag when the address is wrong.
func TestConfigFlagAndValidate(t *testing.T) {
	cfg := bi.DefaultConfig()
	if cfg.PublicDSN != "" || cfg.EnforceInterval != 5*time.Second {
		t.Fatalf("DefaultConfig = %+v", cfg)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.AddFlags(fs)
	if err := fs.Parse([]string{"--bi-public-dsn", "postgres://u:p@db/iw"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--bi-public-dsn") {
		t.Errorf("Validate = %v, want an error naming --bi-public-dsn", err)
	}
	cfg.PublicDSN = "postgres://db/iw"
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
	if err := bi.DefaultConfig().Validate(); err != nil {
		t.Errorf("the defaults (BI access off) do not validate: %v", err)
	}
}
