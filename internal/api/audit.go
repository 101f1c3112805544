package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// AuditEntry is one change: who made it, when, to what.
type AuditEntry struct {
	ID         int64           `json:"id"`
	Time       time.Time       `json:"time"`
	ActorKind  string          `json:"actor_kind"`
	ActorID    string          `json:"actor_id"`
	Action     string          `json:"action"`
	ObjectKind string          `json:"object_kind"`
	ObjectID   string          `json:"object_id"`
	Details    json.RawMessage `json:"details"`
}

// listAudit answers the newest entries first.
func (s *server) listAudit(c *gin.Context) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	before, _ := strconv.ParseInt(cursor, 10, 64)
	var out []AuditEntry
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		rows, err := q.AuditLogList(c.Request.Context(), dbsqlc.AuditLogListParams{BeforeID: before, MaxRows: limit})
		for _, r := range rows {
			out = append(out, AuditEntry{ID: r.ID, Time: r.Time, ActorKind: r.ActorKind, ActorID: r.ActorID, Action: r.Action,
				ObjectKind: r.ObjectKind, ObjectID: r.ObjectID, Details: r.Details})
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(orEmpty(out), limit, func(e AuditEntry) string { return strconv.FormatInt(e.ID, 10) }))
}
