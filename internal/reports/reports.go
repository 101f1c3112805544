// Package reports makes the scheduled SLA reports: their definitions (what they cover, which period,
// when they go out, to whom, in which language and formats), their rendering (the HTML email with an
// inline PNG strip per SLO, CSV and PDF attachments; templates in the repository's reports/ directory)
// and the scheduler role's worker that sends one email per report and period (worker.go).
//
// The numbers are internal/sla's, computed as the report's tenant (row-level security), so a report
// never holds another tenant's check.
package reports

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/sla"
)

// Periods of reports, and the SLA period kind each one is.
const (
	Daily   = "daily"
	Weekly  = "weekly"
	Monthly = "monthly"
)

var periodKinds = map[string]string{Daily: sla.PeriodDay, Weekly: sla.PeriodWeek, Monthly: sla.PeriodMonth}

// Languages the reports are written in.
var Languages = []string{"en", "pt-BR"}

// Formats of attachments (the HTML body is always there).
var Formats = []string{"csv", "pdf"}

const maxRecipients = 50

// DefaultSchedule is when a period's report goes out unless the definition says otherwise: 07:00 on the
// first day after the period, in the tenant's zone.
func DefaultSchedule(period string) string {
	switch period {
	case Daily:
		return "0 7 * * *"
	case Weekly:
		return "0 7 * * 1"
	default:
		return "0 7 1 * *"
	}
}

// cronParser reads the five-field specs of maintenance windows too (minute hour day month weekday).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Definition is a report as stored.
type Definition struct {
	Name       string
	SLOIDs     []int64
	CheckIDs   []int64
	HostIDs    []int64
	HostLabels map[string]string
	Period     string
	Schedule   string
	Recipients []string
	Formats    []string
	Language   string
	Enabled    bool
}

// FromRow is the definition of a stored report.
func FromRow(r dbsqlc.AppReport) Definition {
	d := Definition{Name: r.Name, SLOIDs: r.SloIds, CheckIDs: r.CheckIds, HostIDs: r.HostIds, Period: r.Period,
		Schedule: r.Schedule, Recipients: r.Recipients, Formats: r.Formats, Language: r.Language, Enabled: r.Enabled}
	if len(r.HostLabels) > 0 {
		_ = json.Unmarshal(r.HostLabels, &d.HostLabels)
	}
	return d
}

// HostLabelsJSON is the stored form of the label selector (nil: none).
func (d Definition) HostLabelsJSON() []byte {
	if d.HostLabels == nil {
		return nil
	}
	b, _ := json.Marshal(d.HostLabels)
	return b
}

// Kind is the SLA period kind of the report's period.
func (d Definition) Kind() string { return periodKinds[d.Period] }

// NextRun is the period whose report is due next after now and when it goes out: the period under way
// at now, sent at the first time of the schedule at or after its end, in loc.
func (d Definition) NextRun(now time.Time, loc *time.Location) (sla.Period, time.Time, error) {
	p := sla.PeriodOf(d.Kind(), now, loc)
	at, err := d.RunAt(p, loc)
	return p, at, err
}

// RunAt is when the report of period p goes out: the first time of the schedule at or after its end.
func (d Definition) RunAt(p sla.Period, loc *time.Location) (time.Time, error) {
	sched, err := cronParser.Parse(d.Schedule)
	if err != nil {
		return time.Time{}, err
	}
	return sched.Next(p.End.In(loc).Add(-time.Second)).UTC(), nil
}

// Input is the body of POST and PATCH /api/v1/reports; fields left out keep their value.
type Input struct {
	Name       *string            `json:"name"`
	SLOIDs     *[]int64           `json:"slo_ids"`
	CheckIDs   *[]int64           `json:"check_ids"`
	HostIDs    *[]int64           `json:"host_ids"`
	HostLabels *map[string]string `json:"host_labels"`
	Period     *string            `json:"period"`
	Schedule   *string            `json:"schedule"`
	Recipients *[]string          `json:"recipients"`
	Formats    *[]string          `json:"formats"`
	Language   *string            `json:"language"`
	Enabled    *bool              `json:"enabled"`
}

// Apply puts the input over base (a zero definition for a new one) and names every problem. A new
// report without a schedule takes its period's default; a change of period without one too.
func (in Input) Apply(base Definition, creating bool) (Definition, []sla.Problem) {
	var ps []sla.Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, sla.Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	d := base
	if creating {
		d.Language, d.Enabled, d.Formats = "en", true, []string{}
	}
	if in.Name != nil {
		d.Name = strings.TrimSpace(*in.Name)
	}
	if d.Name == "" || len(d.Name) > 200 {
		add("name", "must be 1 to 200 characters")
	}
	if in.SLOIDs != nil {
		d.SLOIDs = *in.SLOIDs
	}
	if in.CheckIDs != nil {
		d.CheckIDs = *in.CheckIDs
	}
	if in.HostIDs != nil {
		d.HostIDs = *in.HostIDs
	}
	if in.HostLabels != nil {
		d.HostLabels = *in.HostLabels
		if len(d.HostLabels) == 0 {
			d.HostLabels = nil
		}
	}
	for field, ids := range map[string][]int64{"slo_ids": d.SLOIDs, "check_ids": d.CheckIDs, "host_ids": d.HostIDs} {
		if len(ids) > 200 {
			add(field, "must list at most 200 ids")
		}
	}
	if len(d.SLOIDs)+len(d.CheckIDs)+len(d.HostIDs) == 0 && d.HostLabels == nil {
		add("slo_ids", "name what the report covers: slo_ids, check_ids, host_ids or host_labels")
	}
	periodChanged := in.Period != nil && *in.Period != d.Period
	if in.Period != nil {
		d.Period = *in.Period
	}
	if _, ok := periodKinds[d.Period]; !ok {
		add("period", "must be daily, weekly or monthly")
	}
	if in.Schedule != nil {
		d.Schedule = strings.TrimSpace(*in.Schedule)
	}
	if (in.Schedule == nil && (creating || periodChanged)) || d.Schedule == "" {
		d.Schedule = DefaultSchedule(d.Period)
	}
	if _, err := cronParser.Parse(d.Schedule); err != nil || len(d.Schedule) > 200 {
		add("schedule", "must be a cron spec of five fields (minute hour day month weekday) in the tenant's time zone, such as 0 7 1 * *")
	}
	if in.Recipients != nil {
		d.Recipients = *in.Recipients
	}
	if len(d.Recipients) == 0 || len(d.Recipients) > maxRecipients {
		add("recipients", "must list 1 to %d email addresses", maxRecipients)
	}
	for i, to := range d.Recipients {
		addr, err := mail.ParseAddress(to)
		if err != nil || addr.Name != "" || len(to) > 254 || strings.ContainsAny(to, "\r\n") {
			add(fmt.Sprintf("recipients[%d]", i), "must be a plain email address (name@example.com)")
		}
	}
	if in.Formats != nil {
		d.Formats = slices.Compact(slices.Sorted(slices.Values(*in.Formats)))
	}
	for i, f := range d.Formats {
		if !slices.Contains(Formats, f) {
			add(fmt.Sprintf("formats[%d]", i), "must be csv or pdf (the HTML body is always there)")
		}
	}
	if in.Language != nil {
		d.Language = *in.Language
	}
	if !slices.Contains(Languages, d.Language) {
		add("language", "must be en or pt-BR")
	}
	if in.Enabled != nil {
		d.Enabled = *in.Enabled
	}
	return d, ps
}
