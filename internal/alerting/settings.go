package alerting

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// decodeSettings reads a settings object into dst, a pointer to a kind's settings struct. A field the
// struct does not have is refused by name, as is a value of the wrong type.
func decodeSettings(raw json.RawMessage, dst any) []Problem {
	var ps problems
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil || keys == nil {
		ps.add("", "must be an object")
		return ps
	}
	allowed := map[string]bool{}
	t := reflect.TypeOf(dst).Elem()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		allowed[name] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !allowed[k] {
			ps.add(k, "unknown setting of this kind; remove it")
		}
	}
	if len(ps) > 0 {
		return ps
	}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			ps.add(typeErr.Field, "has the wrong type: "+typeErr.Value)
		} else {
			ps.add("", "must be an object: "+err.Error())
		}
	}
	return ps
}

// Comparators a rule compares its value with.
var Comparators = []string{">", ">=", "<", "<=", "==", "!="}

// condition is a comparison with a threshold and an optional recovery threshold.
type condition struct {
	cmp       string
	threshold float64
	recover   *float64
}

// compileCondition validates a comparator, a threshold and a recovery threshold. A firing alert
// resolves only once the value is past the recovery threshold (hysteresis), so it must lie on the
// resolving side of the threshold, and exists only for the ordering comparators.
func compileCondition(ps *problems, cmp string, threshold, recoverAt *float64) condition {
	c := condition{cmp: cmp, recover: recoverAt}
	if !slices.Contains(Comparators, cmp) {
		ps.add("comparator", "must be one of "+strings.Join(Comparators, " "))
	}
	if threshold == nil {
		ps.add("threshold", "is required")
	} else if math.IsNaN(*threshold) || math.IsInf(*threshold, 0) {
		ps.add("threshold", "must be a finite number")
	} else {
		c.threshold = *threshold
	}
	if recoverAt == nil || threshold == nil {
		return c
	}
	switch cmp {
	case ">", ">=":
		if *recoverAt > *threshold {
			ps.add("recover_threshold", "must be at most threshold: a rule firing above its threshold recovers below it")
		}
	case "<", "<=":
		if *recoverAt < *threshold {
			ps.add("recover_threshold", "must be at least threshold: a rule firing below its threshold recovers above it")
		}
	default:
		ps.add("recover_threshold", "applies to the comparators >, >=, < and <= only")
	}
	return c
}

// Compare applies a comparator, as infrawatch.alert_compare does in SQL.
func Compare(v float64, cmp string, t float64) bool {
	switch cmp {
	case ">":
		return v > t
	case ">=":
		return v >= t
	case "<":
		return v < t
	case "<=":
		return v <= t
	case "==":
		return v == t
	case "!=":
		return v != t
	}
	return false
}

// selector picks series: by metric name, optionally one host's, narrowed by label matchers.
type selector struct {
	Metric   string            `json:"metric"`
	Host     string            `json:"host,omitempty"`
	Matchers []compiledMatcher `json:"matchers"`
}

// compileSelector validates a selector's parts.
func compileSelector(ps *problems, metric, host string, ms []Matcher) (selector, Matchers) {
	if n := len(metric); n < 1 || n > 1024 || !utf8.ValidString(metric) {
		ps.add("metric", "is required: a metric name of 1 to 1024 bytes")
	}
	if len(host) > 255 {
		ps.add("host", "must be a host name of at most 255 characters")
	}
	matchers, mps := CompileMatchers("matchers", ms)
	*ps = append(*ps, mps...)
	return selector{Metric: metric, Host: host, Matchers: matchers.SQL()}, matchers
}

// windowField parses a window with its bounds and default.
func windowField(ps *problems, field, s string, def, lo, hi time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d := def
	durationField(ps, field, &s, &d, lo, hi)
	return d
}

func errorf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
