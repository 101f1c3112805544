package sla

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Period kinds of SLOs: a calendar month, an ISO week (Monday to Sunday), a day, in the tenant's time
// zone, or the rolling N days up to now.
const (
	PeriodMonth   = "month"
	PeriodWeek    = "week"
	PeriodDay     = "day"
	PeriodRolling = "rolling"
)

// Period is a span of local calendar time: [Start, End) in UTC, named as its kind names it (2026-11,
// 2026-W47, 2026-11-28).
type Period struct {
	Kind       string
	Name       string
	Start, End time.Time
}

// PeriodOf is the calendar period of kind (month, week or day) holding t in loc.
func PeriodOf(kind string, t time.Time, loc *time.Location) Period {
	l := t.In(loc)
	y, m, d := l.Date()
	switch kind {
	case PeriodMonth:
		start := midnight(y, m, 1, loc)
		return Period{Kind: kind, Name: start.Format("2006-01"), Start: start.UTC(), End: midnight(y, m+1, 1, loc).UTC()}
	case PeriodWeek:
		offset := (int(l.Weekday()) + 6) % 7 // days since Monday
		start := midnight(y, m, d-offset, loc)
		iy, iw := start.ISOWeek()
		return Period{Kind: kind, Name: fmt.Sprintf("%d-W%02d", iy, iw), Start: start.UTC(),
			End: midnight(y, m, d-offset+7, loc).UTC()}
	default:
		start := midnight(y, m, d, loc)
		return Period{Kind: PeriodDay, Name: start.Format("2006-01-02"), Start: start.UTC(),
			End: midnight(y, m, d+1, loc).UTC()}
	}
}

// Next is the calendar period after p.
func (p Period) Next(loc *time.Location) Period { return PeriodOf(p.Kind, p.End, loc) }

// Previous is the calendar period before p.
func (p Period) Previous(loc *time.Location) Period {
	return PeriodOf(p.Kind, p.Start.Add(-time.Nanosecond), loc)
}

// Current is the period of an SLO at now: its calendar period so far, or the rolling days up to now.
func Current(kind string, rollingDays int, now time.Time, loc *time.Location) Period {
	if kind == PeriodRolling {
		l := now.In(loc)
		start := time.Date(l.Year(), l.Month(), l.Day()-rollingDays, l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), loc)
		return Period{Kind: kind, Name: fmt.Sprintf("rolling %dd", rollingDays), Start: start.UTC(), End: now.UTC()}
	}
	return PeriodOf(kind, now, loc)
}

var (
	monthName = regexp.MustCompile(`^(\d{4})-(\d{2})$`)
	weekName  = regexp.MustCompile(`^(\d{4})-W(\d{2})$`)
	dayName   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// ParsePeriod reads a period's name in loc: 2026-11 (a month), 2026-W47 (an ISO week), 2026-11-28 (a day).
func ParsePeriod(name string, loc *time.Location) (Period, error) {
	if m := monthName.FindStringSubmatch(name); m != nil {
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		if mo < 1 || mo > 12 || y < 1970 {
			return Period{}, fmt.Errorf("%q is not a month (2026-11)", name)
		}
		return PeriodOf(PeriodMonth, time.Date(y, time.Month(mo), 1, 12, 0, 0, 0, loc), loc), nil
	}
	if m := weekName.FindStringSubmatch(name); m != nil {
		y, _ := strconv.Atoi(m[1])
		w, _ := strconv.Atoi(m[2])
		// ISO week 1 holds January 4th; its Monday begins the ISO year.
		jan4 := time.Date(y, 1, 4, 12, 0, 0, 0, loc)
		monday := jan4.AddDate(0, 0, -((int(jan4.Weekday())+6)%7)+7*(w-1))
		if iy, iw := monday.ISOWeek(); w < 1 || iy != y || iw != w || y < 1970 {
			return Period{}, fmt.Errorf("%q is not an ISO week (2026-W47)", name)
		}
		return PeriodOf(PeriodWeek, monday, loc), nil
	}
	if dayName.MatchString(name) {
		t, err := time.ParseInLocation("2006-01-02", name, loc)
		if err != nil || t.Year() < 1970 {
			return Period{}, fmt.Errorf("%q is not a day (2026-11-28)", name)
		}
		return PeriodOf(PeriodDay, t.Add(12*time.Hour), loc), nil
	}
	return Period{}, fmt.Errorf("%q is not a period: a month (2026-11), an ISO week (2026-W47) or a day (2026-11-28)", name)
}

// midnight is the first instant of a local date (normalized as time.Date does). Where the clocks jump
// over midnight (America/Sao_Paulo's daylight saving time began at 00:00), the day begins at the jump,
// as PostgreSQL's '…'::timestamp AT TIME ZONE reads it; time.Date would answer an instant of the day
// before.
func midnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	want := time.Date(y, m, d, 12, 0, 0, 0, time.UTC) // the normalized date
	if ty, tm, td := t.Date(); ty != want.Year() || tm != want.Month() || td != want.Day() {
		_, end := t.ZoneBounds()
		return end
	}
	return t
}
