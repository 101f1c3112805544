package sla

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Problem names one bad field of an SLO or report and what is wrong with it.
type Problem struct {
	Field, Message string
}

type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// BusinessHours are the hours that count, in the tenant's zone: Days are ISO weekdays (1 Monday … 7
// Sunday), from Start to End local time ("08:00", "18:00"; End "24:00" is midnight after the day).
type BusinessHours struct {
	Days  []int  `json:"days"`
	Start string `json:"start"`
	End   string `json:"end"`
}

var clock = regexp.MustCompile(`^(\d{2}):(\d{2})$`)

// minutes reads "08:30" as minutes since midnight (24:00 allowed), -1 when it is not a time of day.
func minutes(s string) int {
	m := clock.FindStringSubmatch(s)
	if m == nil {
		return -1
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	if mi > 59 || h > 24 || (h == 24 && mi != 0) {
		return -1
	}
	return h*60 + mi
}

// validate names what is wrong with b under field.
func (b BusinessHours) validate(field string, ps *problems) {
	if len(b.Days) == 0 {
		ps.add(field+".days", "name at least one ISO weekday (1 Monday … 7 Sunday)")
	}
	for i, d := range b.Days {
		if d < 1 || d > 7 {
			ps.add(fmt.Sprintf("%s.days[%d]", field, i), "must be an ISO weekday, 1 (Monday) to 7 (Sunday)")
		}
	}
	s, e := minutes(b.Start), minutes(b.End)
	if s < 0 || s >= 24*60 {
		ps.add(field+".start", "must be a time of day such as 08:00")
	}
	if e < 0 {
		ps.add(field+".end", "must be a time of day such as 18:00 (24:00 for midnight)")
	}
	if s >= 0 && e >= 0 && e <= s {
		ps.add(field+".end", "must be after start (hours across midnight: end at 24:00 and start at 00:00 the next day)")
	}
}

func (b BusinessHours) isoDays() []int32 {
	out := make([]int32, 0, len(b.Days))
	for _, d := range b.Days {
		if !slices.Contains(out, int32(d)) {
			out = append(out, int32(d))
		}
	}
	return out
}

func (b BusinessHours) startEnd() (time.Duration, time.Duration) {
	return time.Duration(minutes(b.Start)) * time.Minute, time.Duration(minutes(b.End)) * time.Minute
}

// SLO is an objective: a target availability over a scope of checks, measured per period.
type SLO struct {
	Name               string
	Description        string
	Target             float64
	CheckID            *int64
	HostID             *int64
	HostLabels         map[string]string
	Period             string // month, week, day, rolling
	RollingDays        *int32
	BusinessHours      *BusinessHours
	ExcludeMaintenance bool
}

// FromRow is the SLO of a stored row.
func FromRow(r dbsqlc.AppSlo) SLO {
	s := SLO{Name: r.Name, Description: r.Description, Target: r.Target, CheckID: r.CheckID, HostID: r.HostID,
		Period: r.Period, RollingDays: r.RollingDays, ExcludeMaintenance: r.ExcludeMaintenance}
	if len(r.HostLabels) > 0 {
		_ = json.Unmarshal(r.HostLabels, &s.HostLabels)
	}
	if len(r.BusinessHours) > 0 {
		var b BusinessHours
		if json.Unmarshal(r.BusinessHours, &b) == nil {
			s.BusinessHours = &b
		}
	}
	return s
}

// Scope is the checks the SLO covers.
func (s SLO) Scope() Scope {
	var sc Scope
	switch {
	case s.CheckID != nil:
		sc.CheckIDs = []int64{*s.CheckID}
	case s.HostID != nil:
		sc.HostIDs = []int64{*s.HostID}
	default:
		sc.HostLabels = s.HostLabels
	}
	return sc
}

// Options are the measuring options of the SLO over [from, to) in loc.
func (s SLO) Options(from, to time.Time, loc *time.Location) Options {
	return Options{From: from, To: to, Location: loc, BusinessHours: s.BusinessHours, ExcludeMaintenance: s.ExcludeMaintenance,
		Target: s.Target}
}

// CurrentPeriod is the SLO's period at now in loc.
func (s SLO) CurrentPeriod(now time.Time, loc *time.Location) Period {
	days := 0
	if s.RollingDays != nil {
		days = int(*s.RollingDays)
	}
	return Current(s.Period, days, now, loc)
}

// Input is the body of POST and PATCH /api/v1/slos; fields left out keep their value. Exactly one of
// check_id, host_id and host_labels names the scope (setting one clears the others); business_hours
// null removes them.
type Input struct {
	Name               *string            `json:"name"`
	Description        *string            `json:"description"`
	Target             *float64           `json:"target"`
	CheckID            *int64             `json:"check_id"`
	HostID             *int64             `json:"host_id"`
	HostLabels         *map[string]string `json:"host_labels"`
	Period             *string            `json:"period"`
	RollingDays        *int32             `json:"rolling_days"`
	BusinessHours      json.RawMessage    `json:"business_hours"`
	ExcludeMaintenance *bool              `json:"exclude_maintenance"`
}

// Apply puts the input over base (a zero SLO for a new one) and names every problem.
func (in Input) Apply(base SLO, creating bool) (SLO, []Problem) {
	var ps problems
	s := base
	if creating {
		s.Period, s.ExcludeMaintenance = PeriodMonth, true
	}
	if in.Name != nil {
		s.Name = strings.TrimSpace(*in.Name)
	}
	if s.Name == "" || len(s.Name) > 200 {
		ps.add("name", "must be 1 to 200 characters")
	}
	if in.Description != nil {
		s.Description = *in.Description
	}
	if len(s.Description) > 1024 {
		ps.add("description", "must be at most 1024 characters")
	}
	if in.Target != nil {
		s.Target = *in.Target
	}
	if math.IsNaN(s.Target) || s.Target <= 0 || s.Target > 100 {
		ps.add("target", "must be a percentage above 0 and at most 100, such as 99.9")
	}
	scopes := 0
	for _, set := range []bool{in.CheckID != nil, in.HostID != nil, in.HostLabels != nil} {
		if set {
			scopes++
		}
	}
	if scopes > 1 {
		ps.add("check_id", "name one of check_id, host_id and host_labels")
	} else if scopes == 1 {
		s.CheckID, s.HostID, s.HostLabels = in.CheckID, in.HostID, nil
		if in.HostLabels != nil {
			s.HostLabels = *in.HostLabels
			if s.HostLabels == nil {
				s.HostLabels = map[string]string{}
			}
		}
	}
	if s.CheckID == nil && s.HostID == nil && s.HostLabels == nil && scopes == 0 {
		ps.add("check_id", "name the checks: check_id, host_id or host_labels")
	}
	if s.HostLabels != nil && len(s.HostLabels) == 0 {
		ps.add("host_labels", "name at least one label (an empty selector would be every host)")
	}
	if in.Period != nil {
		s.Period = *in.Period
		if s.Period != PeriodRolling {
			s.RollingDays = nil
		}
	}
	if in.RollingDays != nil {
		s.RollingDays = in.RollingDays
	}
	switch s.Period {
	case PeriodMonth, PeriodWeek, PeriodDay:
		if in.RollingDays != nil {
			ps.add("rolling_days", "only a rolling period has days")
		}
	case PeriodRolling:
		if s.RollingDays == nil || *s.RollingDays < 1 || *s.RollingDays > 366 {
			ps.add("rolling_days", "a rolling period needs 1 to 366 days")
		}
	default:
		ps.add("period", "must be month, week, day or rolling")
	}
	if len(in.BusinessHours) > 0 {
		if string(in.BusinessHours) == "null" {
			s.BusinessHours = nil
		} else {
			var b BusinessHours
			if err := json.Unmarshal(in.BusinessHours, &b); err != nil {
				ps.add("business_hours", `must be {"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00"} or null`)
			} else {
				b.validate("business_hours", &ps)
				s.BusinessHours = &b
			}
		}
	}
	if in.ExcludeMaintenance != nil {
		s.ExcludeMaintenance = *in.ExcludeMaintenance
	}
	return s, ps
}

// Columns are the SLO's stored JSON columns.
func (s SLO) Columns() (hostLabels, businessHours []byte) {
	if s.HostLabels != nil {
		hostLabels, _ = json.Marshal(s.HostLabels)
	}
	if s.BusinessHours != nil {
		businessHours, _ = json.Marshal(s.BusinessHours)
	}
	return hostLabels, businessHours
}
