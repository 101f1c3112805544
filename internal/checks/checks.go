// Package checks is the registry of check kinds: for each kind, what a check may say (its target and
// settings), what it connects to (for the SSRF guard), which of its settings are secret, and how it is
// probed. The API asks it to validate, guard and mask checks; the poller asks it to probe them. Nothing
// here schedules or stores runs: internal/poller does.
//
// Each kind is one file — icmp.go, snmp.go, http.go, tcp.go, dns.go, prometheus.go — holding a type that implements
// Kind, its settings type and its probe. Machinery a kind keeps across runs may sit in a second file of
// that kind: icmp_pinger.go (the process's shared ICMP sockets), snmp_counters.go (interface counters
// kept between runs, for rates). What every kind shares is here (the registry), in settings.go
// (decoding and bounding settings), prober.go (running a probe, bounding its outcome) and guard.go (the
// SSRF guard).
//
// Adding a kind:
//
//  1. Write its file: a type implementing Kind, its settings type with every setting bounded (settings
//     are stored with the check and quoted in reasons), and its tests beside it. Kinds without secrets
//     embed noSecrets.
//  2. Register it: add it to registry and to the compile-time assertion list below, and to the names
//     TestRegistry expects.
//  3. Allow it in the database: a migration that replaces the CHECK on app.checks.kind
//     (checks_kind_check, created in migrations/000003_inventory.up.sql), its down migration putting
//     the old list back; internal/poller's TestDatabaseAllowsExactlyTheRegisteredKinds fails until
//     the two agree.
//  4. Document it: the Checks section of README.md and the kind enum and settings schema of
//     internal/api/openapi.json.
package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind is one kind of check. Its methods are called with the check's own target and settings, as
// stored or as a user sends them; all but Validate may assume that Validate found no problem.
type Kind interface {
	// Name is the kind as app.checks.kind stores it and the API names it: icmp, snmp, …
	Name() string
	// Validate returns every problem of a target (at most maxTargetChars characters) and settings, each
	// naming its field as the API does (target, settings.count, settings.headers.X).
	Validate(target string, settings json.RawMessage) []Problem
	// Endpoints are the hosts a check connects to, each with the field that names it (target,
	// settings.server), for the guard's check when a check is saved. A probe checks every connection
	// again.
	Endpoints(target string, settings json.RawMessage) []Endpoint
	// TargetHost is the host a check without one stores its metric samples under.
	TargetHost(target string) string
	// Secrets are the settings the API never shows back.
	Secrets() Secrets
	// Destination is where a check sends its secrets. An update that changes it must send every secret
	// again, so that whoever may edit a check cannot point its stored secrets at a host of theirs.
	Destination(target string, settings json.RawMessage) string
	// Probe runs a check once; ctx ends at the check's timeout. p holds what probes share (the guard,
	// SNMP counters). A problem of the target or the settings is a down outcome saying so.
	Probe(ctx context.Context, p *Prober, c Check) Outcome
}

// registry holds every kind, in the order the API lists them.
var registry = []Kind{icmpKind{}, snmpKind{}, httpKind{}, tcpKind{}, dnsKind{}, promKind{}}

// Every kind implements Kind, checked when the package compiles.
var (
	_ Kind = icmpKind{}
	_ Kind = snmpKind{}
	_ Kind = httpKind{}
	_ Kind = tcpKind{}
	_ Kind = dnsKind{}
	_ Kind = promKind{}
)

// Lookup returns the kind named name.
func Lookup(name string) (Kind, bool) {
	for _, k := range registry {
		if k.Name() == name {
			return k, true
		}
	}
	return nil, false
}

// Names lists the kinds' names, in the registry's order.
func Names() []string {
	names := make([]string, len(registry))
	for i, k := range registry {
		names[i] = k.Name()
	}
	return names
}

// Problem is one bad field of a check, named as the API names it (kind, target, settings.count, …).
type Problem struct {
	Field, Message string
}

// Endpoint is a host a check connects to, and the field of the check that names it.
type Endpoint struct {
	Field, Host string
}

// Secrets are the settings of a kind that the API never shows back: it answers them masked.
type Secrets struct {
	// Settings are settings whose value is secret (an SNMP community, an HTTP body).
	Settings []string
	// Maps are settings that are objects whose every value is secret (HTTP headers: Authorization, API
	// keys and cookies travel there).
	Maps []string
}

// noSecrets is embedded by the kinds that have no secret setting.
type noSecrets struct{}

func (noSecrets) Secrets() Secrets { return Secrets{} }

func (noSecrets) Destination(target string, _ json.RawMessage) string { return target }

// maxTargetChars is app.checks.target's bound.
const maxTargetChars = 2048

// Validate checks a check's kind, target and settings and returns every problem.
func Validate(kind, target string, settings json.RawMessage) []Problem {
	k, ok := Lookup(kind)
	if !ok {
		return []Problem{{Field: "kind", Message: "must be one of " + strings.Join(Names(), ", ")}}
	}
	if n := utf8.RuneCountInString(target); n < 1 || n > maxTargetChars {
		return []Problem{{Field: "target", Message: fmt.Sprintf("must be 1 to %d characters, not %d", maxTargetChars, n)}}
	}
	return k.Validate(target, settings)
}
