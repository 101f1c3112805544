package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Tenant is the caller's own tenant, with its limits (set by the operator, read-only here).
type Tenant struct {
	ID        uuid.UUID    `json:"id"`
	Slug      string       `json:"slug"`
	Name      string       `json:"name"`
	Status    string       `json:"status"`
	TimeZone  string       `json:"time_zone"`
	Limits    TenantLimits `json:"limits"`
	CreatedAt time.Time    `json:"created_at"`
}

// TenantLimits are the per-tenant limits.
type TenantLimits struct {
	MaxSeries           int32 `json:"max_series"`
	MaxLabelsPerSeries  int32 `json:"max_labels_per_series"`
	MaxLabelNameLength  int32 `json:"max_label_name_length"`
	MaxLabelValueLength int32 `json:"max_label_value_length"`
	IngestRate          int32 `json:"ingest_rate"`
	IngestBurst         int32 `json:"ingest_burst"`
	MaxChecks           int32 `json:"max_checks"`
}

func tenantOut(t dbsqlc.AppTenant) Tenant {
	return Tenant{ID: t.ID, Slug: t.Slug, Name: t.Name, Status: t.Status, TimeZone: t.TimeZone, CreatedAt: t.CreatedAt,
		Limits: TenantLimits{MaxSeries: t.MaxSeries, MaxLabelsPerSeries: t.MaxLabelsPerSeries,
			MaxLabelNameLength: t.MaxLabelNameLength, MaxLabelValueLength: t.MaxLabelValueLength,
			IngestRate: t.IngestRate, IngestBurst: t.IngestBurst, MaxChecks: t.MaxChecks}}
}

func (s *server) getTenant(c *gin.Context) {
	var t dbsqlc.AppTenant
	if s.inTenant(c, func(q *dbsqlc.Queries) (err error) { t, err = q.TenantGetCurrent(c.Request.Context()); return err }) {
		c.JSON(http.StatusOK, tenantOut(t))
	}
}

type tenantInput struct {
	Name     *string `json:"name"`
	TimeZone *string `json:"time_zone"`
}

func (s *server) updateTenant(c *gin.Context) {
	var in tenantInput
	if !decodeBody(c, &in) {
		return
	}
	var errs fieldErrors
	if in.Name != nil {
		trimmed := strings.TrimSpace(*in.Name)
		in.Name = &trimmed
		if len(trimmed) < 1 || len(trimmed) > 200 {
			errs.add("name", "must be 1 to 200 characters")
		}
	}
	if in.TimeZone != nil {
		if _, err := time.LoadLocation(*in.TimeZone); err != nil || *in.TimeZone == "" || *in.TimeZone == "Local" {
			errs.add("time_zone", "must be an IANA time zone such as Europe/Berlin")
		}
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	var t dbsqlc.AppTenant
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		if t, err = q.TenantUpdateSettings(c.Request.Context(), dbsqlc.TenantUpdateSettingsParams{Name: in.Name, TimeZone: in.TimeZone}); err != nil {
			return err
		}
		return record(c, q, "tenant.update", "tenant", t.ID.String(), in)
	}) {
		return
	}
	c.JSON(http.StatusOK, tenantOut(t))
}

// deleteTenant deletes the caller's own tenant and all its data. Owners only.
func (s *server) deleteTenant(c *gin.Context) {
	if err := s.operator.Delete(c.Request.Context(), principal(c).TenantID); err != nil {
		s.answerError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
