package api_test

import (
	"flag"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/api"
)

// The HTTP server's flags are registered by api itself, with DefaultConfig's values as their defaults;
// Validate names the flag that is wrong.
func TestConfigFlags(t *testing.T) {
	def := api.DefaultConfig()
	var cfg api.Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.AddFlags(fs)
	for name, want := range map[string]string{"read-timeout": def.HTTP.Read.String(), "idle-timeout": def.HTTP.Idle.String(),
		"operator-token": "", "trusted-proxies": "", "heavy-reads-per-tenant": "0", "heavy-reads": "0"} {
		f := fs.Lookup(name)
		switch {
		case f == nil:
			t.Errorf("--%s is not registered", name)
		case f.DefValue != want:
			t.Errorf("--%s defaults to %q, want %q", name, f.DefValue, want)
		}
	}
	if def.HTTP.Read != time.Minute || def.HTTP.Idle != time.Minute || def.HTTP.ReadHeader != 10*time.Second {
		t.Errorf("default HTTP timeouts %+v, want the documented 60s, 60s and 10s for headers", def.HTTP)
	}
	if fs.Lookup("statement-timeout") != nil {
		t.Error("api registers --statement-timeout, which is the database's")
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}

	token := strings.Repeat("x", api.MinOperatorTokenLength)
	if err := fs.Parse([]string{"--read-timeout", "5s", "--idle-timeout", "7s", "--operator-token", token,
		"--trusted-proxies", "10.0.0.0/8, 192.0.2.7", "--heavy-reads-per-tenant", "2", "--heavy-reads", "6"}); err != nil {
		t.Fatal(err)
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	if cfg.HTTP.Read != 5*time.Second || cfg.HTTP.Idle != 7*time.Second || cfg.OperatorToken != token ||
		!slices.Equal(cfg.TrustedProxies, proxies) || cfg.HeavyReads.PerTenant != 2 || cfg.HeavyReads.Total != 6 {
		t.Errorf("parsed %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a valid configuration is refused: %v", err)
	}

	for _, c := range []struct {
		flag   string
		change func(*api.Config)
	}{
		{"--read-timeout", func(c *api.Config) { c.HTTP.Read = 0 }},
		{"--idle-timeout", func(c *api.Config) { c.HTTP.Idle = -time.Second }},
		{"--operator-token must be at least 32 characters", func(c *api.Config) { c.OperatorToken = token[1:] }},
		{"--heavy-reads-per-tenant", func(c *api.Config) { c.HeavyReads.PerTenant = -1 }},
		{"--heavy-reads ", func(c *api.Config) { c.HeavyReads.Total = -1 }},
	} {
		bad := cfg
		c.change(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("Validate = %v, want an error naming %s", err, c.flag)
		}
	}
}
