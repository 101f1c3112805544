package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// The operator routes manage tenants for the platform operator, who authenticates with the operator
// token (INFRAWATCH_OPERATOR_TOKEN), not as any tenant's user.

type createTenantInput struct {
	Name          string `json:"name"`
	Slug          string `json:"slug"`
	AdminEmail    string `json:"admin_email"`
	AdminPassword string `json:"admin_password"`
}

func (s *server) operatorCreateTenant(c *gin.Context) {
	var in createTenantInput
	if !decodeBody(c, &in) {
		return
	}
	var errs fieldErrors
	if strings.TrimSpace(in.Name) == "" {
		errs.add("name", "is required")
	}
	if !strings.Contains(in.AdminEmail, "@") {
		errs.add("admin_email", "must be an email address")
	}
	if in.AdminPassword != "" {
		if err := auth.CheckPassword(in.AdminPassword, in.AdminEmail); err != nil {
			errs.add("admin_password", "%s", err)
		}
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	created, err := s.operator.Create(c.Request.Context(), tenant.NewTenant{Name: in.Name, Slug: in.Slug,
		AdminEmail: in.AdminEmail, AdminPassword: in.AdminPassword})
	switch {
	case errors.Is(err, tenant.ErrInvalid):
		writeProblem(c, http.StatusBadRequest, "invalid request", strings.TrimPrefix(err.Error(), "create tenant: "))
		return
	case errors.Is(err, db.ErrConflict):
		writeProblem(c, http.StatusConflict, "tenant not created", "the slug is taken; choose another")
		return
	case err != nil:
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusCreated, created)
}

func (s *server) operatorListTenants(c *gin.Context) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	after, _ := uuid.Parse(cursor)
	rows, err := s.operator.List(c.Request.Context(), after, limit)
	if err != nil {
		s.answerError(c, err)
		return
	}
	out := make([]Tenant, 0, len(rows))
	for _, t := range rows {
		out = append(out, tenantOut(t))
	}
	c.JSON(http.StatusOK, newPage(out, limit, func(t Tenant) string { return t.ID.String() }))
}

func (s *server) operatorSetStatus(c *gin.Context, status string) {
	id, ok := pathUUID(c)
	if !ok {
		return
	}
	t, err := s.operator.SetStatus(c.Request.Context(), id, status)
	if err != nil {
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusOK, tenantOut(t))
}

func (s *server) operatorSuspendTenant(c *gin.Context) { s.operatorSetStatus(c, "suspended") }

func (s *server) operatorResumeTenant(c *gin.Context) { s.operatorSetStatus(c, "active") }

func (s *server) operatorDeleteTenant(c *gin.Context) {
	id, ok := pathUUID(c)
	if !ok {
		return
	}
	if err := s.operator.Delete(c.Request.Context(), id); err != nil {
		s.answerError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
