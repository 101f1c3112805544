// Package poller runs agentless checks (ICMP, SNMP, HTTP, TCP, DNS). This file holds what a check of
// each kind may say — its target form and settings — so that the API refuses a bad check when it is
// saved rather than when it first runs.
package poller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kinds lists the check kinds.
var Kinds = []string{"icmp", "snmp", "http", "tcp", "dns"}

// Problem is one bad field of a check, named as the API names it (target, settings.count, …).
type Problem struct {
	Field, Message string
}

// Settings of each kind. Unknown settings are refused, so a typo never silently does nothing.
type (
	ICMPSettings struct {
		Count      *int `json:"count"`       // pings per run, 1–20 (default 3)
		IntervalMS *int `json:"interval_ms"` // between pings, 100–10000 (default 1000)
		PacketSize *int `json:"packet_size"` // payload bytes, 8–1472 (default 56)
	}
	HTTPSettings struct {
		Method         string            `json:"method"`          // default GET
		Headers        map[string]string `json:"headers"`         // request headers
		Body           string            `json:"body"`            // request body
		ExpectedStatus []int             `json:"expected_status"` // default: any 2xx
		BodyContains   string            `json:"body_contains"`   // substring the body must contain
		BodyRegex      string            `json:"body_regex"`      // RE2 the body must match
		MaxRedirects   *int              `json:"max_redirects"`   // 0–10 (default 5)
		TLSVerify      *bool             `json:"tls_verify"`      // default true
	}
	TCPSettings struct{}
	DNSSettings struct {
		Server     string   `json:"server"`      // host:port to ask; default the system resolver
		RecordType string   `json:"record_type"` // A, AAAA, CNAME, MX, TXT, NS (default A)
		Expected   []string `json:"expected"`    // answers that must all be present
	}
	SNMPSettings struct {
		Version       string   `json:"version"`   // 1, 2c or 3
		Community     string   `json:"community"` // v1, v2c
		Username      string   `json:"username"`  // v3
		SecurityLevel string   `json:"security_level"`
		AuthProtocol  string   `json:"auth_protocol"`
		AuthPassword  string   `json:"auth_password"`
		PrivProtocol  string   `json:"priv_protocol"`
		PrivPassword  string   `json:"priv_password"`
		OIDs          []string `json:"oids"`       // GET these
		Walk          []string `json:"walk"`       // BULKWALK these subtrees
		Interfaces    *bool    `json:"interfaces"` // walk IF-MIB and derive per-interface rates (default true)
	}
)

// SecretSettings are settings the API never shows back; it answers them masked. Every value of an HTTP
// check's headers (SecretHeaders) is secret too: Authorization, API keys and cookies travel there.
var SecretSettings = []string{"community", "auth_password", "priv_password", "body"}

// SecretHeaders is the setting whose every value is secret.
const SecretHeaders = "headers"

// Size limits of settings. Settings are stored with the check, read at every run and quoted in
// reasons, so none may grow without bound; MaxSettingsBytes bounds the whole object whatever the kind.
const (
	MaxSettingsBytes     = 16 << 10 // the settings object as JSON
	maxTargetChars       = 2048     // app.checks.target's bound
	maxHTTPHeaders       = 32
	maxHeaderNameBytes   = 256
	maxHeaderValueBytes  = 4096
	maxHTTPBodyBytes     = 8192
	maxBodyMatchBytes    = 1024 // body_contains and body_regex
	maxExpectedStatuses  = 20
	maxDNSExpected       = 32
	maxDNSExpectedBytes  = 1024 // each expected answer
	maxSNMPOIDs          = 128
	maxSNMPWalks         = 32
	maxOIDBytes          = 256
	maxSNMPSecretBytes   = 256 // community and v3 passwords
	maxSNMPUsernameBytes = 32  // RFC 3414's bound on a USM user name
)

var (
	hostnameRE = regexp.MustCompile(`^(?i:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)(?:\.(?i:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?))*\.?$`)
	oidRE      = regexp.MustCompile(`^\.?[0-9]+(\.[0-9]+)*$`)
)

// Validate checks a check's target and settings for its kind and returns every problem.
func Validate(kind, target string, settings json.RawMessage) []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if len(settings) == 0 {
		settings = json.RawMessage("{}")
	}
	decode := func(dst any) bool {
		if len(settings) > MaxSettingsBytes {
			add("settings", "must be at most %d bytes as JSON, not %d", MaxSettingsBytes, len(settings))
			return false
		}
		dec := json.NewDecoder(bytes.NewReader(settings))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			msg := strings.TrimPrefix(err.Error(), "json: ")
			if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
				add("settings."+strings.Trim(f, `"`), "is not a setting of %s checks", kind)
			} else {
				add("settings", "%s", msg)
			}
			return false
		}
		return true
	}
	if n := utf8.RuneCountInString(target); n < 1 || n > maxTargetChars {
		add("target", "must be 1 to %d characters, not %d", maxTargetChars, n)
		return ps
	}
	switch kind {
	case "icmp":
		if !isHost(target) {
			add("target", "must be a host name or IP address, without port or scheme")
		}
		var st ICMPSettings
		if decode(&st) {
			between(add, "settings.count", st.Count, 1, 20)
			between(add, "settings.interval_ms", st.IntervalMS, 100, 10000)
			between(add, "settings.packet_size", st.PacketSize, 8, 1472)
		}
	case "tcp":
		if !isHostPort(target) {
			add("target", "must be host:port with a port from 1 to 65535")
		}
		var st TCPSettings
		decode(&st)
	case "http":
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			add("target", "must be an http:// or https:// URL with a host and no user info")
		}
		var st HTTPSettings
		if decode(&st) {
			if st.Method != "" && !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, st.Method) {
				add("settings.method", "must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS")
			}
			if len(st.ExpectedStatus) > maxExpectedStatuses {
				add("settings.expected_status", "must list at most %d statuses", maxExpectedStatuses)
			}
			for _, code := range st.ExpectedStatus {
				if code < 100 || code > 599 {
					add("settings.expected_status", "status %d is not an HTTP status", code)
				}
			}
			atMost(add, "settings.body", st.Body, maxHTTPBodyBytes)
			atMost(add, "settings.body_contains", st.BodyContains, maxBodyMatchBytes)
			atMost(add, "settings.body_regex", st.BodyRegex, maxBodyMatchBytes)
			if st.BodyRegex != "" && len(st.BodyRegex) <= maxBodyMatchBytes {
				if _, err := regexp.Compile(st.BodyRegex); err != nil {
					add("settings.body_regex", "is not a valid regular expression: %v", err)
				}
			}
			between(add, "settings.max_redirects", st.MaxRedirects, 0, 10)
			if len(st.Headers) > maxHTTPHeaders {
				add("settings.headers", "must have at most %d headers, not %d", maxHTTPHeaders, len(st.Headers))
			}
			for _, name := range slices.Sorted(maps.Keys(st.Headers)) {
				if name == "" || len(name) > maxHeaderNameBytes || strings.ContainsAny(name, " :\r\n\x00") {
					add("settings.headers", "header name %.64q is not valid (at most %d bytes, no spaces, colons or line breaks)",
						name, maxHeaderNameBytes)
					continue
				}
				value := st.Headers[name]
				atMost(add, "settings.headers."+name, value, maxHeaderValueBytes)
				if strings.ContainsAny(value, "\r\n\x00") {
					add("settings.headers."+name, "must not contain line breaks or NUL")
				}
			}
		}
	case "dns":
		if !isHost(target) || net.ParseIP(target) != nil {
			add("target", "must be a DNS name to resolve")
		}
		var st DNSSettings
		if decode(&st) {
			if st.Server != "" && !isHostPort(st.Server) {
				add("settings.server", "must be host:port of a DNS server")
			}
			if st.RecordType != "" && !slices.Contains([]string{"A", "AAAA", "CNAME", "MX", "TXT", "NS"}, st.RecordType) {
				add("settings.record_type", "must be A, AAAA, CNAME, MX, TXT or NS")
			}
			if len(st.Expected) > maxDNSExpected {
				add("settings.expected", "must list at most %d answers", maxDNSExpected)
			}
			for _, e := range st.Expected {
				if len(e) > maxDNSExpectedBytes {
					add("settings.expected", "each answer must be at most %d bytes", maxDNSExpectedBytes)
					break
				}
			}
		}
	case "snmp":
		if !isHostPort(target) {
			add("target", "must be host:port, usually port 161")
		}
		var st SNMPSettings
		if decode(&st) {
			validateSNMP(add, st)
		}
	default:
		add("kind", "must be one of %s", strings.Join(Kinds, ", "))
	}
	return ps
}

func validateSNMP(add func(string, string, ...any), st SNMPSettings) {
	atMost(add, "settings.community", st.Community, maxSNMPSecretBytes)
	atMost(add, "settings.username", st.Username, maxSNMPUsernameBytes)
	atMost(add, "settings.auth_password", st.AuthPassword, maxSNMPSecretBytes)
	atMost(add, "settings.priv_password", st.PrivPassword, maxSNMPSecretBytes)
	if len(st.OIDs) > maxSNMPOIDs {
		add("settings.oids", "must list at most %d OIDs, not %d", maxSNMPOIDs, len(st.OIDs))
	}
	if len(st.Walk) > maxSNMPWalks {
		add("settings.walk", "must list at most %d subtrees, not %d", maxSNMPWalks, len(st.Walk))
	}
	switch st.Version {
	case "1", "2c":
		if st.Community == "" {
			add("settings.community", "is required for SNMP v%s", st.Version)
		}
	case "3":
		if st.Username == "" {
			add("settings.username", "is required for SNMP v3")
		}
		level := st.SecurityLevel
		if level == "" {
			level = "authPriv"
		}
		if !slices.Contains([]string{"noAuthNoPriv", "authNoPriv", "authPriv"}, level) {
			add("settings.security_level", "must be noAuthNoPriv, authNoPriv or authPriv")
		}
		if level != "noAuthNoPriv" {
			if !slices.Contains([]string{"MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"}, st.AuthProtocol) {
				add("settings.auth_protocol", "must be MD5, SHA, SHA224, SHA256, SHA384 or SHA512")
			}
			if len(st.AuthPassword) < 8 {
				add("settings.auth_password", "must be at least 8 characters")
			}
		}
		if level == "authPriv" {
			if !slices.Contains([]string{"DES", "AES", "AES192", "AES256"}, st.PrivProtocol) {
				add("settings.priv_protocol", "must be DES, AES, AES192 or AES256")
			}
			if len(st.PrivPassword) < 8 {
				add("settings.priv_password", "must be at least 8 characters")
			}
		}
	default:
		add("settings.version", "must be 1, 2c or 3")
	}
	for _, list := range []struct {
		field string
		oids  []string
	}{{"settings.oids", st.OIDs}, {"settings.walk", st.Walk}} {
		for _, o := range list.oids {
			if len(o) > maxOIDBytes || !oidRE.MatchString(o) {
				add(list.field, "%.64q is not a numeric OID of at most %d characters", o, maxOIDBytes)
				break
			}
		}
	}
}

// atMost refuses a text setting longer than limit bytes.
func atMost(add func(string, string, ...any), field, value string, limit int) {
	if len(value) > limit {
		add(field, "must be at most %d bytes, not %d", limit, len(value))
	}
}

func between(add func(string, string, ...any), field string, v *int, lo, hi int) {
	if v != nil && (*v < lo || *v > hi) {
		add(field, "must be from %d to %d", lo, hi)
	}
}

func isHost(s string) bool {
	if net.ParseIP(strings.Trim(s, "[]")) != nil {
		return true
	}
	return len(s) <= 253 && hostnameRE.MatchString(s)
}

func isHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535 && isHost(host)
}
