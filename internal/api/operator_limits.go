package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// OperatorTenantLimits is GET and PATCH /api/v1/operator/tenants/{id}/limits: a tenant's limits, the caps
// this process applies, and its usage.
type OperatorTenantLimits struct {
	TenantID string       `json:"tenant_id"`
	Slug     string       `json:"slug"`
	Name     string       `json:"name"`
	Limits   TenantLimits `json:"limits"`
	Usage    tenant.Usage `json:"usage"`
}

func (s *server) operatorGetLimits(c *gin.Context) {
	id, ok := pathUUID(c)
	if !ok {
		return
	}
	t, err := s.operator.Get(c.Request.Context(), id)
	if err != nil {
		s.answerError(c, err)
		return
	}
	s.answerLimits(c, t)
}

// operatorSetLimits changes the limits the body names (a partial update) and answers them as GET does.
// The ingest service of this process reads them again at the next push; other processes within 30 s.
func (s *server) operatorSetLimits(c *gin.Context) {
	id, ok := pathUUID(c)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(c, http.StatusRequestEntityTooLarge, "request body too large", "the body exceeds "+strconv.Itoa(MaxBodyBytes)+" bytes")
			return
		}
		writeProblem(c, http.StatusBadRequest, "unreadable request body", "")
		return
	}
	if !storableJSON(c, body, true) {
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		writeProblem(c, http.StatusBadRequest, "malformed JSON", "the body must be a JSON object of limits: "+jsonErrorText(err))
		return
	}
	change, bad := tenant.ParseLimitsJSON(fields)
	if len(bad) > 0 {
		var errs fieldErrors
		for _, e := range bad {
			errs.add(e.Field, "%s", e.Message)
		}
		writeValidation(c, errs)
		return
	}
	if len(change) == 0 {
		writeProblem(c, http.StatusBadRequest, "nothing to change", "name at least one limit, such as {\"ingest_rate\": 5000}")
		return
	}
	t, err := s.operator.SetLimits(c.Request.Context(), id, change)
	if err != nil {
		s.answerError(c, err)
		return
	}
	if s.ingest != nil {
		s.ingest.ForgetLimits(id)
	}
	s.answerLimits(c, t)
}

func (s *server) answerLimits(c *gin.Context, t dbsqlc.AppTenant) {
	usage, err := s.operator.Usage(c.Request.Context(), t.ID)
	if err != nil {
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusOK, OperatorTenantLimits{TenantID: t.ID.String(), Slug: t.Slug, Name: t.Name, Limits: s.limitsOut(t), Usage: usage})
}
