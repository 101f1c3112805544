package bi

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is what BI access runs with: where BI tools connect, and how often the enforcer looks at
// their sessions. DefaultConfig holds the only copy of the defaults.
type Config struct {
	// PublicDSN is the address BI tools reach the database at, as a postgres:// URL without a user or
	// password: postgres://db.example.com:5432/infrawatch?sslmode=require (--bi-public-dsn). New
	// credentials answer its host, port, database and sslmode. Empty: BI access is off, and creating or
	// rotating a credential answers that the server does not offer it.
	PublicDSN string
	// EnforceInterval is the time between two passes of the enforcer (no flag).
	EnforceInterval time.Duration
}

// DefaultConfig returns the defaults: no public address (BI access off), an enforcer pass every 5 s.
func DefaultConfig() Config {
	return Config{EnforceInterval: 5 * time.Second}
}

// AddFlags registers --bi-public-dsn on fs, with c's value as its default.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.PublicDSN, "bi-public-dsn", c.PublicDSN,
		"where BI tools reach the database, a postgres:// URL without user or password, e.g. "+
			"postgres://db.example.com:5432/infrawatch?sslmode=require; new BI credentials answer its host, port, database and sslmode "+
			"(empty: BI access is off)")
}

// Validate names the flag whose value BI access cannot run with.
func (c Config) Validate() error {
	if c.PublicDSN != "" {
		if _, err := ParseEndpoint(c.PublicDSN); err != nil {
			return fmt.Errorf("--bi-public-dsn: %w", err)
		}
	}
	if c.EnforceInterval < 0 {
		return fmt.Errorf("bi: the enforce interval must not be negative, got %s", c.EnforceInterval)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.EnforceInterval == 0 {
		c.EnforceInterval = DefaultConfig().EnforceInterval
	}
	return c
}

// Endpoint is where BI tools connect.
type Endpoint struct {
	Host     string
	Port     int
	Database string
	// SSLMode is libpq's sslmode: disable, allow, prefer, require, verify-ca or verify-full.
	SSLMode string
}

// sslModes are libpq's values of sslmode.
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// DefaultSSLMode is the sslmode of a public address that names none: a BI login's password crosses the
// network, so the connection is encrypted unless the operator says otherwise.
const DefaultSSLMode = "require"

// ParseEndpoint reads a public address: postgres:// or postgresql://, a host, an optional port (5432), a
// database, and sslmode as its only parameter (DefaultSSLMode when absent). A user or password is
// refused: each login has its own, and the address is shown to every tenant.
func ParseEndpoint(dsn string) (Endpoint, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return Endpoint{}, errors.New("not a URL; write postgres://host:port/database?sslmode=require")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return Endpoint{}, fmt.Errorf("scheme %q: use postgres://", u.Scheme)
	}
	if u.User != nil {
		return Endpoint{}, errors.New("must not name a user or password: every BI login has its own, and this address is shown to every tenant")
	}
	ep := Endpoint{Host: u.Hostname(), Port: 5432, Database: strings.TrimPrefix(u.Path, "/"), SSLMode: DefaultSSLMode}
	if ep.Host == "" {
		return Endpoint{}, errors.New("names no host")
	}
	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return Endpoint{}, fmt.Errorf("port %q: want 1 to 65535", p)
		}
		ep.Port = port
	}
	if ep.Database == "" || strings.Contains(ep.Database, "/") {
		return Endpoint{}, errors.New("names no database: write postgres://host:port/database")
	}
	for key, values := range u.Query() {
		if key != "sslmode" {
			return Endpoint{}, fmt.Errorf("parameter %q: only sslmode may be given", key)
		}
		if mode := values[len(values)-1]; !slices.Contains(sslModes, mode) {
			return Endpoint{}, fmt.Errorf("sslmode %q: use one of %s", mode, strings.Join(sslModes, ", "))
		} else {
			ep.SSLMode = mode
		}
	}
	return ep, nil
}

// URL is the connection URL of login with password at the endpoint, for tools that take one (psql,
// Superset's SQLAlchemy URI with postgresql://). Login names and the passwords Service makes need no
// escaping; others are escaped.
func (e Endpoint) URL(login, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(login, password),
		Host: net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), Path: "/" + e.Database,
		RawQuery: url.Values{"sslmode": {e.SSLMode}}.Encode()}
	return u.String()
}
