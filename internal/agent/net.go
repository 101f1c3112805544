package agent

import (
	"fmt"
	"time"

	gnet "github.com/shirou/gopsutil/v4/net"
)

// netCollector reports traffic, packets, errors and drops per second per interface, loopback excluded.
type netCollector struct {
	rates *counterRates
}

func newNetCollector() *netCollector { return &netCollector{rates: newCounterRates()} }

func (c *netCollector) Name() string { return "net" }

func (c *netCollector) Collect(now time.Time) ([]Metric, error) {
	counters, err := gnet.IOCounters(true)
	if err != nil {
		return nil, fmt.Errorf("read network counters: %w", err)
	}
	var out []Metric
	for _, s := range counters {
		if s.Name == "lo" {
			continue
		}
		l := map[string]string{"interface": s.Name}
		for _, f := range []struct {
			metric string
			v      uint64
		}{
			{"net.rx_bytes_per_s", s.BytesRecv}, {"net.tx_bytes_per_s", s.BytesSent},
			{"net.rx_packets_per_s", s.PacketsRecv}, {"net.tx_packets_per_s", s.PacketsSent},
			{"net.rx_errors_per_s", s.Errin}, {"net.tx_errors_per_s", s.Errout},
			{"net.rx_drops_per_s", s.Dropin}, {"net.tx_drops_per_s", s.Dropout},
		} {
			if r, ok := c.rates.rate(s.Name+"/"+f.metric, f.v, now); ok {
				out = append(out, gauge(f.metric, l, now, r))
			}
		}
	}
	return out, nil
}
