package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/reports"
	"github.com/infrawatch/infrawatch/internal/sla"
)

// Scheduled SLA reports: /api/v1/reports (admins). internal/reports validates and renders them; the
// scheduler role sends them, one email per report and period.

var lookupReport = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
	_, err := q.ReportGetByID(c.Request.Context(), id)
	return err
})

// Report is a report definition as the API shows it.
type Report struct {
	ID         int64             `json:"id"`
	Name       string            `json:"name"`
	SLOIDs     []int64           `json:"slo_ids"`
	CheckIDs   []int64           `json:"check_ids"`
	HostIDs    []int64           `json:"host_ids"`
	HostLabels map[string]string `json:"host_labels"`
	Period     string            `json:"period"`
	Schedule   string            `json:"schedule"`
	Recipients []string          `json:"recipients"`
	Formats    []string          `json:"formats"`
	Language   string            `json:"language"`
	Enabled    bool              `json:"enabled"`
	NextPeriod string            `json:"next_period"`
	NextRunAt  time.Time         `json:"next_run_at"`
	CreatedBy  string            `json:"created_by"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

func reportOut(r dbsqlc.AppReport) Report {
	d := reports.FromRow(r)
	return Report{ID: r.ID, Name: r.Name, SLOIDs: orEmpty(r.SloIds), CheckIDs: orEmpty(r.CheckIds), HostIDs: orEmpty(r.HostIds),
		HostLabels: d.HostLabels, Period: r.Period, Schedule: r.Schedule, Recipients: orEmpty(r.Recipients),
		Formats: orEmpty(r.Formats), Language: r.Language, Enabled: r.Enabled, NextPeriod: r.NextPeriod, NextRunAt: r.NextRunAt,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// ReportRun is one period's run of a report.
type ReportRun struct {
	ID          int64      `json:"id"`
	ReportID    int64      `json:"report_id"`
	Period      string     `json:"period"`
	PeriodStart time.Time  `json:"period_start"`
	PeriodEnd   time.Time  `json:"period_end"`
	Manual      bool       `json:"manual"`
	State       string     `json:"state"`
	Generation  int32      `json:"generation"`
	Attempts    int32      `json:"attempts"`
	LastError   string     `json:"last_error"`
	MessageID   string     `json:"message_id"`
	Recipients  int32      `json:"recipients"`
	SentAt      *time.Time `json:"sent_at"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

func runOut(r dbsqlc.AppReportRun) ReportRun {
	return ReportRun{ID: r.ID, ReportID: r.ReportID, Period: r.Period, PeriodStart: r.PeriodStart, PeriodEnd: r.PeriodEnd,
		Manual: r.Manual, State: r.State, Generation: r.Generation, Attempts: r.Attempts, LastError: r.LastError,
		MessageID: r.MessageID, Recipients: r.Recipients, SentAt: r.SentAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// reportTargets refuses SLOs, checks and hosts that are not the tenant's, naming each, with errs.
func reportTargets(c *gin.Context, q *dbsqlc.Queries, d reports.Definition, errs fieldErrors) error {
	ctx := c.Request.Context()
	for _, k := range []struct {
		field, what string
		ids         []int64
		known       func([]int64) ([]int64, error)
	}{
		{"slo_ids", "SLO", d.SLOIDs, func(ids []int64) ([]int64, error) { return q.ReportKnownSLOs(ctx, ids) }},
		{"check_ids", "check", d.CheckIDs, func(ids []int64) ([]int64, error) { return q.CheckListKnownIDs(ctx, ids) }},
		{"host_ids", "host", d.HostIDs, func(ids []int64) ([]int64, error) { return q.MaintenanceWindowKnownHosts(ctx, ids) }},
	} {
		if len(k.ids) == 0 {
			continue
		}
		have, err := k.known(k.ids)
		if err != nil {
			return err
		}
		for i, id := range k.ids {
			if !slices.Contains(have, id) {
				errs.add(k.field+"["+strconv.Itoa(i)+"]", "no such %s", k.what)
			}
		}
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	return nil
}

// tenantZone is the current tenant's time zone.
func tenantZone(c *gin.Context, q *dbsqlc.Queries) (*time.Location, error) {
	t, err := q.TenantGetCurrent(c.Request.Context())
	if err != nil {
		return nil, err
	}
	return reports.Location(t.TimeZone), nil
}

// saveReport stores a definition, with its next period and when it is due from now.
func saveReport(c *gin.Context, q *dbsqlc.Queries, id int64, d reports.Definition) (dbsqlc.AppReport, error) {
	ctx := c.Request.Context()
	loc, err := tenantZone(c, q)
	if err != nil {
		return dbsqlc.AppReport{}, err
	}
	p, at, err := d.NextRun(time.Now(), loc)
	if err != nil {
		return dbsqlc.AppReport{}, invalid(fieldErrors{{Field: "schedule", Message: err.Error()}})
	}
	if id == 0 {
		actor, err := actorName(c, q)
		if err != nil {
			return dbsqlc.AppReport{}, err
		}
		return q.ReportCreate(ctx, dbsqlc.ReportCreateParams{Name: d.Name, SloIds: d.SLOIDs, CheckIds: d.CheckIDs, HostIds: d.HostIDs,
			HostLabels: d.HostLabelsJSON(), Period: d.Period, Schedule: d.Schedule, Recipients: d.Recipients, Formats: d.Formats,
			Language: d.Language, Enabled: d.Enabled, NextRunAt: at, NextPeriod: p.Name, CreatedBy: actor})
	}
	return q.ReportUpdate(ctx, dbsqlc.ReportUpdateParams{ID: id, Name: d.Name, SloIds: d.SLOIDs, CheckIds: d.CheckIDs, HostIds: d.HostIDs,
		HostLabels: d.HostLabelsJSON(), Period: d.Period, Schedule: d.Schedule, Recipients: d.Recipients, Formats: d.Formats,
		Language: d.Language, Enabled: d.Enabled, NextRunAt: at, NextPeriod: p.Name})
}

func (s *server) listReports(c *gin.Context) {
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppReport, error) {
		return q.ReportList(c.Request.Context(), dbsqlc.ReportListParams{AfterID: after, MaxRows: limit})
	}, reportOut, func(r Report) int64 { return r.ID })
}

func (s *server) getReport(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var out Report
	if s.inTenant(c, func(q *dbsqlc.Queries) error {
		row, err := q.ReportGetByID(c.Request.Context(), id)
		out = reportOut(row)
		return err
	}) {
		c.JSON(http.StatusOK, out)
	}
}

func (s *server) createReport(c *gin.Context) {
	var in reports.Input
	if !decodeBody(c, &in) {
		return
	}
	var out Report
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		d, ps := in.Apply(reports.Definition{}, true)
		if err := reportTargets(c, q, d, slaProblems(ps)); err != nil {
			return err
		}
		row, err := saveReport(c, q, 0, d)
		if err != nil {
			return err
		}
		out = reportOut(row)
		return record(c, q, "report.create", "report", strconv.FormatInt(row.ID, 10), gin.H{"name": row.Name})
	}) {
		return
	}
	c.JSON(http.StatusCreated, out)
}

func (s *server) updateReport(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var in reports.Input
	if !decodeBody(c, &in) {
		return
	}
	var out Report
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		stored, err := q.ReportGetByID(c.Request.Context(), id)
		if err != nil {
			return err
		}
		d, ps := in.Apply(reports.FromRow(stored), false)
		if err := reportTargets(c, q, d, slaProblems(ps)); err != nil {
			return err
		}
		row, err := saveReport(c, q, id, d)
		if err != nil {
			return err
		}
		out = reportOut(row)
		return record(c, q, "report.update", "report", strconv.FormatInt(id, 10), nil)
	}) {
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *server) deleteReport(c *gin.Context) {
	s.removeByID(c, "report.delete", "report", func(q *dbsqlc.Queries, id int64) error {
		return deleted(q.ReportDelete(c.Request.Context(), id))
	})
}

// listReportRuns is GET /api/v1/reports/{id}/runs: the report's runs, newest first.
func (s *server) listReportRuns(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	before := int64(1<<63 - 1)
	if cursor != "" {
		before, _ = strconv.ParseInt(cursor, 10, 64)
	}
	var items []ReportRun
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		if _, err := q.ReportGetByID(ctx, id); err != nil {
			return err
		}
		rows, err := q.ReportRunList(ctx, dbsqlc.ReportRunListParams{ReportID: id, BeforeID: before, MaxRows: limit})
		for _, r := range rows {
			items = append(items, runOut(r))
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(orEmpty(items), limit, func(r ReportRun) string { return strconv.FormatInt(r.ID, 10) }))
}

// sendReportNow is POST /api/v1/reports/{id}/send-now?period=…: the report of a period that has ended
// (default: the last one) goes out as soon as a scheduler takes it — again, as a new email, when it
// went out already. 409 while that period's email is pending or being sent.
func (s *server) sendReportNow(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var out ReportRun
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		stored, err := q.ReportGetByID(ctx, id)
		if err != nil {
			return err
		}
		loc, err := tenantZone(c, q)
		if err != nil {
			return err
		}
		d := reports.FromRow(stored)
		now := time.Now()
		p := sla.PeriodOf(d.Kind(), now, loc).Previous(loc)
		if name := c.Query("period"); name != "" {
			if p, err = reports.ParsePeriod(d.Period, name, loc); err != nil {
				return invalid(fieldErrors{{Field: "period", Message: err.Error()}})
			}
		}
		if p.End.After(now) {
			return invalid(fieldErrors{{Field: "period", Message: "the period " + p.Name + " has not ended yet"}})
		}
		run, err := q.ReportRunSendNow(ctx, dbsqlc.ReportRunSendNowParams{ReportID: id, Period: p.Name, PeriodStart: p.Start,
			PeriodEnd: p.End})
		if err != nil {
			if errors.Is(db.Translate(err), db.ErrNotFound) {
				return &problemError{status: http.StatusConflict, title: "conflict",
					detail: "the report of " + p.Name + " is already waiting to be sent or being sent"}
			}
			return err
		}
		out = runOut(run)
		return record(c, q, "report.send_now", "report", strconv.FormatInt(id, 10), gin.H{"period": p.Name})
	}) {
		return
	}
	c.JSON(http.StatusAccepted, out)
}
