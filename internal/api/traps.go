package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/traps"
)

// SNMP trap credentials (/api/v1/trap-credentials): the communities and v3 users a tenant's devices send
// traps with, for admins. internal/traps validates, digests and seals them; these handlers store them as
// the tenant.

var lookupTrapCredential = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
	_, err := q.TrapCredentialGetByID(c.Request.Context(), id)
	return err
})

// trapProblems turns the domain's problems into a 400's fields.
func trapProblems(ps []traps.Problem) fieldErrors {
	errs := make(fieldErrors, len(ps))
	for i, p := range ps {
		errs[i] = FieldError{Field: p.Field, Message: p.Message}
	}
	return errs
}

// trapConflict answers a credential that another row holds already: its name in the tenant, or its
// community or user in any tenant (which one is not said: another tenant's credentials stay unknown).
var trapConflict = &problemError{status: http.StatusConflict, title: "conflict",
	detail: "a trap credential of this tenant has this name, or this community (or v3 user name and engine id) is registered " +
		"already, by this tenant or another; a community or user belongs to one tenant only"}

func (s *server) listTrapCredentials(c *gin.Context) {
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppTrapCredential, error) {
		return q.TrapCredentialList(c.Request.Context(), dbsqlc.TrapCredentialListParams{AfterID: after, MaxRows: limit})
	}, traps.Show, func(t traps.Credential) int64 { return t.ID })
}

func (s *server) getTrapCredential(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var row dbsqlc.AppTrapCredential
	if s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		row, err = q.TrapCredentialGetByID(c.Request.Context(), id)
		return err
	}) {
		c.JSON(http.StatusOK, traps.Show(row))
	}
}

func (s *server) createTrapCredential(c *gin.Context) {
	var in traps.Input
	if !decodeBody(c, &in) {
		return
	}
	row, ps, err := in.Merge(s.secrets, principal(c).TenantID, nil)
	if err != nil {
		s.internalError(c, err)
		return
	}
	if len(ps) > 0 {
		writeValidation(c, trapProblems(ps))
		return
	}
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		row, err = q.TrapCredentialCreate(c.Request.Context(), dbsqlc.TrapCredentialCreateParams{Name: row.Name, Kind: row.Kind,
			CommunityDigest: row.CommunityDigest, Username: row.Username, EngineID: row.EngineID, SecurityLevel: row.SecurityLevel,
			AuthProtocol: row.AuthProtocol, PrivProtocol: row.PrivProtocol, Secrets: row.Secrets, Enabled: row.Enabled,
			CreatedBy: principal(c).CreatedBy()})
		if errors.Is(db.Translate(err), db.ErrConflict) {
			return trapConflict
		} else if err != nil {
			return err
		}
		return record(c, q, "trap_credential.create", "trap_credential", strconv.FormatInt(row.ID, 10),
			gin.H{"name": row.Name, "kind": row.Kind})
	}) {
		return
	}
	c.JSON(http.StatusCreated, traps.Show(row))
}

func (s *server) updateTrapCredential(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var in traps.Input
	if !decodeBody(c, &in) {
		return
	}
	tenant := principal(c).TenantID
	var row dbsqlc.AppTrapCredential
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		stored, err := q.TrapCredentialGetByID(ctx, id)
		if err != nil {
			return err
		}
		merged, ps, err := in.Merge(s.secrets, tenant, &stored)
		if err != nil {
			return err
		}
		if len(ps) > 0 {
			return &problemError{status: http.StatusBadRequest, title: "invalid request",
				detail: "one or more fields are invalid; see errors", fields: trapProblems(ps)}
		}
		row, err = q.TrapCredentialUpdate(ctx, dbsqlc.TrapCredentialUpdateParams{ID: id, Name: merged.Name,
			CommunityDigest: merged.CommunityDigest, Username: merged.Username, EngineID: merged.EngineID,
			SecurityLevel: merged.SecurityLevel, AuthProtocol: merged.AuthProtocol, PrivProtocol: merged.PrivProtocol,
			Secrets: merged.Secrets, Enabled: merged.Enabled})
		if errors.Is(db.Translate(err), db.ErrConflict) {
			return trapConflict
		} else if err != nil {
			return err
		}
		return record(c, q, "trap_credential.update", "trap_credential", strconv.FormatInt(id, 10), nil)
	}) {
		return
	}
	c.JSON(http.StatusOK, traps.Show(row))
}

func (s *server) deleteTrapCredential(c *gin.Context) {
	s.removeByID(c, "trap_credential.delete", "trap_credential", func(q *dbsqlc.Queries, id int64) error {
		return deleted(q.TrapCredentialDelete(c.Request.Context(), id))
	})
}
