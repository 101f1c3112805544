package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// days is a flag value for long durations: "30d", or anything time.ParseDuration takes ("36h").
type days struct{ d *time.Duration }

func (v days) String() string {
	if v.d == nil {
		return ""
	}
	if *v.d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(*v.d/(24*time.Hour)), 10) + "d"
	}
	return v.d.String()
}

func (v days) Set(s string) error {
	if n, ok := strings.CutSuffix(strings.TrimSpace(s), "d"); ok {
		k, err := strconv.ParseInt(n, 10, 32)
		if err != nil || k <= 0 {
			return fmt.Errorf("%q: want a positive number of days, e.g. 30d", s)
		}
		*v.d = time.Duration(k) * 24 * time.Hour
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q: want a positive duration such as 30d or 36h", s)
	}
	*v.d = d
	return nil
}
