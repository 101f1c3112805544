package alerting

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// ParseDuration reads a duration as the API writes them: a Go duration (90s, 5m, 1h30m) or whole days
// (7d).
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 3650 {
			return 0, fmt.Errorf("%q is not a duration such as 30s, 5m, 1h or 7d", s)
		}
		return time.Duration(days) * day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 30s, 5m, 1h or 7d", s)
	}
	return d, nil
}

// FormatDuration writes d as the API answers durations: whole days as 7d, others as Go does without
// the zero units (5m rather than 5m0s).
func FormatDuration(d time.Duration) string {
	if d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// durationField parses the duration of a field into dst and checks its bounds, adding a problem naming
// the field when it is wrong. A nil s leaves dst as it is.
func durationField(ps *problems, field string, s *string, dst *time.Duration, lo, hi time.Duration) {
	if s == nil {
		return
	}
	d, err := ParseDuration(*s)
	if err != nil {
		ps.add(field, "must be a duration such as 30s, 5m, 1h or 7d")
		return
	}
	if d < lo || d > hi {
		ps.add(field, fmt.Sprintf("must be from %s to %s", FormatDuration(lo), FormatDuration(hi)))
		return
	}
	*dst = d
}

// seconds is d in whole seconds, for the columns and eval objects that store seconds.
func seconds(d time.Duration) int32 { return int32(d / time.Second) }
