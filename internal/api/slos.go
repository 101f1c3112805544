package api

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/sla"
)

// SLO objectives: /api/v1/slos. internal/sla validates them; GET /api/v1/sla?slo=ID computes them.

var lookupSLO = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
	_, err := q.SloGetByID(c.Request.Context(), id)
	return err
})

// SLO is an objective as the API shows it.
type SLO struct {
	ID                 int64              `json:"id"`
	Name               string             `json:"name"`
	Description        string             `json:"description"`
	Target             float64            `json:"target"`
	CheckID            *int64             `json:"check_id"`
	HostID             *int64             `json:"host_id"`
	HostLabels         map[string]string  `json:"host_labels"`
	Period             string             `json:"period"`
	RollingDays        *int32             `json:"rolling_days"`
	BusinessHours      *sla.BusinessHours `json:"business_hours"`
	ExcludeMaintenance bool               `json:"exclude_maintenance"`
	CreatedBy          string             `json:"created_by"`
	CreatedAt          time.Time          `json:"created_at"`
	UpdatedAt          time.Time          `json:"updated_at"`
}

func sloOut(r dbsqlc.AppSlo) SLO {
	s := sla.FromRow(r)
	return SLO{ID: r.ID, Name: r.Name, Description: r.Description, Target: r.Target, CheckID: r.CheckID, HostID: r.HostID,
		HostLabels: s.HostLabels, Period: r.Period, RollingDays: r.RollingDays, BusinessHours: s.BusinessHours,
		ExcludeMaintenance: r.ExcludeMaintenance, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func slaProblems(ps []sla.Problem) fieldErrors {
	out := make(fieldErrors, len(ps))
	for i, p := range ps {
		out[i] = FieldError{Field: p.Field, Message: p.Message}
	}
	return out
}

// sloTargets refuses a check or host that is not the tenant's, with errs, the problems found already.
func sloTargets(c *gin.Context, q *dbsqlc.Queries, s sla.SLO, errs fieldErrors) error {
	ctx := c.Request.Context()
	if s.CheckID != nil {
		known, err := q.CheckListKnownIDs(ctx, []int64{*s.CheckID})
		if err != nil {
			return err
		}
		if !slices.Contains(known, *s.CheckID) {
			errs.add("check_id", "no such check")
		}
	}
	if s.HostID != nil {
		known, err := q.MaintenanceWindowKnownHosts(ctx, []int64{*s.HostID})
		if err != nil {
			return err
		}
		if !slices.Contains(known, *s.HostID) {
			errs.add("host_id", "no such host")
		}
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	return nil
}

func (s *server) listSLOs(c *gin.Context) {
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppSlo, error) {
		return q.SloList(c.Request.Context(), dbsqlc.SloListParams{AfterID: after, MaxRows: limit})
	}, sloOut, func(o SLO) int64 { return o.ID })
}

func (s *server) getSLO(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var out SLO
	if s.inTenant(c, func(q *dbsqlc.Queries) error {
		row, err := q.SloGetByID(c.Request.Context(), id)
		out = sloOut(row)
		return err
	}) {
		c.JSON(http.StatusOK, out)
	}
}

func (s *server) createSLO(c *gin.Context) {
	var in sla.Input
	if !decodeBody(c, &in) {
		return
	}
	var out SLO
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		o, ps := in.Apply(sla.SLO{}, true)
		if err := sloTargets(c, q, o, slaProblems(ps)); err != nil {
			return err
		}
		actor, err := actorName(c, q)
		if err != nil {
			return err
		}
		labels, hours := o.Columns()
		row, err := q.SloCreate(ctx, dbsqlc.SloCreateParams{Name: o.Name, Description: o.Description, Target: o.Target,
			CheckID: o.CheckID, HostID: o.HostID, HostLabels: labels, Period: o.Period, RollingDays: o.RollingDays,
			BusinessHours: hours, ExcludeMaintenance: o.ExcludeMaintenance, CreatedBy: actor})
		if err != nil {
			return err
		}
		out = sloOut(row)
		return record(c, q, "slo.create", "slo", strconv.FormatInt(row.ID, 10), gin.H{"name": row.Name})
	}) {
		return
	}
	c.JSON(http.StatusCreated, out)
}

func (s *server) updateSLO(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var in sla.Input
	if !decodeBody(c, &in) {
		return
	}
	var out SLO
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		stored, err := q.SloGetByID(ctx, id)
		if err != nil {
			return err
		}
		o, ps := in.Apply(sla.FromRow(stored), false)
		if err := sloTargets(c, q, o, slaProblems(ps)); err != nil {
			return err
		}
		labels, hours := o.Columns()
		row, err := q.SloUpdate(ctx, dbsqlc.SloUpdateParams{ID: id, Name: o.Name, Description: o.Description, Target: o.Target,
			CheckID: o.CheckID, HostID: o.HostID, HostLabels: labels, Period: o.Period, RollingDays: o.RollingDays,
			BusinessHours: hours, ExcludeMaintenance: o.ExcludeMaintenance})
		if err != nil {
			return err
		}
		out = sloOut(row)
		return record(c, q, "slo.update", "slo", strconv.FormatInt(id, 10), nil)
	}) {
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *server) deleteSLO(c *gin.Context) {
	s.removeByID(c, "slo.delete", "slo", func(q *dbsqlc.Queries, id int64) error {
		return deleted(q.SloDelete(c.Request.Context(), id))
	})
}
