// Package traps receives SNMP traps for every tenant and stores each one as a log line of the tenant
// whose credential it carries, so that log searches and log alert rules see them.
//
// Tenants register their credentials (credentials.go, through the API): communities for v1 and v2c,
// USM users for v3. A community belongs to one tenant only (it is all a v1 or v2c trap says of its
// sender), and so does a USM user name with its engine id. The receiver (receiver.go) is gosnmp's
// TrapListener on --snmp-trap-listen, run by the traps role; it holds no state of its own beyond a copy
// of the enabled credentials, read again every Config.Refresh, so any number of replicas may listen
// behind one address. A trap whose community or user no tenant registered is dropped and counted
// (infrawatch_traps_dropped_total on /metrics).
//
// Each trap becomes one line of ts.logs (source snmptrap) through the ingest service: its host is the
// v1 agent address, else the snmpTrapAddress.0 varbind, else the address the datagram came from; its
// varbinds are attributes named from a small built-in table of standard MIBs (oids.go).
package traps

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config configures the trap receiver of the traps role.
type Config struct {
	// Listen is where traps are received: udp:PORT, udp:HOST:PORT or HOST:PORT (UDP either way). Empty:
	// no receiver.
	Listen string
	// Refresh is how often the credentials are read again: a new, changed or deleted credential takes
	// effect within it.
	Refresh time.Duration
	// QueueSize bounds the traps waiting to be written; past it new traps are dropped and counted.
	QueueSize int
	// BatchSize is the most traps written in one COPY.
	BatchSize int
}

// DefaultConfig is the receiver's configuration when nothing is set: the only copy of its defaults.
func DefaultConfig() Config {
	return Config{Refresh: 10 * time.Second, QueueSize: 10_000, BatchSize: 1_000}
}

// AddFlags registers the traps role's flag on fs.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "snmp-trap-listen", DefaultConfig().Listen,
		"traps role: where SNMP traps are received, udp:162, udp:HOST:PORT or HOST:PORT (empty: no trap receiver)")
}

// Validate refuses a configuration that cannot work, naming the flag.
func (c Config) Validate() error {
	if c.Listen != "" {
		if _, err := ListenAddress(c.Listen); err != nil {
			return fmt.Errorf("--snmp-trap-listen: %w", err)
		}
	}
	if c.Refresh < 0 || c.QueueSize < 0 || c.BatchSize < 0 {
		return errors.New("traps: Refresh, QueueSize and BatchSize must be zero (the default) or more")
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Refresh <= 0 {
		c.Refresh = d.Refresh
	}
	if c.QueueSize <= 0 {
		c.QueueSize = d.QueueSize
	}
	if c.BatchSize <= 0 {
		c.BatchSize = d.BatchSize
	}
	return c
}

// ListenAddress reads --snmp-trap-listen into the host:port the receiver listens on: udp:162 is every
// address's port 162.
func ListenAddress(s string) (string, error) {
	rest := s
	for _, prefix := range []string{"udp://", "udp:"} {
		if r, ok := strings.CutPrefix(s, prefix); ok {
			rest = r
			break
		}
	}
	if strings.HasPrefix(s, "tcp") {
		return "", fmt.Errorf("%q: traps are received over UDP only", s)
	}
	if port, err := strconv.Atoi(rest); err == nil {
		if port < 0 || port > 65535 {
			return "", fmt.Errorf("%q: port %d is out of range", s, port)
		}
		return net.JoinHostPort("", strconv.Itoa(port)), nil
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return "", fmt.Errorf("%q: want udp:PORT, udp:HOST:PORT or HOST:PORT", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q: %q is not a port", s, port)
	}
	return net.JoinHostPort(host, port), nil
}
