package maintenance

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// days is a flag value for long durations: "30d", or anything time.ParseDuration takes ("36h"). It sets
// every duration it points at: one flag may set the same retention for two tiers.
type days []*time.Duration

func (v days) String() string {
	if len(v) == 0 || v[0] == nil {
		return ""
	}
	return formatDays(*v[0])
}

func (v days) Set(s string) error {
	d, err := parseDays(s)
	if err != nil {
		return err
	}
	for _, p := range v {
		*p = d
	}
	return nil
}

func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(strings.TrimSpace(s), "d"); ok {
		k, err := strconv.ParseInt(n, 10, 32)
		if err != nil || k <= 0 {
			return 0, fmt.Errorf("%q: want a positive number of days, e.g. 30d", s)
		}
		return time.Duration(k) * day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration such as 30d or 36h", s)
	}
	return d, nil
}

// formatDays writes d as the flags take it: whole days as "30d", anything else as a Go duration.
func formatDays(d time.Duration) string {
	if d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}
