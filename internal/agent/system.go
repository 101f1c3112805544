package agent

import (
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
)

// memCollector reports RAM and swap in bytes and the used share in percent.
type memCollector struct{}

func (memCollector) Name() string { return "mem" }

func (memCollector) Collect(now time.Time) ([]Metric, error) {
	vm, err := mem.VirtualMemory()
	if err != nil {
		return nil, fmt.Errorf("read memory: %w", err)
	}
	out := []Metric{
		gauge("mem.total_bytes", nil, now, float64(vm.Total)),
		gauge("mem.used_bytes", nil, now, float64(vm.Used)),
		gauge("mem.available_bytes", nil, now, float64(vm.Available)),
		gauge("mem.used_pct", nil, now, vm.UsedPercent),
	}
	sw, err := mem.SwapMemory()
	if err != nil {
		return out, fmt.Errorf("read swap: %w", err)
	}
	return append(out,
		gauge("swap.total_bytes", nil, now, float64(sw.Total)),
		gauge("swap.used_bytes", nil, now, float64(sw.Used)),
		gauge("swap.free_bytes", nil, now, float64(sw.Free)),
		gauge("swap.used_pct", nil, now, sw.UsedPercent),
	), nil
}

// loadCollector reports the 1, 5 and 15 minute load averages.
type loadCollector struct{}

func (loadCollector) Name() string { return "load" }

func (loadCollector) Collect(now time.Time) ([]Metric, error) {
	a, err := load.Avg()
	if err != nil {
		return nil, fmt.Errorf("read load: %w", err)
	}
	return []Metric{
		gauge("load.load1", nil, now, a.Load1),
		gauge("load.load5", nil, now, a.Load5),
		gauge("load.load15", nil, now, a.Load15),
	}, nil
}

// uptimeCollector reports seconds since boot.
type uptimeCollector struct{}

func (uptimeCollector) Name() string { return "uptime" }

func (uptimeCollector) Collect(now time.Time) ([]Metric, error) {
	u, err := host.Uptime()
	if err != nil {
		return nil, fmt.Errorf("read uptime: %w", err)
	}
	return []Metric{gauge("system.uptime_seconds", nil, now, float64(u))}, nil
}

// procsCollector reports how many processes exist and how many are running or blocked on I/O.
type procsCollector struct{}

func (procsCollector) Name() string { return "procs" }

func (procsCollector) Collect(now time.Time) ([]Metric, error) {
	m, err := load.Misc()
	if err != nil {
		return nil, fmt.Errorf("read process counts: %w", err)
	}
	return []Metric{
		gauge("procs.total", nil, now, float64(m.ProcsTotal)),
		gauge("procs.running", nil, now, float64(m.ProcsRunning)),
		gauge("procs.blocked", nil, now, float64(m.ProcsBlocked)),
	}, nil
}
