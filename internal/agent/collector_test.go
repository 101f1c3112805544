package agent

import (
	"testing"
	"time"
)

func collectTwice(t *testing.T, c Collector) []Metric {
	t.Helper()
	if _, err := c.Collect(time.Now()); err != nil {
		t.Fatalf("%s: first collect: %v", c.Name(), err)
	}
	time.Sleep(200 * time.Millisecond) // let counters move; not a timing assertion
	ms, err := c.Collect(time.Now())
	if err != nil {
		t.Fatalf("%s: collect: %v", c.Name(), err)
	}
	return ms
}

func byName(ms []Metric) map[string][]Metric {
	out := map[string][]Metric{}
	for _, m := range ms {
		out[m.Name] = append(out[m.Name], m)
	}
	return out
}

func TestCPUCollectorSumsToHundred(t *testing.T) {
	ms := collectTwice(t, newCPUCollector())
	sums := map[string]float64{}
	for _, m := range ms {
		v := m.Points[0].Value
		if v < 0 || v > 100.0001 {
			t.Errorf("%s %v = %v, want 0..100", m.Name, m.Labels, v)
		}
		if m.Name != "cpu.usage_pct" {
			sums[m.Labels["cpu"]] += v
		}
	}
	if _, ok := sums["total"]; !ok {
		t.Fatalf("no total cpu in %d metrics", len(ms))
	}
	for cpu, s := range sums {
		if s < 99.9 || s > 100.1 {
			t.Errorf("cpu %s components sum to %v, want ~100", cpu, s)
		}
	}
}

func TestCPUDeltaIgnoresCounterReset(t *testing.T) {
	if _, ok := cpuDelta(cpuTimes{user: 10, idle: 10}, cpuTimes{user: 5, idle: 20}); ok {
		t.Fatal("a counter going backwards must yield no percentage")
	}
	r := newCounterRates()
	now := time.Now()
	r.rate("x", 100, now)
	if _, ok := r.rate("x", 50, now.Add(time.Second)); ok {
		t.Fatal("a counter going backwards must yield no rate")
	}
	if v, ok := r.rate("x", 150, now.Add(2*time.Second)); !ok || v != 100 {
		t.Fatalf("rate = %v %v, want 100 true", v, ok)
	}
}

func TestMemCollector(t *testing.T) {
	m := byName(collectTwice(t, memCollector{}))
	total, used := m["mem.total_bytes"][0].Points[0].Value, m["mem.used_bytes"][0].Points[0].Value
	if total <= 0 || used <= 0 || used > total {
		t.Fatalf("mem total %v used %v", total, used)
	}
	if p := m["mem.used_pct"][0].Points[0].Value; p <= 0 || p > 100 {
		t.Fatalf("mem.used_pct %v", p)
	}
	if a := m["mem.available_bytes"][0].Points[0].Value; a <= 0 || a > total {
		t.Fatalf("mem.available_bytes %v", a)
	}
}

func TestFilesystemCollector(t *testing.T) {
	m := byName(collectTwice(t, filesystemCollector{}))
	if len(m["disk.used_pct"]) == 0 {
		t.Fatal("no filesystem reported")
	}
	for _, x := range m["disk.used_pct"] {
		if x.Labels["mount"] == "" || isPseudoFS(x.Labels["fstype"]) {
			t.Errorf("bad filesystem labels %v", x.Labels)
		}
		if v := x.Points[0].Value; v < 0 || v > 100 {
			t.Errorf("disk.used_pct %v = %v", x.Labels, v)
		}
	}
}

func TestOtherCollectors(t *testing.T) {
	cols, err := NewCollectors([]string{"diskio", "net", "load", "uptime", "procs"})
	if err != nil {
		t.Fatal(err)
	}
	all := map[string][]Metric{}
	for _, c := range cols {
		for k, v := range byName(collectTwice(t, c)) {
			all[k] = v
		}
	}
	if u := all["system.uptime_seconds"]; len(u) != 1 || u[0].Points[0].Value <= 0 {
		t.Errorf("uptime %v", u)
	}
	if p := all["procs.total"]; len(p) != 1 || p[0].Points[0].Value < 1 {
		t.Errorf("procs %v", p)
	}
	if l := all["load.load1"]; len(l) != 1 || l[0].Points[0].Value < 0 {
		t.Errorf("load %v", l)
	}
	for _, m := range all["net.rx_bytes_per_s"] {
		if m.Labels["interface"] == "lo" || m.Points[0].Value < 0 {
			t.Errorf("net %v", m)
		}
	}
	for _, m := range all["diskio.util_pct"] {
		if v := m.Points[0].Value; v < 0 || v > 100 {
			t.Errorf("diskio util %v", m)
		}
	}
	if _, err := NewCollectors([]string{"cpu", "gpu"}); err == nil {
		t.Error("unknown collector accepted")
	}
}
