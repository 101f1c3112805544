package checks

// Interface rates of SNMP checks: the IF-MIB rows a run reads, the counters the prober keeps from one
// run of a check to the next (snmpCounters), and the rates between two readings.

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"
)

// ifRow is one interface's cells, indexed by the col* constants; a cell the agent lacked is zero.
type ifRow struct {
	index int
	cells [ifColumnCount]gosnmp.SnmpPDU
}

// ifRowsOf turns walked columns (indexed by the col* constants) into rows ordered by ifIndex.
func ifRowsOf(cols [][]gosnmp.SnmpPDU) []*ifRow {
	byIndex := map[int]*ifRow{}
	for c, vars := range cols {
		for _, v := range vars {
			idx, err := strconv.Atoi(strings.TrimPrefix(v.Name, ifColumnOIDs[c]+"."))
			if err != nil || idx <= 0 {
				continue
			}
			r := byIndex[idx]
			if r == nil {
				r = &ifRow{index: idx}
				byIndex[idx] = r
			}
			r.cells[c] = v
		}
	}
	rows := slices.Collect(maps.Values(byIndex))
	slices.SortFunc(rows, func(a, b *ifRow) int { return cmp.Compare(a.index, b.index) })
	return rows
}

// name is ifName, else ifDescr, else the index.
func (r *ifRow) name() string {
	for _, c := range []int{colIfName, colIfDescr} {
		if b, ok := r.cells[c].Value.([]byte); ok && len(b) > 0 {
			return snmpString(r.cells[c], 255)
		}
	}
	return "ifIndex " + strconv.Itoa(r.index)
}

// speed is the interface's speed in bits per second: ifHighSpeed (in Mbit/s) when set, else ifSpeed.
func (r *ifRow) speed() (float64, bool) {
	high, hasHigh := r.cells[colIfHighSpeed].Value.(uint)
	if hasHigh && high > 0 {
		return float64(high) * 1e6, true
	}
	if s, ok := r.cells[colIfSpeed].Value.(uint); ok && s < math.MaxUint32 {
		return float64(s), true
	}
	return 0, hasHigh
}

// counterOf reads a Counter32 or Counter64 cell; the zero counter when there is none.
func counterOf(v gosnmp.SnmpPDU) snmpCounter {
	switch n := v.Value.(type) {
	case uint:
		if v.Type == gosnmp.Counter32 {
			return snmpCounter{value: uint64(n), bits: 32}
		}
	case uint64:
		if v.Type == gosnmp.Counter64 {
			return snmpCounter{value: n, bits: 64}
		}
	}
	return snmpCounter{}
}

// ifCountersOf takes from each row the counters kept for the next run: 64-bit octet counters when the
// agent has them, the 32-bit ones otherwise.
func ifCountersOf(rows []*ifRow) map[int]ifCounters {
	m := make(map[int]ifCounters, len(rows))
	for _, r := range rows {
		ic := ifCounters{
			name:        r.name(),
			in:          counterOf(r.cells[colIfHCInOctets]),
			out:         counterOf(r.cells[colIfHCOutOctets]),
			inErrors:    counterOf(r.cells[colIfInErrors]),
			outErrors:   counterOf(r.cells[colIfOutErrors]),
			inDiscards:  counterOf(r.cells[colIfInDiscards]),
			outDiscards: counterOf(r.cells[colIfOutDiscards]),
		}
		if ic.in.bits == 0 {
			ic.in = counterOf(r.cells[colIfInOctets])
		}
		if ic.out.bits == 0 {
			ic.out = counterOf(r.cells[colIfOutOctets])
		}
		m[r.index] = ic
	}
	return m
}

// ifMetrics returns the per-interface metrics of this run, with rates against prev when it allows.
func ifMetrics(rows []*ifRow, cur, prev *snmpSample, rebooted bool) []Metric {
	var ms []Metric
	var elapsed time.Duration
	if prev != nil {
		elapsed = cur.at.Sub(prev.at)
	}
	for _, r := range rows {
		labels := map[string]string{"interface": r.name(), "ifindex": strconv.Itoa(r.index)}
		add := func(name string, v float64) {
			ms = append(ms, Metric{Name: name, Labels: maps.Clone(labels), Value: v})
		}
		if s, ok := r.cells[colIfOperStatus].Value.(int); ok {
			add("snmp.if_oper_status", float64(s))
		}
		speed, hasSpeed := r.speed()
		if hasSpeed {
			add("snmp.if_speed_bps", speed)
		}
		if prev == nil {
			continue
		}
		now := cur.ifaces[r.index]
		was, ok := prev.ifaces[r.index]
		if !ok || was.name != now.name {
			continue // a new interface, or another one under a reused index
		}
		// A 32-bit octet counter that went backwards wrapped only if the implied rate fits the link.
		maxOctets := 0.0
		if hasSpeed && speed > 0 {
			maxOctets = speed / 8 * 1.1
		}
		for _, k := range []struct {
			name      string
			prev, cur snmpCounter
			scale     float64
			max       float64
		}{
			{"snmp.if_in_bps", was.in, now.in, 8, maxOctets},
			{"snmp.if_out_bps", was.out, now.out, 8, maxOctets},
			{"snmp.if_in_errors_per_s", was.inErrors, now.inErrors, 1, 0},
			{"snmp.if_out_errors_per_s", was.outErrors, now.outErrors, 1, 0},
			{"snmp.if_in_discards_per_s", was.inDiscards, now.inDiscards, 1, 0},
			{"snmp.if_out_discards_per_s", was.outDiscards, now.outDiscards, 1, 0},
		} {
			if rate, ok := counterRate(k.prev, k.cur, elapsed, rebooted, k.max); ok {
				add(k.name, rate*k.scale)
			}
		}
	}
	return ms
}

// snmpCounter is one counter as read: its value and width (32 or 64 bits; 0 when the agent had none).
type snmpCounter struct {
	value uint64
	bits  uint8
}

// counterRate returns how fast a counter grew per second between two readings taken elapsed apart.
// ok is false when no honest rate exists: no earlier reading (first sample), the agent rebooted in
// between, no time passed, the counter changed width, or it went backwards in a way a wrap does not
// explain. A 64-bit counter never wraps in practice, so going backwards is a reset; a 32-bit one
// wrapped if the distance modulo 2^32 is under half the range and, when maxPerSecond is set (the
// link's speed), no faster than it — otherwise it was reset (a cleared counter, a replaced card).
func counterRate(prev, cur snmpCounter, elapsed time.Duration, rebooted bool, maxPerSecond float64) (rate float64, ok bool) {
	if prev.bits == 0 || cur.bits == 0 || prev.bits != cur.bits || rebooted || elapsed <= 0 {
		return 0, false
	}
	secs := elapsed.Seconds()
	delta := cur.value - prev.value
	if cur.value < prev.value {
		if cur.bits != 32 {
			return 0, false
		}
		delta &= math.MaxUint32
		if delta > 1<<31 || (maxPerSecond > 0 && float64(delta)/secs > maxPerSecond) {
			return 0, false
		}
	}
	return float64(delta) / secs, true
}

// snmpRebooted says whether the agent restarted between two samples: its sysUpTime went backwards.
// (sysUpTime also wraps after 497 days, which costs one round of rates.)
func snmpRebooted(prev, cur *snmpSample) bool {
	return prev != nil && prev.hasUptime && cur.hasUptime && cur.uptime < prev.uptime
}

// snmpSample is what one run of a check read for rates: the agent, its sysUpTime (hundredths of a
// second), when the interface walk began, and each interface's counters by ifIndex.
type snmpSample struct {
	target    string
	at        time.Time
	uptime    uint32
	hasUptime bool
	ifaces    map[int]ifCounters
}

// ifCounters are one interface's counters kept between runs; name tells a reused ifIndex apart.
type ifCounters struct {
	name                                         string
	in, out                                      snmpCounter
	inErrors, outErrors, inDiscards, outDiscards snmpCounter
}

// snmpCounters keeps the last sample of every SNMP check that reads interfaces, so that the next run
// can turn counters into rates. It forgets checks not run for snmpCounterTTL and never holds more
// than snmpMaxTrackedChecks. It is safe for concurrent use; a nil *snmpCounters keeps nothing.
type snmpCounters struct {
	mu     sync.Mutex
	checks map[int64]*snmpSample
	swept  time.Time
}

func newSNMPCounters() *snmpCounters {
	return &snmpCounters{checks: map[int64]*snmpSample{}}
}

// swap stores cur as check id's last sample and returns the one it replaces — nil when there is none,
// or when it was taken from another agent (the check's target changed).
func (s *snmpCounters) swap(id int64, cur *snmpSample) *snmpSample {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.checks[id]
	s.checks[id] = cur
	if cur.at.Sub(s.swept) > snmpCounterTTL/10 {
		s.swept = cur.at
		maps.DeleteFunc(s.checks, func(_ int64, v *snmpSample) bool { return cur.at.Sub(v.at) > snmpCounterTTL })
	}
	for len(s.checks) > snmpMaxTrackedChecks {
		// Rare: only with more live checks than the cap. Drop the stalest.
		var oldest int64
		var at time.Time
		for k, v := range s.checks {
			if k != id && (at.IsZero() || v.at.Before(at)) {
				oldest, at = k, v.at
			}
		}
		delete(s.checks, oldest)
	}
	if prev != nil && prev.target != cur.target {
		return nil
	}
	return prev
}
