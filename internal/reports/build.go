package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/sla"
)

// Build computes report id's numbers for period p, as the report's tenant (q runs as it): a section
// per SLO (in the order of the definition; an SLO deleted since is left out) over the period with the
// SLO's business hours and maintenance setting, and one for the checks named by id, host or labels.
func Build(ctx context.Context, q *dbsqlc.Queries, id int64, d Definition, tenantName string, p sla.Period,
	loc *time.Location, now time.Time) (Report, error) {
	r := Report{ID: id, Name: d.Name, Tenant: tenantName, Language: d.Language, Period: p, TimeZone: loc.String(), GeneratedAt: now}
	if len(d.SLOIDs) > 0 {
		slos, err := q.SloListByIDs(ctx, d.SLOIDs)
		if err != nil {
			return Report{}, fmt.Errorf("read the SLOs of report %d: %w", id, err)
		}
		byID := map[int64]dbsqlc.AppSlo{}
		for _, s := range slos {
			byID[s.ID] = s
		}
		for _, sid := range d.SLOIDs {
			row, ok := byID[sid]
			if !ok {
				continue
			}
			o := sla.FromRow(row)
			n, err := sla.Compute(ctx, q, o.Scope(), o.Options(p.Start, p.End, loc), now)
			if err != nil {
				return Report{}, fmt.Errorf("compute SLO %d of report %d: %w", sid, id, err)
			}
			target := o.Target
			r.Sections = append(r.Sections, Section{Title: o.Name, Target: &target, BusinessHours: o.BusinessHours, Numbers: n})
		}
	}
	if len(d.CheckIDs)+len(d.HostIDs) > 0 || d.HostLabels != nil {
		n, err := sla.Compute(ctx, q, sla.Scope{CheckIDs: d.CheckIDs, HostIDs: d.HostIDs, HostLabels: d.HostLabels},
			sla.Options{From: p.Start, To: p.End, Location: loc, ExcludeMaintenance: true}, now)
		if err != nil {
			return Report{}, fmt.Errorf("compute the checks of report %d: %w", id, err)
		}
		r.Sections = append(r.Sections, Section{Title: words(d.Language)["checks"], Numbers: n})
	}
	return r, nil
}

// Prepared is a report read, built and rendered for one period.
type Prepared struct {
	Stored   dbsqlc.ReportGetSystemRow
	Report   Report
	Rendered Rendered
}

// Location is a tenant's zone, UTC when this server does not know it.
func Location(zone string) *time.Location {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// ParsePeriod reads a period's name for a report of kind period (monthly: 2026-11, weekly: 2026-W47,
// daily: 2026-11-28) in loc.
func ParsePeriod(period, name string, loc *time.Location) (sla.Period, error) {
	p, err := sla.ParsePeriod(name, loc)
	if err != nil {
		return sla.Period{}, err
	}
	if p.Kind != periodKinds[period] {
		return sla.Period{}, fmt.Errorf("%q is not a period of a %s report (%s)", name, period,
			map[string]string{Daily: "2026-11-28", Weekly: "2026-W47", Monthly: "2026-11"}[period])
	}
	return p, nil
}

// Prepare reads report id (system work: any tenant's), computes period name as the report's tenant
// and renders it; imageSrc says how the HTML refers to images. db.ErrNotFound when there is no such
// report.
func Prepare(ctx context.Context, sys *db.System, tenants *db.TenantRunner, id int64, periodName string, now time.Time,
	imageSrc func(Image) string) (Prepared, error) {
	stored, err := sys.Queries().ReportGetSystem(ctx, id)
	if err != nil {
		return Prepared{}, fmt.Errorf("read report %d: %w", id, err)
	}
	loc := Location(stored.TimeZone)
	p, err := ParsePeriod(stored.Period, periodName, loc)
	if err != nil {
		return Prepared{}, err
	}
	def := FromRow(dbsqlc.AppReport{Name: stored.Name, SloIds: stored.SloIds, CheckIds: stored.CheckIds, HostIds: stored.HostIds,
		HostLabels: stored.HostLabels, Period: stored.Period, Schedule: stored.Schedule, Recipients: stored.Recipients,
		Formats: stored.Formats, Language: stored.Language, Enabled: stored.Enabled})
	var r Report
	if err := tenants.WithTenant(ctx, stored.TenantID, func(q *dbsqlc.Queries) error {
		r, err = Build(ctx, q, id, def, stored.TenantName, p, loc, now)
		return err
	}); err != nil {
		return Prepared{}, err
	}
	out, err := Render(r, def.Formats, imageSrc)
	if err != nil {
		return Prepared{}, err
	}
	return Prepared{Stored: stored, Report: r, Rendered: out}, nil
}
