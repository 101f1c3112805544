package agent

import "time"

// counterRates turns monotonically increasing counters into per-second rates. A counter seen for the
// first time, or one that went backwards (device re-added, counter wrapped, host rebooted), yields no
// rate that round; the new value becomes the base for the next one.
type counterRates struct {
	last map[string]counterSample
}

type counterSample struct {
	value uint64
	at    time.Time
}

func newCounterRates() *counterRates {
	return &counterRates{last: map[string]counterSample{}}
}

// rate records value for key at now and returns the rate since the previous sample, if there is one.
func (c *counterRates) rate(key string, value uint64, now time.Time) (float64, bool) {
	prev, ok := c.last[key]
	c.last[key] = counterSample{value: value, at: now}
	if !ok || value < prev.value {
		return 0, false
	}
	dt := now.Sub(prev.at).Seconds()
	if dt <= 0 {
		return 0, false
	}
	return float64(value-prev.value) / dt, true
}
