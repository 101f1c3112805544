package agent

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Collector samples one aspect of the host. Collect is called once per interval from one goroutine;
// collectors that derive rates keep their previous counters between calls.
type Collector interface {
	Name() string
	Collect(now time.Time) ([]Metric, error)
}

// AllCollectors lists the collector names accepted by --collectors, in the order they run.
var AllCollectors = []string{"cpu", "mem", "disk", "diskio", "net", "load", "uptime", "procs"}

// NewCollectors builds the named collectors; an unknown name is an error so that typos surface in
// check-config rather than as silently missing series.
func NewCollectors(names []string) ([]Collector, error) {
	var out []Collector
	for _, n := range names {
		switch strings.TrimSpace(n) {
		case "cpu":
			out = append(out, newCPUCollector())
		case "mem":
			out = append(out, memCollector{})
		case "disk":
			out = append(out, filesystemCollector{})
		case "diskio":
			out = append(out, newDiskIOCollector())
		case "net":
			out = append(out, newNetCollector())
		case "load":
			out = append(out, loadCollector{})
		case "uptime":
			out = append(out, uptimeCollector{})
		case "procs":
			out = append(out, procsCollector{})
		default:
			return nil, fmt.Errorf("unknown collector %q (known: %s)", n, strings.Join(AllCollectors, ","))
		}
	}
	return out, nil
}

// gauge builds a one-point metric.
func gauge(name string, labels map[string]string, now time.Time, v float64) Metric {
	return Metric{Name: name, Labels: labels, Points: []Point{{TimeMs: now.UnixMilli(), Value: v}}}
}

// sortMetrics gives the output a stable order, which keeps `once` readable and tests simple.
func sortMetrics(ms []Metric) {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].Name != ms[j].Name {
			return ms[i].Name < ms[j].Name
		}
		return labelKey(ms[i].Labels) < labelKey(ms[j].Labels)
	})
}

func labelKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + l[k] + ",")
	}
	return b.String()
}
