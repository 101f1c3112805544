package agent

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuCollector reports where CPU time went during the last interval, in percent, from the deltas of
// the kernel's cumulative jiffy counters.
//
// It reads /proc/stat itself instead of using gopsutil/cpu: that package needs
// github.com/tklauser/go-sysconf, which is not in this module's go.sum. The parsing is the same
// counters gopsutil reads, so switching later changes nothing downstream.
type cpuCollector struct {
	statPath string
	last     map[string]cpuTimes
}

// cpuTimes holds the /proc/stat fields in their kernel order; guest time is already inside user.
type cpuTimes struct {
	user, nice, system, idle, iowait, irq, softirq, steal uint64
}

func (t cpuTimes) total() uint64 {
	return t.user + t.nice + t.system + t.idle + t.iowait + t.irq + t.softirq + t.steal
}

func newCPUCollector() *cpuCollector {
	return &cpuCollector{statPath: "/proc/stat", last: map[string]cpuTimes{}}
}

func (c *cpuCollector) Name() string { return "cpu" }

func (c *cpuCollector) Collect(now time.Time) ([]Metric, error) {
	cur, err := readCPUTimes(c.statPath)
	if err != nil {
		return nil, err
	}
	var out []Metric
	for name, t := range cur {
		prev, ok := c.last[name]
		c.last[name] = t
		if !ok {
			continue
		}
		d, ok := cpuDelta(prev, t)
		if !ok {
			continue
		}
		total := float64(d.total())
		pct := func(v uint64) float64 { return float64(v) / total * 100 }
		labels := map[string]string{"cpu": name}
		out = append(out,
			gauge("cpu.usage_user_pct", labels, now, pct(d.user)),
			gauge("cpu.usage_nice_pct", labels, now, pct(d.nice)),
			gauge("cpu.usage_system_pct", labels, now, pct(d.system)),
			gauge("cpu.usage_idle_pct", labels, now, pct(d.idle)),
			gauge("cpu.usage_iowait_pct", labels, now, pct(d.iowait)),
			gauge("cpu.usage_irq_pct", labels, now, pct(d.irq)),
			gauge("cpu.usage_softirq_pct", labels, now, pct(d.softirq)),
			gauge("cpu.usage_steal_pct", labels, now, pct(d.steal)),
			gauge("cpu.usage_pct", labels, now, 100-pct(d.idle)-pct(d.iowait)),
		)
	}
	return out, nil
}

// cpuDelta subtracts two readings; any counter going backwards (CPU hot-unplugged and back, counter
// reset) or no time elapsing means there is no meaningful percentage this round.
func cpuDelta(prev, cur cpuTimes) (cpuTimes, bool) {
	p := []uint64{prev.user, prev.nice, prev.system, prev.idle, prev.iowait, prev.irq, prev.softirq, prev.steal}
	c := []uint64{cur.user, cur.nice, cur.system, cur.idle, cur.iowait, cur.irq, cur.softirq, cur.steal}
	for i := range p {
		if c[i] < p[i] {
			return cpuTimes{}, false
		}
	}
	d := cpuTimes{cur.user - prev.user, cur.nice - prev.nice, cur.system - prev.system, cur.idle - prev.idle,
		cur.iowait - prev.iowait, cur.irq - prev.irq, cur.softirq - prev.softirq, cur.steal - prev.steal}
	return d, d.total() > 0
}

// readCPUTimes parses the aggregate line as "total" and each cpuN line as "cpuN".
func readCPUTimes(path string) (map[string]cpuTimes, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read cpu times: %w", err)
	}
	defer f.Close()
	out := map[string]cpuTimes{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 9 || !strings.HasPrefix(fields[0], "cpu") {
			continue
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(fields[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("read cpu times: parse %q: %w", sc.Text(), err)
			}
			v[i] = n
		}
		name := fields[0]
		if name == "cpu" {
			name = "total"
		}
		out[name] = cpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read cpu times: %w", err)
	}
	return out, nil
}
