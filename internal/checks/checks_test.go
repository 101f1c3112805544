package checks

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// The registry answers every kind by its name, and what a kind says of itself holds together: its
// secret settings are settings it has (else the API would mask nothing), and a kind without secrets
// sends them nowhere.
func TestRegistry(t *testing.T) {
	names := Names()
	if want := []string{"icmp", "snmp", "http", "tcp", "dns", "prometheus"}; !slices.Equal(names, want) {
		t.Errorf("Names() = %v, want %v", names, want)
	}
	for _, name := range names {
		k, ok := Lookup(name)
		if !ok || k.Name() != name {
			t.Errorf("Lookup(%q) = %v, %v", name, k, ok)
			continue
		}
		secrets := k.Secrets()
		for _, field := range secrets.Settings {
			settings, _ := json.Marshal(map[string]string{field: "x"})
			for _, p := range k.Validate("x", settings) {
				if p.Field == "settings."+field && strings.HasPrefix(p.Message, "is not a setting") {
					t.Errorf("%s: secret setting %q is not a setting of the kind", name, field)
				}
			}
		}
		for _, field := range secrets.Maps {
			settings, _ := json.Marshal(map[string]map[string]string{field: {}})
			for _, p := range k.Validate("x", settings) {
				if p.Field == "settings."+field && strings.HasPrefix(p.Message, "is not a setting") {
					t.Errorf("%s: secret map %q is not a setting of the kind", name, field)
				}
			}
		}
	}
	if _, ok := Lookup("ssh"); ok {
		t.Error(`Lookup("ssh") found a kind that is not registered`)
	}
	if ps := Validate("ssh", "example.com", nil); len(ps) != 1 || ps[0].Field != "kind" ||
		ps[0].Message != "must be one of icmp, snmp, http, tcp, dns, prometheus" {
		t.Errorf(`Validate("ssh", …) = %v, want the kind refused, naming the kinds`, ps)
	}
}

// Each kind's Endpoints name what the guard must check when a check is saved, and TargetHost the host
// a check without one stores its samples under; the API and the store ask the kind for them.
func TestEndpointsAndTargetHost(t *testing.T) {
	for _, tc := range []struct {
		kind, target, settings string
		endpoints              []Endpoint
		host                   string
	}{
		{"icmp", "router.example.com", `{}`, []Endpoint{{"target", "router.example.com"}}, "router.example.com"},
		{"tcp", "db.example.com:5432", `{}`, []Endpoint{{"target", "db.example.com"}}, "db.example.com"},
		{"tcp", "[2001:db8::1]:22", `{}`, []Endpoint{{"target", "2001:db8::1"}}, "2001:db8::1"},
		{"snmp", "switch.example.com:161", `{"version":"2c","community":"c"}`, []Endpoint{{"target", "switch.example.com"}},
			"switch.example.com"},
		{"http", "https://www.example.com:8443/health", `{}`, []Endpoint{{"target", "www.example.com"}}, "www.example.com"},
		// A DNS check connects to its server, not to the name it asks about.
		{"dns", "example.com", `{}`, nil, "example.com"},
		{"dns", "example.com", `{"server":"ns1.example.net:53"}`, []Endpoint{{"settings.server", "ns1.example.net"}}, "example.com"},
		{"prometheus", "http://node-1.example.com:9100/metrics", `{}`, []Endpoint{{"target", "node-1.example.com"}}, "node-1.example.com"},
	} {
		k, _ := Lookup(tc.kind)
		if got := k.Endpoints(tc.target, json.RawMessage(tc.settings)); !slices.Equal(got, tc.endpoints) {
			t.Errorf("%s %s %s: Endpoints = %v, want %v", tc.kind, tc.target, tc.settings, got, tc.endpoints)
		}
		if got := k.TargetHost(tc.target); got != tc.host {
			t.Errorf("%s %s: TargetHost = %q, want %q", tc.kind, tc.target, got, tc.host)
		}
	}
}

// An update that changes where a check sends its secrets must send them again: for SNMP the agent
// and the version, for HTTP the URL.
func TestDestination(t *testing.T) {
	snmp, _ := Lookup("snmp")
	v2 := json.RawMessage(`{"version":"2c","community":"c"}`)
	v1 := json.RawMessage(`{"version":"1","community":"c"}`)
	if snmp.Destination("a:161", v2) != snmp.Destination("a:161", json.RawMessage(`{"version":"2c","community":"d"}`)) {
		t.Error("snmp: a new community changed the destination")
	}
	if snmp.Destination("a:161", v2) == snmp.Destination("a:161", v1) || snmp.Destination("a:161", v2) == snmp.Destination("b:161", v2) {
		t.Error("snmp: another version or agent kept the destination")
	}
	http, _ := Lookup("http")
	if http.Destination("https://a/", nil) == http.Destination("https://b/", nil) {
		t.Error("http: another URL kept the destination")
	}
}
