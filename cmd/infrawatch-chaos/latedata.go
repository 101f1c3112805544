package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// The late-data probe measures how long a sample pushed into buckets the rollups have materialized
// already (an agent replaying its spool after an outage) takes to show in every tier's answer of the
// query API, while the faults go on. It writes to one series of tenant 0 of its own (host late-prober),
// which the agents' accounting leaves out and the rollup comparison at the end includes.
const (
	lateMetric   = "chaos.late"
	lateHost     = "late-prober"
	lateBaseline = 48 // samples of the baseline, one every 5 minutes over 4 hours of yesterday
)

// lateTiers are the steps of the query API whose answers the probe reads (each a rollup tier).
var lateTiers = []string{"5m", "1h", "1d"}

// lateProbe holds what the probe measured.
type lateProbe struct {
	addrs             []string
	ingestKey, reader string
	hc                *http.Client
	next              atomic.Uint64
	day               time.Time // the UTC day (yesterday) the probe's samples are in

	probes, visible int
	longest         map[string]time.Duration // per tier: longest time from a late push's acknowledgment to its answer showing it
	pending         string                   // a probe not visible yet when the run ended, for the table
}

func newLateProbe(addrs []string, ingestKey, readKey string, now time.Time) *lateProbe {
	return &lateProbe{addrs: addrs, ingestKey: ingestKey, reader: readKey, hc: &http.Client{Timeout: 5 * time.Second},
		day: now.UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour), longest: map[string]time.Duration{}}
}

// run pushes the baseline, waits first (so the baseline's buckets get materialized), then until ctx ends
// pushes one late sample at a time and polls every tier until each answer counts it; the next probe
// follows 20 s after. Polling stops at the latest when stop ends (the end of the drain).
func (l *lateProbe) run(ctx, stop context.Context, firstAfter time.Duration, logf func(string, ...any)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := range lateBaseline {
			if !l.push(stop, l.day.Add(10*time.Hour+time.Duration(k)*5*time.Minute)) {
				return
			}
		}
		wait := firstAfter
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = 20 * time.Second
			// Inside the baseline's buckets, at a second no other sample of the series has.
			at := l.day.Add(10*time.Hour + time.Duration(i%lateBaseline)*5*time.Minute + time.Duration(1+i/lateBaseline)*time.Second)
			if !l.push(stop, at) {
				return
			}
			acked := time.Now()
			l.probes++
			want := float64(lateBaseline + l.probes)
			seen := map[string]bool{}
			for len(seen) < len(lateTiers) {
				for _, tier := range lateTiers {
					if !seen[tier] && l.count(stop, tier) == want {
						seen[tier] = true
						l.longest[tier] = max(l.longest[tier], time.Since(acked))
					}
				}
				select {
				case <-stop.Done():
					l.pending = fmt.Sprintf("probe %d not visible in every tier %s after its push (seen in %v)",
						l.probes, time.Since(acked).Round(time.Second), seen)
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
			l.visible++
			logf("late sample %d (%s) visible in every tier %.1fs after its push was acknowledged",
				l.probes, at.Format(time.TimeOnly), time.Since(acked).Seconds())
		}
	}()
	return done
}

// push sends one sample of value 1 at t until a replica acknowledges it; false when stop ended first.
func (l *lateProbe) push(stop context.Context, t time.Time) bool {
	body := fmt.Appendf(nil, `{"host":{"name":%q},"metrics":[{"name":%q,"points":[[%d,1]]}]}`, lateHost, lateMetric, t.UnixMilli())
	for stop.Err() == nil {
		req, _ := http.NewRequestWithContext(stop, http.MethodPost, "http://"+l.pick()+"/api/v1/ingest", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+l.ingestKey)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := l.hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// count is the number of the probe's samples the tier's answer counts over the probe's day, or -1
// when no replica answered.
func (l *lateProbe) count(ctx context.Context, tier string) float64 {
	q := url.Values{"metric": {lateMetric}, "host": {lateHost}, "step": {tier}, "agg": {"count"},
		"from": {strconv.FormatInt(l.day.UnixMilli(), 10)}, "to": {strconv.FormatInt(l.day.Add(24*time.Hour).UnixMilli(), 10)}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.pick()+"/api/v1/query/range?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+l.reader)
	resp, err := l.hc.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var answer struct {
		Series []struct {
			Points [][2]*float64 `json:"points"`
		} `json:"series"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&answer) != nil {
		return -1
	}
	total := 0.0
	for _, s := range answer.Series {
		for _, p := range s.Points {
			if p[1] != nil {
				total += *p[1]
			}
		}
	}
	return total
}

func (l *lateProbe) pick() string { return l.addrs[l.next.Add(1)%uint64(len(l.addrs))] }
