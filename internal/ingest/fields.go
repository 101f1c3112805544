package ingest

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// What a push may hold, field by field. Names follow their columns (app.series.name, app.hosts.name);
// host labels follow the hosts API; host metadata and log attributes, free-form JSON objects, are bounded
// so that one agent cannot make GET /hosts or a log search answer megabytes.
const (
	// MaxMetricNameChars bounds a metric (series) name, as the CHECK on app.series.name does.
	MaxMetricNameChars = 1024
	// MaxHostNameChars bounds a host name, as the CHECK on app.hosts.name does.
	MaxHostNameChars = 255
	// MaxHostLabels, MaxHostLabelNameBytes and MaxHostLabelValueBytes bound a host's labels.
	MaxHostLabels          = 30
	MaxHostLabelNameBytes  = 128
	MaxHostLabelValueBytes = 1024
)

// ObjectLimits bound a free-form JSON object of a push: how many keys, how long each key, how large each
// value and the whole object measured as JSON text (escapes aside).
type ObjectLimits struct {
	Keys, KeyBytes, ValueBytes, TotalBytes int
}

var (
	// HostMetadataLimits bound host.metadata, per host and so per push.
	HostMetadataLimits = ObjectLimits{Keys: 64, KeyBytes: 128, ValueBytes: 4 << 10, TotalBytes: 64 << 10}
	// LogAttributeLimits bound the attributes of one log entry.
	LogAttributeLimits = ObjectLimits{Keys: 64, KeyBytes: 128, ValueBytes: 4 << 10, TotalBytes: 16 << 10}
)

// FieldError names a field of a push (host.labels.env) and what is wrong with it.
type FieldError struct {
	Field, Message string
}

// InvalidError refuses a whole push because of the fields it names; the API answers it with a 400
// that lists them.
type InvalidError struct {
	Fields []FieldError
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid push: " + strings.Join(parts, "; ")
}

// storable reports whether PostgreSQL can store s as text and in jsonb: valid UTF-8 without NUL.
func storable(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// CheckText says what keeps s out of PostgreSQL text and jsonb — bytes that are not UTF-8, a NUL — or ""
// when nothing does.
func CheckText(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "holds a NUL character"
	}
	return ""
}

// quoteCut quotes s for a message, cut to a readable length.
func quoteCut(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}

// CheckMetricName says why name cannot name a series, or "".
func CheckMetricName(name string) string {
	switch {
	case name == "":
		return "the metric name is empty"
	case len(name) > MaxMetricNameChars && utf8.RuneCountInString(name) > MaxMetricNameChars:
		return fmt.Sprintf("the metric name is longer than %d characters", MaxMetricNameChars)
	}
	if why := CheckText(name); why != "" {
		return "the metric name " + why
	}
	return ""
}

// CheckHostName says why name cannot name a host, or "".
func CheckHostName(name string) string {
	if name == "" || len(name) > MaxHostNameChars && utf8.RuneCountInString(name) > MaxHostNameChars {
		return fmt.Sprintf("must be 1 to %d characters", MaxHostNameChars)
	}
	if why := CheckText(name); why != "" {
		return why
	}
	return ""
}

// CheckHostLabels checks a host's labels, naming them under field (host.labels, labels).
func CheckHostLabels(field string, labels map[string]string) []FieldError {
	if len(labels) > MaxHostLabels {
		return []FieldError{{field, fmt.Sprintf("has %d labels; at most %d are allowed", len(labels), MaxHostLabels)}}
	}
	var errs []FieldError
	for k, v := range labels {
		switch {
		case k == "" || len(k) > MaxHostLabelNameBytes:
			errs = append(errs, FieldError{field, fmt.Sprintf("label name %s must be 1 to %d bytes", quoteCut(k), MaxHostLabelNameBytes)})
		case CheckText(k) != "":
			errs = append(errs, FieldError{field, fmt.Sprintf("label name %s %s", quoteCut(k), CheckText(k))})
		case len(v) > MaxHostLabelValueBytes:
			errs = append(errs, FieldError{field + "." + k, fmt.Sprintf("must be at most %d bytes", MaxHostLabelValueBytes)})
		case CheckText(v) != "":
			errs = append(errs, FieldError{field + "." + k, CheckText(v)})
		}
	}
	sortFields(errs)
	return errs
}

// Check checks a free-form JSON object against the limits, naming it under field (host.metadata); a
// problem inside a value names the value's key (host.metadata.os), whatever its depth.
func (l ObjectLimits) Check(field string, obj map[string]any) []FieldError {
	if len(obj) > l.Keys {
		return []FieldError{{field, fmt.Sprintf("has %d keys; at most %d are allowed", len(obj), l.Keys)}}
	}
	var errs []FieldError
	total := 2
	for k, v := range obj {
		switch {
		case len(k) > l.KeyBytes:
			errs = append(errs, FieldError{field, fmt.Sprintf("key %s is longer than %d bytes", quoteCut(k), l.KeyBytes)})
			continue
		case CheckText(k) != "":
			errs = append(errs, FieldError{field, fmt.Sprintf("key %s %s", quoteCut(k), CheckText(k))})
			continue
		}
		size, why := jsonValueSize(v, l.ValueBytes)
		switch {
		case why != "":
			errs = append(errs, FieldError{field + "." + k, why})
		case size > l.ValueBytes:
			errs = append(errs, FieldError{field + "." + k, fmt.Sprintf("is larger than %d bytes as JSON", l.ValueBytes)})
		}
		total += len(k) + 4 + size
	}
	if len(errs) == 0 && total > l.TotalBytes {
		errs = append(errs, FieldError{field, fmt.Sprintf("is larger than %d bytes as JSON", l.TotalBytes)})
	}
	sortFields(errs)
	return errs
}

// jsonValueSize measures a decoded JSON value as JSON text (escapes aside), stopping once it passes
// limit, and says why a string inside cannot be stored.
func jsonValueSize(v any, limit int) (size int, why string) {
	switch v := v.(type) {
	case nil:
		return 4, ""
	case bool:
		return 5, ""
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, "is not a JSON number"
		}
		var buf [32]byte
		return len(strconv.AppendFloat(buf[:0], v, 'g', -1, 64)), ""
	case string:
		if why := CheckText(v); why != "" {
			return 0, why
		}
		return len(v) + 2, ""
	case []any:
		size = 2
		for _, e := range v {
			n, why := jsonValueSize(e, limit-size)
			if why != "" {
				return 0, why
			}
			if size += n + 1; size > limit {
				return size, ""
			}
		}
		return size, ""
	case map[string]any:
		size = 2
		for k, e := range v {
			if why := CheckText(k); why != "" {
				return 0, "a key " + why
			}
			n, why := jsonValueSize(e, limit-size)
			if why != "" {
				return 0, why
			}
			if size += len(k) + 4 + n; size > limit {
				return size, ""
			}
		}
		return size, ""
	}
	return 0, fmt.Sprintf("holds a %T, which JSON does not", v)
}

func sortFields(errs []FieldError) {
	slices.SortFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field+a.Message, b.Field+b.Message) })
}

// Validate checks what a push says about its host: its name, labels and metadata. It returns an
// *InvalidError naming every bad field, or nil.
func (h *JSONHost) Validate() error {
	var errs []FieldError
	if why := CheckHostName(h.Name); why != "" {
		if h.Name == "" {
			why = "is required when host is given"
		}
		errs = append(errs, FieldError{"host.name", why})
	}
	errs = append(errs, CheckHostLabels("host.labels", h.Labels)...)
	errs = append(errs, HostMetadataLimits.Check("host.metadata", h.Metadata)...)
	if len(errs) > 0 {
		return &InvalidError{Fields: errs}
	}
	return nil
}
