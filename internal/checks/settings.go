package checks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// MaxSettingsBytes bounds a check's settings object as JSON, whatever the kind: settings are stored with
// the check, read at every run and quoted in reasons, so none may grow without bound.
const MaxSettingsBytes = 16 << 10

var hostnameRE = regexp.MustCompile(`^(?i:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)(?:\.(?i:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?))*\.?$`)

// problems collects the problems of one check.
type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// decodeSettings decodes settings into dst, a kind's settings type, refusing settings over
// MaxSettingsBytes and any setting the kind does not have, so that a typo never silently does nothing.
// It reports whether dst may be validated further.
func decodeSettings(ps *problems, kind string, settings json.RawMessage, dst any) bool {
	if len(settings) == 0 {
		settings = json.RawMessage("{}")
	}
	if len(settings) > MaxSettingsBytes {
		ps.add("settings", "must be at most %d bytes as JSON, not %d", MaxSettingsBytes, len(settings))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(settings))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
			ps.add("settings."+strings.Trim(f, `"`), "is not a setting of %s checks", kind)
		} else {
			ps.add("settings", "%s", msg)
		}
		return false
	}
	return true
}

// atMost refuses a text setting longer than limit bytes.
func (ps *problems) atMost(field, value string, limit int) {
	if len(value) > limit {
		ps.add(field, "must be at most %d bytes, not %d", limit, len(value))
	}
}

// between refuses a number setting, when set, outside lo to hi.
func (ps *problems) between(field string, v *int, lo, hi int) {
	if v != nil && (*v < lo || *v > hi) {
		ps.add(field, "must be from %d to %d", lo, hi)
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

// hostOf is the host of a host:port target, or the target itself when it has no port.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
