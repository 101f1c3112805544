// Package sla computes the service-level numbers of checks — availability, downtime, incidents, MTTR,
// MTBF, error budgets, a per-day breakdown — and validates SLO definitions.
//
// Every number comes from one statement (queries/slos.sql, SloCheckNumbers) that cuts each check's time
// in the range into parts that do not overlap, as multiranges of exact instants:
//
//   - unmonitored: before the check existed (its created_at);
//   - outside_hours: outside the SLO's business hours (local time of the tenant's zone);
//   - maintenance: in an occurrence of a maintenance window covering the check, when excluded;
//   - up, down: the status of the last status change (app.check_events) before each instant, where a
//     result vouches for it — downtime is measured from transitions, not by counting samples;
//   - unknown: the rest of the measured time, the poller gaps (app.check_gaps, settled by GapSettler
//     from the raw results; the newer tail is computed from the raw results at each read).
//
// Go only adds the parts up (Summarize): availability = up / (up + down), unknown is reported beside
// it and never counted as up. README § "SLA and reports" gives the definitions and the SQL.
package sla

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// ErrInvalid marks a request the numbers cannot be computed for (a range backwards or too long).
var ErrInvalid = errors.New("invalid SLA request")

// MaxRange is the longest range one request computes.
const MaxRange = 400 * 24 * time.Hour

// Seconds is how one span of time divides, in seconds: the parts add up to the span's length.
type Seconds struct {
	Up           float64 `json:"up"`
	Down         float64 `json:"down"`
	Unknown      float64 `json:"unknown"`
	Maintenance  float64 `json:"maintenance"`
	OutsideHours float64 `json:"outside_hours"`
	Unmonitored  float64 `json:"unmonitored"`
}

func (s *Seconds) add(o Seconds) {
	s.Up += o.Up
	s.Down += o.Down
	s.Unknown += o.Unknown
	s.Maintenance += o.Maintenance
	s.OutsideHours += o.OutsideHours
	s.Unmonitored += o.Unmonitored
}

// Availability is up / (up + down) in percent, nil when no time of known status was measured.
func (s Seconds) Availability() *float64 {
	known := s.Up + s.Down
	if known <= 0 {
		return nil
	}
	a := 100 * s.Up / known
	return &a
}

// Day is one local day of the tenant's zone (23 or 25 hours across a change of daylight saving time).
type Day struct {
	Day          string   `json:"day"` // 2026-11-28
	Availability *float64 `json:"availability"`
	Seconds
}

// Incident is a span in which a check was down and some of it counted (measured time of known status).
type Incident struct {
	CheckID   int64      `json:"check_id"`
	CheckName string     `json:"check_name"`
	Start     time.Time  `json:"start"`
	End       *time.Time `json:"end"` // nil: still down
	// Duration is End − Start (nil while down); Counted the down seconds of it inside the range that
	// counted (not in maintenance, business hours, known status).
	Duration *float64 `json:"duration_seconds"`
	Counted  float64  `json:"counted_seconds"`
	Reason   string   `json:"reason"` // the reason of the first failed result
}

// Budget is the error budget of a target over the measured time of known status: allowed is
// (1 − target) of it, spent the downtime, burn rate the downtime's share over the allowed share (1:
// the budget lasts exactly the period).
type Budget struct {
	Target   float64 `json:"target"`
	Allowed  float64 `json:"allowed_seconds"`
	Spent    float64 `json:"spent_seconds"`
	Left     float64 `json:"left_seconds"`
	BurnRate float64 `json:"burn_rate"`
}

// Summary is what a set of checks' numbers add up to.
type Summary struct {
	Availability *float64 `json:"availability"`
	Seconds      Seconds  `json:"seconds"`
	Incidents    int      `json:"incident_count"`
	// MTTR is the mean counted downtime of an incident, MTBF the up time per incident; nil without one.
	MTTR *float64 `json:"mttr_seconds"`
	MTBF *float64 `json:"mtbf_seconds"`
	// Budget is nil without a target.
	Budget *Budget `json:"error_budget"`
}

// CheckNumbers are the numbers of one check.
type CheckNumbers struct {
	ID       int64   `json:"id"`
	Name     string  `json:"name"`
	HostID   *int64  `json:"host_id"`
	HostName *string `json:"host_name"`
	Summary
	days      []Day
	incidents []Incident
}

// Numbers are the SLA numbers of a set of checks over a range.
type Numbers struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	TimeZone string    `json:"time_zone"`
	Summary
	Days      []Day          `json:"days"`
	Checks    []CheckNumbers `json:"checks"`
	Incidents []Incident     `json:"incidents"`
}

// Scope names checks: by id, the checks of hosts, the checks of hosts whose labels contain HostLabels.
type Scope struct {
	CheckIDs   []int64
	HostIDs    []int64
	HostLabels map[string]string
}

// Options say how the range is measured.
type Options struct {
	From, To           time.Time // To is cut at now
	Location           *time.Location
	BusinessHours      *BusinessHours // nil: every hour counts
	ExcludeMaintenance bool
	Target             float64 // percent; 0: no error budget
	// Settled overrides how far stored poller gaps are used (nil: as far as the scheduler settled
	// them; a time before every check: every gap from the raw results).
	Settled *time.Time
}

// Compute reads the numbers of the checks of scope, as the tenant of q. Checks of another tenant are
// not seen (row-level security), so a scope naming them yields nothing of theirs.
func Compute(ctx context.Context, q *dbsqlc.Queries, scope Scope, o Options, now time.Time) (Numbers, error) {
	checks, err := ScopeChecks(ctx, q, scope)
	if err != nil {
		return Numbers{}, err
	}
	return ComputeChecks(ctx, q, checks, o, now)
}

// ScopeChecks lists the tenant's checks of a scope.
func ScopeChecks(ctx context.Context, q *dbsqlc.Queries, scope Scope) ([]dbsqlc.SloScopeChecksRow, error) {
	var labels []byte
	if scope.HostLabels != nil {
		var err error
		if labels, err = json.Marshal(scope.HostLabels); err != nil {
			return nil, err
		}
	}
	rows, err := q.SloScopeChecks(ctx, dbsqlc.SloScopeChecksParams{CheckIds: orNone(scope.CheckIDs), HostIds: orNone(scope.HostIDs),
		HostLabels: labels})
	if err != nil {
		return nil, fmt.Errorf("list the checks of the scope: %w", err)
	}
	return rows, nil
}

func orNone(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// ComputeChecks reads the numbers of the given checks (of the tenant of q).
func ComputeChecks(ctx context.Context, q *dbsqlc.Queries, checks []dbsqlc.SloScopeChecksRow, o Options, now time.Time) (Numbers, error) {
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.To.After(now) {
		o.To = now
	}
	if !o.From.Before(o.To) {
		return Numbers{}, fmt.Errorf("%w: from (%s) must be before to (%s, and not after now)", ErrInvalid,
			o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	if o.To.Sub(o.From) > MaxRange {
		return Numbers{}, fmt.Errorf("%w: the range is longer than %d days", ErrInvalid, int(MaxRange/(24*time.Hour)))
	}
	n := Numbers{From: o.From.UTC(), To: o.To.UTC(), TimeZone: o.Location.String(), Days: []Day{}, Checks: []CheckNumbers{},
		Incidents: []Incident{}}
	if len(checks) == 0 {
		n.Summary = summarize(Seconds{}, nil, o.Target)
		return n, nil
	}
	p := dbsqlc.SloCheckNumbersParams{FromTime: o.From, ToTime: o.To, TimeZone: o.Location.String(), BusinessDays: []int32{},
		ExcludeMaintenance: o.ExcludeMaintenance, Settled: o.Settled}
	if bh := o.BusinessHours; bh != nil {
		p.BusinessDays = bh.isoDays()
		p.BusinessStart, p.BusinessEnd = bh.startEnd()
	}
	byID := map[int64]dbsqlc.SloScopeChecksRow{}
	for _, c := range checks {
		p.CheckIds = append(p.CheckIds, c.ID)
		byID[c.ID] = c
	}
	rows, err := q.SloCheckNumbers(ctx, p)
	if err != nil {
		return Numbers{}, fmt.Errorf("compute the SLA numbers of %d checks: %w", len(checks), err)
	}
	var total Seconds
	var dayIndex = map[string]int{}
	for _, r := range rows {
		c := byID[r.CheckID]
		cn := CheckNumbers{ID: c.ID, Name: c.Name, HostID: c.HostID, HostName: c.HostName}
		if err := json.Unmarshal(r.Days, &cn.days); err != nil {
			return Numbers{}, fmt.Errorf("read the days of check %d: %w", c.ID, err)
		}
		var incs []struct {
			Start   time.Time  `json:"start"`
			End     *time.Time `json:"end"`
			Reason  string     `json:"reason"`
			Counted float64    `json:"counted"`
		}
		if err := json.Unmarshal(r.Incidents, &incs); err != nil {
			return Numbers{}, fmt.Errorf("read the incidents of check %d: %w", c.ID, err)
		}
		var sum Seconds
		for _, d := range cn.days {
			sum.add(d.Seconds)
			i, ok := dayIndex[d.Day]
			if !ok {
				i = len(n.Days)
				dayIndex[d.Day] = i
				n.Days = append(n.Days, Day{Day: d.Day})
			}
			n.Days[i].add(d.Seconds)
		}
		for _, in := range incs {
			inc := Incident{CheckID: c.ID, CheckName: c.Name, Start: in.Start.UTC(), Counted: in.Counted, Reason: in.Reason}
			if in.End != nil {
				e := in.End.UTC()
				d := e.Sub(inc.Start).Seconds()
				inc.End, inc.Duration = &e, &d
			}
			cn.incidents = append(cn.incidents, inc)
		}
		cn.Summary = summarize(sum, cn.incidents, o.Target)
		total.add(sum)
		n.Checks = append(n.Checks, cn)
		n.Incidents = append(n.Incidents, cn.incidents...)
	}
	for i := range n.Days {
		n.Days[i].Availability = n.Days[i].Seconds.Availability()
	}
	sortIncidents(n.Incidents)
	n.Summary = summarize(total, n.Incidents, o.Target)
	return n, nil
}

// summarize adds up a set of checks' seconds and incidents.
func summarize(s Seconds, incidents []Incident, target float64) Summary {
	out := Summary{Availability: s.Availability(), Seconds: s, Incidents: len(incidents)}
	if len(incidents) > 0 {
		var down float64
		for _, in := range incidents {
			down += in.Counted
		}
		mttr := down / float64(len(incidents))
		mtbf := s.Up / float64(len(incidents))
		out.MTTR, out.MTBF = &mttr, &mtbf
	}
	if target > 0 {
		known := s.Up + s.Down
		allowed := (1 - target/100) * known
		b := Budget{Target: target, Allowed: allowed, Spent: s.Down, Left: allowed - s.Down}
		if allowed > 0 {
			b.BurnRate = s.Down / allowed
		}
		out.Budget = &b
	}
	return out
}

func sortIncidents(in []Incident) {
	slices.SortStableFunc(in, func(a, b Incident) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.CheckID, b.CheckID)
	})
}
