package api

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/alerting"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Maintenance windows: /api/v1/maintenance-windows. internal/alerting validates them and stores their
// occurrences; the alerter extends recurring ones. (The file is not maintenance_windows.go: Go builds a
// file named *_windows.go for Windows only.)

// MaintenanceWindow is a window as the API shows it, with its next occurrences.
type MaintenanceWindow struct {
	ID        int64              `json:"id"`
	Name      string             `json:"name"`
	Comment   string             `json:"comment"`
	HostIDs   []int64            `json:"host_ids"`
	CheckIDs  []int64            `json:"check_ids"`
	Matchers  []alerting.Matcher `json:"matchers"`
	StartsAt  time.Time          `json:"starts_at"`
	EndsAt    *time.Time         `json:"ends_at"`
	Cron      *string            `json:"cron"`
	Duration  *string            `json:"duration"`
	TimeZone  string             `json:"time_zone"`
	Next      []Occurrence       `json:"next"`
	CreatedBy string             `json:"created_by"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
}

// Occurrence is a time a window is in force.
type Occurrence struct {
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
}

// nextOccurrences is how many coming occurrences a window shows.
const nextOccurrences = 5

func windowOut(w dbsqlc.AppMaintenanceWindow, next []dbsqlc.MaintenanceOccurrenceListRow) MaintenanceWindow {
	spec := alerting.WindowFromRow(w)
	out := MaintenanceWindow{ID: w.ID, Name: w.Name, Comment: w.Comment, HostIDs: orEmpty(w.HostIds), CheckIDs: orEmpty(w.CheckIds),
		Matchers: orEmpty(spec.Matchers), StartsAt: w.StartsAt, EndsAt: w.EndsAt, Cron: w.Cron, TimeZone: w.TimeZone,
		Next: []Occurrence{}, CreatedBy: w.CreatedBy, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if w.Cron != nil {
		d := alerting.FormatDuration(spec.Duration)
		out.Duration = &d
	}
	for _, o := range next {
		out.Next = append(out.Next, Occurrence{StartsAt: o.StartsAt, EndsAt: o.EndsAt})
	}
	return out
}

func (s *server) listMaintenanceWindows(c *gin.Context) {
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppMaintenanceWindow, error) {
		return q.MaintenanceWindowList(c.Request.Context(), dbsqlc.MaintenanceWindowListParams{AfterID: after, MaxRows: limit})
	}, func(w dbsqlc.AppMaintenanceWindow) MaintenanceWindow { return windowOut(w, nil) },
		func(w MaintenanceWindow) int64 { return w.ID })
}

// windowTargets refuses host and check ids that are not the tenant's, naming each along with errs, the
// problems found already.
func windowTargets(c *gin.Context, q *dbsqlc.Queries, w alerting.WindowSpec, errs fieldErrors) error {
	check := func(field string, ids []int64, known func() ([]int64, error)) error {
		if len(ids) == 0 {
			return nil
		}
		have, err := known()
		if err != nil {
			return err
		}
		for i, id := range ids {
			if !slices.Contains(have, id) {
				errs.add(field+"["+strconv.Itoa(i)+"]", "no such %s", map[string]string{"host_ids": "host", "check_ids": "check"}[field])
			}
		}
		return nil
	}
	ctx := c.Request.Context()
	if err := check("host_ids", w.HostIDs, func() ([]int64, error) { return q.MaintenanceWindowKnownHosts(ctx, w.HostIDs) }); err != nil {
		return err
	}
	if err := check("check_ids", w.CheckIDs, func() ([]int64, error) { return q.CheckListKnownIDs(ctx, w.CheckIDs) }); err != nil {
		return err
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	return nil
}

// saveWindow stores a window's columns and occurrences and answers it with its next occurrences.
func (s *server) saveWindow(c *gin.Context, q *dbsqlc.Queries, id int64, w alerting.WindowSpec, now time.Time) (MaintenanceWindow, error) {
	ctx := c.Request.Context()
	var row dbsqlc.AppMaintenanceWindow
	var cron *string
	var dur *int32
	if w.Cron != "" {
		cron = &w.Cron
		d := int32(w.Duration / time.Second)
		dur = &d
	}
	var err error
	if id == 0 {
		actor, err := actorName(c, q)
		if err != nil {
			return MaintenanceWindow{}, err
		}
		row, err = q.MaintenanceWindowCreate(ctx, dbsqlc.MaintenanceWindowCreateParams{Name: w.Name, Comment: w.Comment,
			HostIds: w.HostIDs, CheckIds: w.CheckIDs, Matchers: w.MatchersJSON(), MatchersSql: w.CompiledMatchers(),
			StartsAt: w.StartsAt, EndsAt: w.EndsAt, Cron: cron, DurationSeconds: dur, TimeZone: w.TimeZone, CreatedBy: actor})
		if err != nil {
			return MaintenanceWindow{}, err
		}
	} else {
		if err := alerting.Rewind(ctx, q, id, now); err != nil {
			return MaintenanceWindow{}, err
		}
		if row, err = q.MaintenanceWindowUpdate(ctx, dbsqlc.MaintenanceWindowUpdateParams{ID: id, Name: w.Name, Comment: w.Comment,
			HostIds: w.HostIDs, CheckIds: w.CheckIDs, Matchers: w.MatchersJSON(), MatchersSql: w.CompiledMatchers(),
			StartsAt: w.StartsAt, EndsAt: w.EndsAt, Cron: cron, DurationSeconds: dur, TimeZone: w.TimeZone}); err != nil {
			return MaintenanceWindow{}, err
		}
	}
	until, err := alerting.Materialize(ctx, q, row.TenantID, row.ID, w, now, now.Add(alerting.DefaultConfig().Horizon))
	if err != nil {
		return MaintenanceWindow{}, err
	}
	if until != nil {
		if err := q.MaintenanceWindowSetMaterialized(ctx, dbsqlc.MaintenanceWindowSetMaterializedParams{ID: row.ID, Until: *until}); err != nil {
			return MaintenanceWindow{}, err
		}
	}
	next, err := q.MaintenanceOccurrenceList(ctx, dbsqlc.MaintenanceOccurrenceListParams{WindowID: row.ID, Since: now,
		MaxRows: nextOccurrences})
	return windowOut(row, next), err
}

func (s *server) createMaintenanceWindow(c *gin.Context) {
	var in alerting.WindowInput
	if !decodeBody(c, &in) {
		return
	}
	now := time.Now()
	var out MaintenanceWindow
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		t, err := q.TenantGetCurrent(c.Request.Context())
		if err != nil {
			return err
		}
		w, ps := in.Apply(alerting.WindowSpec{TimeZone: t.TimeZone}, true, now)
		if err := windowTargets(c, q, w, problems(ps)); err != nil {
			return err
		}
		if out, err = s.saveWindow(c, q, 0, w, now); err != nil {
			return err
		}
		return record(c, q, "maintenance_window.create", "maintenance_window", strconv.FormatInt(out.ID, 10), gin.H{"name": w.Name})
	}) {
		return
	}
	c.JSON(http.StatusCreated, out)
}

func (s *server) getMaintenanceWindow(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var out MaintenanceWindow
	if s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		row, err := q.MaintenanceWindowGetByID(ctx, id)
		if err != nil {
			return err
		}
		next, err := q.MaintenanceOccurrenceList(ctx, dbsqlc.MaintenanceOccurrenceListParams{WindowID: id, Since: time.Now(),
			MaxRows: nextOccurrences})
		out = windowOut(row, next)
		return err
	}) {
		c.JSON(http.StatusOK, out)
	}
}

// updateMaintenanceWindow is PATCH /api/v1/maintenance-windows/{id}: the occurrence under way ends now,
// those to come are made again from the new definition; past ones stay.
func (s *server) updateMaintenanceWindow(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var in alerting.WindowInput
	if !decodeBody(c, &in) {
		return
	}
	now := time.Now()
	var out MaintenanceWindow
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		stored, err := q.MaintenanceWindowGetByID(c.Request.Context(), id)
		if err != nil {
			return err
		}
		w, ps := in.Apply(alerting.WindowFromRow(stored), false, now)
		if err := windowTargets(c, q, w, problems(ps)); err != nil {
			return err
		}
		if out, err = s.saveWindow(c, q, id, w, now); err != nil {
			return err
		}
		return record(c, q, "maintenance_window.update", "maintenance_window", strconv.FormatInt(id, 10), nil)
	}) {
		return
	}
	c.JSON(http.StatusOK, out)
}

// deleteMaintenanceWindow is DELETE /api/v1/maintenance-windows/{id}: the window goes, its occurrence
// under way ends now; past occurrences stay for the SLA reports.
func (s *server) deleteMaintenanceWindow(c *gin.Context) {
	s.removeByID(c, "maintenance_window.delete", "maintenance_window", func(q *dbsqlc.Queries, id int64) error {
		ctx, now := c.Request.Context(), time.Now()
		if err := deleted(q.MaintenanceWindowDelete(ctx, dbsqlc.MaintenanceWindowDeleteParams{ID: id, Now: now})); err != nil {
			return err
		}
		return alerting.Rewind(ctx, q, id, now)
	})
}
