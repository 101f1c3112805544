package api

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"time"

	"github.com/infrawatch/infrawatch/internal/query"
)

// Config is what the HTTP server is tuned by: the flags of `serve` that concern it, and limits that
// have no flag yet. DefaultConfig holds the only copy of the defaults; a zero field of a Config handed
// to NewHandler or NewHTTPServer takes its default too.
type Config struct {
	// HTTP bounds how long clients may take to send a request and how long idle connections stay open
	// (--read-timeout, --idle-timeout; the headers' own bound has no flag).
	HTTP HTTPTimeouts
	// TrustedProxies are the networks of the reverse proxies whose X-Forwarded-For and X-Real-IP name
	// the client's address; from anyone else these headers are ignored. Empty: trust no proxy
	// (--trusted-proxies).
	TrustedProxies []netip.Prefix
	// OperatorToken is the platform operator's credential for /api/v1/operator; empty turns those routes
	// off (--operator-token).
	OperatorToken string
	// HeavyReads bound the concurrent heavy reads (ranges, log searches, check results, series) per tenant
	// and in all (--heavy-reads-per-tenant, --heavy-reads).
	HeavyReads HeavyReadLimits
	// Rates bound request rates.
	Rates RateLimits
	// Query bounds the dashboard query API.
	Query query.Limits
	// Stream tunes the live stream.
	Stream StreamConfig
}

// MinOperatorTokenLength keeps the operator token out of reach of guessing.
const MinOperatorTokenLength = 32

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		// A 16 MiB push (the largest accepted) must arrive within Read, at 2.3 Mbit/s or more.
		HTTP: HTTPTimeouts{ReadHeader: 10 * time.Second, Read: 60 * time.Second, Idle: 60 * time.Second},
		// PerTenant and Total at zero follow the database pool (HeavyReadLimits).
		HeavyReads: HeavyReadLimits{Wait: 2 * time.Second},
		// Generous for dashboards, tight for password guessing.
		Rates: RateLimits{TenantRate: 100, TenantBurst: 200, CredentialRate: 50, CredentialBurst: 100,
			LoginRate: 10.0 / 60, LoginBurst: 10, LoginAccountRate: 100.0 / 60, LoginAccountBurst: 100,
			AddressRate: 60.0 / 60, AddressBurst: 60, AddressConcurrency: 8},
		Query: query.DefaultLimits(),
		Stream: StreamConfig{MaxIDs: 1000, Heartbeat: 15 * time.Second, Retry: 3 * time.Second, SamplesInterval: time.Second,
			SamplesLookback: time.Hour, ReplayMax: 1000, ReplayWindow: 24 * time.Hour, WriteTimeout: 30 * time.Second,
			Recheck: 5 * time.Second},
	}
}

// AddFlags registers the flags of the HTTP server on fs, with their defaults, writing into c.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	def := DefaultConfig()
	fs.DurationVar(&c.HTTP.Read, "read-timeout", def.HTTP.Read,
		"most time a client may take to send a request, headers and body (a 16 MiB push needs 2.3 Mbit/s at 60s); headers alone get at most 10s")
	fs.DurationVar(&c.HTTP.Idle, "idle-timeout", def.HTTP.Idle, "how long an idle keep-alive connection stays open")
	fs.StringVar(&c.OperatorToken, "operator-token", def.OperatorToken,
		"secret of at least 32 characters that authenticates the platform operator on /api/v1/operator (empty: those routes answer 401); prefer the environment variable")
	fs.Var(networks{&c.TrustedProxies}, "trusted-proxies",
		"comma-separated networks (CIDR) of reverse proxies whose X-Forwarded-For and X-Real-IP name the client's address; from other peers those headers are ignored (empty: trust none)")
	fs.IntVar(&c.HeavyReads.PerTenant, "heavy-reads-per-tenant", def.HeavyReads.PerTenant,
		"most heavy reads (ranges, log searches, check results, series) of one tenant at once in this process, unless the tenant has a max_heavy_reads of its own; 0: 4, or a quarter of --database-max-conns when less")
	fs.IntVar(&c.HeavyReads.Total, "heavy-reads", def.HeavyReads.Total,
		"most heavy reads of all tenants at once in this process; 0: half of --database-max-conns")
}

// Validate names the flag whose value the server cannot run with.
func (c Config) Validate() error {
	var errs []error
	if c.HTTP.Read <= 0 {
		errs = append(errs, fmt.Errorf("--read-timeout must be positive, got %s", c.HTTP.Read))
	}
	if c.HTTP.Idle <= 0 {
		errs = append(errs, fmt.Errorf("--idle-timeout must be positive, got %s", c.HTTP.Idle))
	}
	if c.OperatorToken != "" && len(c.OperatorToken) < MinOperatorTokenLength {
		errs = append(errs, fmt.Errorf("--operator-token must be at least %d characters, or empty to turn the operator API off; "+
			"make one with `openssl rand -base64 33`", MinOperatorTokenLength))
	}
	if c.HeavyReads.PerTenant < 0 {
		errs = append(errs, fmt.Errorf("--heavy-reads-per-tenant must be zero (the default) or more, got %d", c.HeavyReads.PerTenant))
	}
	if c.HeavyReads.Total < 0 {
		errs = append(errs, fmt.Errorf("--heavy-reads must be zero (the default) or more, got %d", c.HeavyReads.Total))
	}
	return errors.Join(errs...)
}
