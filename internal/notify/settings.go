package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxSettingsBytes bounds a channel's settings as JSON, whatever the kind.
const MaxSettingsBytes = 16 << 10

// maxURLBytes bounds every URL setting.
const maxURLBytes = 2048

// problems collects the problems of one channel.
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
			ps.add("settings."+strings.Trim(f, `"`), "is not a setting of %s channels", kind)
		} else {
			ps.add("settings", "%s", msg)
		}
		return false
	}
	return true
}

// settingsOf decodes settings that Validate accepted; kinds call it where they may assume so.
func settingsOf[T any](settings json.RawMessage) T {
	var v T
	_ = json.Unmarshal(settings, &v)
	return v
}

// required refuses an empty text setting.
func (ps *problems) required(field, value string) bool {
	if strings.TrimSpace(value) == "" {
		ps.add(field, "is required")
		return false
	}
	return true
}

// text refuses a text setting longer than limit bytes, or one with line breaks or NUL when line is set.
func (ps *problems) text(field, value string, limit int, line bool) {
	switch {
	case len(value) > limit:
		ps.add(field, "must be at most %d bytes, not %d", limit, len(value))
	case !utf8.ValidString(value):
		ps.add(field, "must be valid UTF-8")
	case line && strings.ContainsAny(value, "\r\n\x00"):
		ps.add(field, "must not contain line breaks or NUL")
	}
}

// webURL refuses a URL that is not http(s) (https only when httpsOnly) with a host, or that carries
// user info (credentials belong in the headers, where they are secret and never logged).
func (ps *problems) webURL(field, raw string, httpsOnly bool) {
	if !ps.required(field, raw) {
		return
	}
	if len(raw) > maxURLBytes {
		ps.add(field, "must be at most %d bytes", maxURLBytes)
		return
	}
	u, err := url.Parse(raw)
	schemes := "http:// or https://"
	if httpsOnly {
		schemes = "https://"
	}
	if err != nil || u.Host == "" || u.Hostname() == "" || (u.Scheme != "https" && (httpsOnly || u.Scheme != "http")) {
		ps.add(field, "must be an %s URL with a host", schemes)
		return
	}
	if u.User != nil {
		ps.add(field, "must not carry user info; put credentials in a header")
	}
	if u.Fragment != "" {
		ps.add(field, "must not have a fragment")
	}
}
