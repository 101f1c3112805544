package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// Tenant is the caller's own tenant, with its limits (set by the operator, read-only here) and, in
// GET /api/v1/tenant only, its usage.
type Tenant struct {
	ID        uuid.UUID     `json:"id"`
	Slug      string        `json:"slug"`
	Name      string        `json:"name"`
	Status    string        `json:"status"`
	TimeZone  string        `json:"time_zone"`
	Limits    TenantLimits  `json:"limits"`
	Usage     *tenant.Usage `json:"usage,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
}

// TenantLimits are the per-tenant limits (tenant.Limits), with the caps this process applies for the two
// that hold per process and may be null (the server's cap).
type TenantLimits struct {
	tenant.Limits
	// EffectiveMaxStreams is max_streams, or this server's cap when it is null (0: no live stream here).
	EffectiveMaxStreams int `json:"effective_max_streams"`
	// EffectiveMaxHeavyReads is max_heavy_reads, or this server's --heavy-reads-per-tenant when it is null.
	EffectiveMaxHeavyReads int `json:"effective_max_heavy_reads"`
}

// limitsOut is t's limits with the caps this process applies to it.
func (s *server) limitsOut(t dbsqlc.AppTenant) TenantLimits {
	caps := auth.TenantCaps{}
	if t.MaxStreams != nil {
		caps.MaxStreams = int(*t.MaxStreams)
	}
	if t.MaxHeavyReads != nil {
		caps.MaxHeavyReads = int(*t.MaxHeavyReads)
	}
	return TenantLimits{Limits: tenant.LimitsOf(t), EffectiveMaxStreams: s.maxStreams(caps),
		EffectiveMaxHeavyReads: s.heavy.perTenant(caps.MaxHeavyReads)}
}

func (s *server) tenantOut(t dbsqlc.AppTenant) Tenant {
	return Tenant{ID: t.ID, Slug: t.Slug, Name: t.Name, Status: t.Status, TimeZone: t.TimeZone, CreatedAt: t.CreatedAt,
		Limits: s.limitsOut(t)}
}

// getTenant answers the tenant with its limits and its usage (series, checks, samples stored per minute).
func (s *server) getTenant(c *gin.Context) {
	var t dbsqlc.AppTenant
	var usage tenant.Usage
	if s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		ctx := c.Request.Context()
		if t, err = q.TenantGetCurrent(ctx); err != nil {
			return err
		}
		usage, err = tenant.ReadUsage(ctx, q, t.ID)
		return err
	}) {
		out := s.tenantOut(t)
		out.Usage = &usage
		c.JSON(http.StatusOK, out)
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
	c.JSON(http.StatusOK, s.tenantOut(t))
}

// deleteTenant deletes the caller's own tenant and all its data. Owners only.
func (s *server) deleteTenant(c *gin.Context) {
	if err := s.operator.Delete(c.Request.Context(), principal(c).TenantID); err != nil {
		s.answerError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
