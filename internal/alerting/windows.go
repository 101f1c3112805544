package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/robfig/cron/v3"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Maintenance windows mute the alerts of the hosts, checks and labels they name while they are in
// force: once (starts_at to ends_at) or on a schedule (a cron spec, in the tenant's time zone, and a
// duration, from starts_at until ends_at when set). Their occurrences are stored as time ranges
// (app.maintenance_occurrences) — all of a one-off window's, a recurring window's for Horizon ahead,
// extended by the alerter — so that "was X in maintenance at time T" is one indexed query, for the
// alerter now and for the SLA reports later. Occurrences that have begun are never rewritten: a window
// changed or deleted keeps its past, and the one under way ends then.

// Bounds of a maintenance window.
const (
	maxWindowTargets   = 1000
	maxOneOffLength    = 366 * day
	maxOccurrenceSpan  = 31 * day
	maxOccurrencesSpan = 5000 // occurrences within 30 days: a cron firing more often is refused
)

// cronParser reads five-field specs (minute hour day-of-month month day-of-week) and the descriptors
// (@daily, @weekly, …) but not @every, which has no time zone.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// WindowSpec is a maintenance window as the user defines it.
type WindowSpec struct {
	Name     string
	Comment  string
	HostIDs  []int64
	CheckIDs []int64
	Matchers []Matcher
	StartsAt time.Time
	EndsAt   *time.Time // one-off: the end; recurring: no occurrence starts at or after it (nil: none)
	Cron     string     // empty: one-off
	Duration time.Duration
	TimeZone string
}

// WindowFromRow is the spec of a stored window.
func WindowFromRow(w dbsqlc.AppMaintenanceWindow) WindowSpec {
	s := WindowSpec{Name: w.Name, Comment: w.Comment, HostIDs: w.HostIds, CheckIDs: w.CheckIds, StartsAt: w.StartsAt,
		EndsAt: w.EndsAt, TimeZone: w.TimeZone}
	_ = json.Unmarshal(w.Matchers, &s.Matchers)
	if w.Cron != nil {
		s.Cron = *w.Cron
	}
	if w.DurationSeconds != nil {
		s.Duration = time.Duration(*w.DurationSeconds) * time.Second
	}
	return s
}

// WindowInput is the body of POST and PATCH /maintenance-windows; fields left out keep their value. On
// PATCH, "ends_at": "" removes the end of a recurring window, and "cron": "" makes it one-off.
type WindowInput struct {
	Name     *string    `json:"name"`
	Comment  *string    `json:"comment"`
	HostIDs  *[]int64   `json:"host_ids"`
	CheckIDs *[]int64   `json:"check_ids"`
	Matchers *[]Matcher `json:"matchers"`
	StartsAt *string    `json:"starts_at"`
	EndsAt   *string    `json:"ends_at"`
	Cron     *string    `json:"cron"`
	Duration *string    `json:"duration"`
}

// Apply puts the input over base (a zero spec with the tenant's time zone for a new window) and
// validates the result; now is the default start of a recurring window.
func (in WindowInput) Apply(base WindowSpec, creating bool, now time.Time) (WindowSpec, []Problem) {
	var ps problems
	w := base
	if creating && in.Name == nil {
		ps.add("name", "is required")
	}
	if in.Name != nil {
		w.Name = *in.Name
	}
	if in.Comment != nil {
		w.Comment = *in.Comment
	}
	if in.HostIDs != nil {
		w.HostIDs = *in.HostIDs
	}
	if in.CheckIDs != nil {
		w.CheckIDs = *in.CheckIDs
	}
	if in.Matchers != nil {
		w.Matchers = *in.Matchers
	}
	if in.Cron != nil {
		w.Cron = strings.TrimSpace(*in.Cron)
	}
	durationField(&ps, "duration", in.Duration, &w.Duration, time.Minute, maxOccurrenceSpan)
	if in.StartsAt != nil {
		if t, err := time.Parse(time.RFC3339, *in.StartsAt); err != nil {
			ps.add("starts_at", "must be a time in RFC 3339 (2026-03-01T02:00:00Z)")
		} else {
			w.StartsAt = t
		}
	} else if creating && w.Cron != "" {
		w.StartsAt = now.Truncate(time.Second)
	}
	if in.EndsAt != nil {
		if *in.EndsAt == "" {
			w.EndsAt = nil
		} else if t, err := time.Parse(time.RFC3339, *in.EndsAt); err != nil {
			ps.add("ends_at", "must be a time in RFC 3339 (2026-03-01T04:00:00Z)")
		} else {
			w.EndsAt = &t
		}
	}
	if w.Cron == "" {
		w.Duration = 0
	}
	if len(ps) > 0 {
		return w, ps
	}
	return w, w.validate(now)
}

func (w WindowSpec) validate(now time.Time) []Problem {
	var ps problems
	if n := utf8.RuneCountInString(w.Name); n < 1 || n > maxNameChars {
		ps.add("name", fmt.Sprintf("must be 1 to %d characters", maxNameChars))
	}
	if len(w.Comment) > 1024 {
		ps.add("comment", "must be at most 1024 bytes")
	}
	for _, ids := range []struct {
		field string
		list  []int64
	}{{"host_ids", w.HostIDs}, {"check_ids", w.CheckIDs}} {
		if len(ids.list) > maxWindowTargets {
			ps.add(ids.field, fmt.Sprintf("must name at most %d", maxWindowTargets))
		}
		for i, id := range ids.list {
			if id <= 0 || slices.Index(ids.list, id) < i {
				ps.add(fmt.Sprintf("%s[%d]", ids.field, i), "must be an id, once")
			}
		}
	}
	_, mps := CompileMatchers("matchers", w.Matchers)
	ps = append(ps, mps...)
	if w.StartsAt.IsZero() {
		ps.add("starts_at", "is required")
	}
	if w.Cron == "" {
		switch {
		case w.EndsAt == nil:
			ps.add("ends_at", "is required for a one-off window (or give cron and duration)")
		case !w.StartsAt.IsZero() && !w.EndsAt.After(w.StartsAt):
			ps.add("ends_at", "must be after starts_at")
		case !w.StartsAt.IsZero() && w.EndsAt.Sub(w.StartsAt) > maxOneOffLength:
			ps.add("ends_at", "a one-off window lasts at most 366 days")
		}
		return ps
	}
	if w.Duration == 0 {
		ps.add("duration", "is required with cron: how long each occurrence lasts")
	}
	if w.EndsAt != nil && !w.EndsAt.After(w.StartsAt) {
		ps.add("ends_at", "must be after starts_at")
	}
	if _, err := w.schedule(); err != nil {
		ps.add("cron", err.Error())
	} else if n := len(w.Occurrences(now, now.Add(30*day), maxOccurrencesSpan+1)); n > maxOccurrencesSpan {
		ps.add("cron", fmt.Sprintf("recurs more than %d times in 30 days", maxOccurrencesSpan))
	}
	return ps
}

// schedule parses the cron spec in the window's time zone.
func (w WindowSpec) schedule() (cron.Schedule, error) {
	loc, err := time.LoadLocation(w.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("the tenant's time zone %q is unknown to this server", w.TimeZone)
	}
	if strings.HasPrefix(w.Cron, "@every") || strings.Contains(w.Cron, "TZ=") {
		return nil, fmt.Errorf("must be five fields (minute hour day-of-month month day-of-week) or @daily, @weekly, …; " +
			"it runs in the tenant's time zone")
	}
	s, err := cronParser.Parse(w.Cron)
	if err != nil {
		return nil, fmt.Errorf("is not a cron spec: %v", err)
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("must be five fields or a descriptor such as @daily")
	}
	spec.Location = loc
	return spec, nil
}

// Range is one occurrence: [Start, End).
type Range struct {
	Start, End time.Time
}

// Occurrences are the window's occurrences that overlap [from, to), at most limit of them, in order.
// A recurring window's occur at each time its cron spec names in its time zone — across a change of
// daylight saving time, at the same local time each day, robfig/cron's rules deciding for a local time
// that does not exist or exists twice — from starts_at, none starting at or after ends_at.
func (w WindowSpec) Occurrences(from, to time.Time, limit int) []Range {
	if w.Cron == "" {
		if w.EndsAt == nil || !w.EndsAt.After(from) || !w.StartsAt.Before(to) {
			return nil
		}
		return []Range{{w.StartsAt, *w.EndsAt}}
	}
	s, err := w.schedule()
	if err != nil {
		return nil
	}
	begin := from.Add(-w.Duration)
	if begin.Before(w.StartsAt) {
		begin = w.StartsAt
	}
	var out []Range
	for t := s.Next(begin.Add(-time.Second)); !t.IsZero() && t.Before(to) && len(out) < limit; t = s.Next(t) {
		if w.EndsAt != nil && !t.Before(*w.EndsAt) {
			break
		}
		if t.Before(w.StartsAt) {
			continue
		}
		if end := t.Add(w.Duration); end.After(from) {
			out = append(out, Range{t.UTC(), end.UTC()})
		}
	}
	return out
}

// CompiledMatchers is the matchers as SQL reads them (app.maintenance_windows.matchers_sql).
func (w WindowSpec) CompiledMatchers() json.RawMessage {
	c, _ := CompileMatchers("matchers", w.Matchers)
	return mustJSON(c.SQL())
}

// MatchersJSON is the matchers as stored and shown.
func (w WindowSpec) MatchersJSON() json.RawMessage {
	if w.Matchers == nil {
		return json.RawMessage("[]")
	}
	return mustJSON(w.Matchers)
}

// Materialize stores the occurrences of window id of tenant from now (the one under way included) up
// to until, and returns how far a recurring window's now exist (nil for a one-off window, all of whose
// occurrence is stored). q runs as the tenant (the API) or as system work (the alerter).
func Materialize(ctx context.Context, q *dbsqlc.Queries, tenant uuid.UUID, id int64, w WindowSpec, from, until time.Time) (*time.Time, error) {
	if w.Cron == "" {
		from = w.StartsAt // a one-off window is stored whole, past or not
	}
	occ := w.Occurrences(from, until, 100_000)
	p := dbsqlc.MaintenanceOccurrenceInsertParams{TenantID: tenant, WindowID: id}
	for _, o := range occ {
		p.Starts = append(p.Starts, o.Start)
		p.Ends = append(p.Ends, o.End)
	}
	if len(occ) > 0 {
		if err := q.MaintenanceOccurrenceInsert(ctx, p); err != nil {
			return nil, fmt.Errorf("store the occurrences of maintenance window %d: %w", id, err)
		}
	}
	if w.Cron == "" {
		return nil, nil
	}
	return &until, nil
}

// Rewind ends the occurrence of a window under way at now and removes those to come, before the window
// changes or goes; past occurrences stay.
func Rewind(ctx context.Context, q *dbsqlc.Queries, id int64, now time.Time) error {
	if err := q.MaintenanceOccurrenceDropFuture(ctx, dbsqlc.MaintenanceOccurrenceDropFutureParams{WindowID: id, Now: now}); err != nil {
		return fmt.Errorf("remove the coming occurrences of maintenance window %d: %w", id, err)
	}
	if err := q.MaintenanceOccurrenceEndCurrent(ctx, dbsqlc.MaintenanceOccurrenceEndCurrentParams{WindowID: id, Now: now}); err != nil {
		return fmt.Errorf("end the occurrence under way of maintenance window %d: %w", id, err)
	}
	return nil
}

// extendWindows makes the occurrences of recurring windows exist Horizon ahead, every ExtendEvery.
// Alerters may do it side by side: an occurrence stored twice is stored once.
func (e *Engine) extendWindows(ctx context.Context) error {
	now := e.clock.Now()
	e.mu.Lock()
	due := !now.Before(e.nextExtend)
	if due {
		e.nextExtend = now.Add(e.cfg.ExtendEvery)
	}
	e.mu.Unlock()
	if !due {
		return nil
	}
	until := now.Add(e.cfg.Horizon)
	for {
		rows, err := e.sys.Queries().MaintenanceWindowsToExtend(ctx, dbsqlc.MaintenanceWindowsToExtendParams{
			Until: until.Add(-e.cfg.ExtendEvery), MaxRows: 100})
		if err != nil {
			return fmt.Errorf("read recurring windows: %w", err)
		}
		for _, r := range rows {
			w := WindowSpec{StartsAt: r.StartsAt, EndsAt: r.EndsAt, Cron: *r.Cron, TimeZone: r.TimeZone,
				Duration: time.Duration(*r.DurationSeconds) * time.Second}
			from := now
			if r.MaterializedUntil != nil && r.MaterializedUntil.After(from) {
				from = *r.MaterializedUntil
			}
			err := e.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
				if _, err := Materialize(ctx, q, r.TenantID, r.ID, w, from, until); err != nil {
					return err
				}
				return q.MaintenanceWindowSetMaterialized(ctx, dbsqlc.MaintenanceWindowSetMaterializedParams{ID: r.ID, Until: until})
			})
			if err != nil {
				return err
			}
		}
		if len(rows) < 100 {
			return nil
		}
	}
}
