package sla

import (
	"testing"
	"time"
)

// Periods are local calendar spans: a month of Berlin across the end of DST is 31 days and an hour,
// Sao Paulo's 2018-11-04 began at 01:00 (the clocks jumped over midnight), ISO weeks begin on Monday.
func TestPeriods(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	sp, _ := time.LoadLocation("America/Sao_Paulo")
	for _, c := range []struct {
		name       string
		loc        *time.Location
		start, end string
		hours      float64
	}{
		{"2026-10", berlin, "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z", 31*24 + 1},
		{"2026-W44", berlin, "2026-10-25T23:00:00Z", "2026-11-01T23:00:00Z", 7 * 24},
		{"2026-10-25", berlin, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 25},
		{"2018-11-04", sp, "2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z", 23},
		{"2018-11", sp, "2018-11-01T03:00:00Z", "2018-12-01T02:00:00Z", 30*24 - 1},
	} {
		p, err := ParsePeriod(c.name, c.loc)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != c.name || !p.Start.Equal(utc(c.start)) || !p.End.Equal(utc(c.end)) || p.End.Sub(p.Start).Hours() != c.hours {
			t.Errorf("%s: %+v (%v h), want %s–%s (%v h)", c.name, p, p.End.Sub(p.Start).Hours(), c.start, c.end, c.hours)
		}
		if n := p.Next(c.loc).Previous(c.loc); n != p {
			t.Errorf("%s: next then previous is %+v", c.name, n)
		}
	}
	for _, bad := range []string{"2026-13", "2026-W54", "2026-02-30", "november", ""} {
		if _, err := ParsePeriod(bad, time.UTC); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A rolling period is the N local days up to now (a day across a change of daylight saving time is 25
// hours); an SLO's current period is its calendar period so far otherwise.
func TestCurrentPeriod(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := utc("2026-10-26T12:00:00Z")
	p := Current(PeriodRolling, 7, now, berlin)
	if !p.End.Equal(now) || now.Sub(p.Start) != 7*24*time.Hour+time.Hour || p.Name != "rolling 7d" {
		t.Fatalf("rolling 7 days: %+v (%v)", p, now.Sub(p.Start))
	}
	if m := Current(PeriodMonth, 0, now, berlin); m.Name != "2026-10" || !m.Start.Equal(utc("2026-09-30T22:00:00Z")) {
		t.Fatalf("month: %+v", m)
	}
}
