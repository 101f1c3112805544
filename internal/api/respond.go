package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/query"
)

// inTenant runs fn in a transaction as the caller's tenant. When fn fails, the transaction rolls back,
// the error is answered and inTenant returns false.
func (s *server) inTenant(c *gin.Context, fn func(q *dbsqlc.Queries) error) bool {
	if err := s.tenants.WithTenant(c.Request.Context(), principal(c).TenantID, fn); err != nil {
		s.answerError(c, err)
		return false
	}
	return true
}

// inTenantReadOnly runs fn as the caller's tenant like inTenant, for a heavy read: each statement in a
// read-only transaction of its own with the statement options of the dashboard queries (db.TenantRunner's
// WithTenantReadOnly). When fn fails, the error is answered and inTenantReadOnly returns false.
func (s *server) inTenantReadOnly(c *gin.Context, fn func(q *dbsqlc.Queries) error) bool {
	if err := s.tenants.WithTenantReadOnly(c.Request.Context(), principal(c).TenantID, query.StatementOptions(), fn); err != nil {
		s.answerError(c, err)
		return false
	}
	return true
}

// answerError turns an error into its problem answer; unexpected ones are logged and answered 500.
func (s *server) answerError(c *gin.Context, err error) {
	err = db.Translate(err)
	var pe *problemError
	field, msg, refused := refusedParam(err)
	switch {
	case errors.As(err, &pe):
		sendProblem(c, pe.problem(c))
	case refused:
		// The dashboard query planner refuses one parameter: a 400 naming it, its message the detail.
		p := newProblem(c, http.StatusBadRequest, "invalid request", msg)
		p.Errors = fieldErrors{{Field: field, Message: msg}}
		sendProblem(c, p)
	case errors.Is(err, db.ErrNotFound), errors.Is(err, db.ErrForbidden):
		// A row of another tenant is indistinguishable from a missing one.
		writeProblem(c, http.StatusNotFound, "not found", "")
	case errors.Is(err, db.ErrConflict):
		writeProblem(c, http.StatusConflict, "conflict", "a record with the same unique name or key exists")
	case errors.Is(err, db.ErrInvalid):
		writeProblem(c, http.StatusBadRequest, "invalid request", "a value is out of the accepted range")
	case (errors.Is(err, context.Canceled) || errors.Is(err, db.ErrTimeout)) && c.Request.Context().Err() != nil:
		c.Abort() // the client went away, and the driver cancelled its statement
	case errors.Is(err, db.ErrTimeout), errors.Is(err, query.ErrTimeout):
		// Past the statement timeout: the request is too expensive as asked, and repeating it unchanged
		// would only cost the database the same time again (503 stays for a database that is down).
		writeProblem(c, http.StatusUnprocessableEntity, "query timed out",
			fmt.Sprintf("the request's database work ran longer than the limit of %s; ask for less: "+
				"a narrower time range, a coarser step, fewer series or a more specific search", s.tenants.StatementTimeout()))
	case db.IsUnavailable(err):
		c.Header("Retry-After", "5")
		writeProblem(c, http.StatusServiceUnavailable, "database unavailable", "the database cannot serve right now; retry")
	default:
		s.internalError(c, err)
	}
}

// refusedParam names the request parameter the dashboard query planner refused in err, and why.
func refusedParam(err error) (field, msg string, ok bool) {
	var limit *query.LimitError
	var invalid *query.InvalidError
	switch {
	case errors.As(err, &limit):
		return limit.Param, limit.Msg, true
	case errors.As(err, &invalid):
		return invalid.Param, invalid.Msg, true
	}
	return "", "", false
}

func (s *server) internalError(c *gin.Context, err error) {
	s.log.Error("request failed", "request_id", c.GetString(requestIDKey), "route", c.FullPath(), "err", db.Redact(err))
	writeProblem(c, http.StatusInternalServerError, "internal error",
		"the server failed to handle this request; quote the request id when reporting it")
}

// problemError carries a specific answer out of a transaction.
type problemError struct {
	status        int
	title, detail string
	fields        fieldErrors
}

func (e *problemError) Error() string { return e.title + ": " + e.detail }

func (e *problemError) problem(c *gin.Context) Problem {
	p := newProblem(c, e.status, e.title, e.detail)
	p.Errors = e.fields
	return p
}

func notFound() error { return &problemError{status: http.StatusNotFound, title: "not found"} }

// record writes an audit entry in the same transaction as the change it describes.
func record(c *gin.Context, q *dbsqlc.Queries, action, objectKind, objectID string, details any) error {
	p := principal(c)
	raw := []byte("{}")
	if details != nil {
		var err error
		if raw, err = json.Marshal(details); err != nil {
			return err
		}
	}
	return q.AuditLogInsert(c.Request.Context(), dbsqlc.AuditLogInsertParams{TenantID: p.TenantID, ActorKind: string(p.Kind),
		ActorID: p.ActorID(), Action: action, ObjectKind: objectKind, ObjectID: objectID, Details: raw})
}

// listByID answers one page of the tenant's rows that are keyed by an increasing integer id: fetch reads
// up to limit rows after the cursor id, out shapes each for the API.
func listByID[R, T any](s *server, c *gin.Context, fetch func(q *dbsqlc.Queries, after int64, limit int32) ([]R, error),
	out func(R) T, id func(T) int64) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	after, _ := strconv.ParseInt(cursor, 10, 64)
	var items []T
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		rows, err := fetch(q, after, limit)
		for _, r := range rows {
			items = append(items, out(r))
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(orEmpty(items), limit, func(t T) string { return strconv.FormatInt(id(t), 10) }))
}

// removeByID deletes or revokes the object of the path's :id, records action in the audit log in the
// same transaction, and answers 204 — or 404 when the tenant has no such object.
func (s *server) removeByID(c *gin.Context, action, objectKind string, remove func(q *dbsqlc.Queries, id int64) error) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	if s.inTenant(c, func(q *dbsqlc.Queries) error {
		if err := remove(q, id); err != nil {
			return err
		}
		return record(c, q, action, objectKind, strconv.FormatInt(id, 10), nil)
	}) {
		c.Status(http.StatusNoContent)
	}
}

// deleted turns a DELETE's affected-row count into notFound when nothing was there.
func deleted(n int64, err error) error {
	if err == nil && n == 0 {
		return notFound()
	}
	return err
}
