package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/ingest"
)

// ingestLogs is POST /api/v1/logs. A NUL in an entry refuses that entry (WriteLogs), not the push.
func (s *server) ingestLogs(c *gin.Context) {
	body, ok := readPush(c)
	if !ok || !storableJSON(c, body, false) {
		return
	}
	push, err := ingest.DecodeLogPush(body)
	if err != nil {
		writeProblem(c, http.StatusBadRequest, "malformed logs body", err.Error())
		return
	}
	res, err := s.ingest.WriteLogs(c.Request.Context(), principal(c).TenantID, push)
	if err != nil {
		s.answerIngestError(c, err)
		return
	}
	answerResult(c, res, "entries")
}

// LogLine is a stored log line.
type LogLine struct {
	Time       time.Time       `json:"time"`
	HostID     *int64          `json:"host_id"`
	Host       string          `json:"host"`
	Source     string          `json:"source"`
	Severity   string          `json:"severity"`
	Message    string          `json:"message"`
	Attributes json.RawMessage `json:"attributes"`
}

// MaxLogRange is the widest time range one log search covers.
const MaxLogRange = 31 * 24 * time.Hour

// searchLogs is GET /api/v1/logs?host=&severity=error,critical&q=&from=&to=&limit=&cursor=: newest first.
func (s *server) searchLogs(c *gin.Context) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	var errs fieldErrors
	now := time.Now()
	to := parseTime(c.Query("to"), now, "to", &errs)
	from := parseTime(c.Query("from"), to.Add(-24*time.Hour), "from", &errs)
	if cursor != "" {
		ns, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil {
			errs.add("cursor", "is not a cursor this API returned")
		}
		to = time.Unix(0, ns)
	}
	if !from.Before(to) && cursor == "" {
		errs.add("from", "must be before to")
	}
	if to.Sub(from) > MaxLogRange {
		errs.add("from", "the range may span at most %s", MaxLogRange)
	}
	var severities []string
	if sv := c.Query("severity"); sv != "" {
		for _, v := range strings.Split(sv, ",") {
			if !slices.Contains(ingest.Severities, v) {
				errs.add("severity", "%q is not one of %s", v, strings.Join(ingest.Severities, ", "))
			}
			severities = append(severities, v)
		}
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	params := dbsqlc.LogSearchParams{FromTime: from, ToTime: to, Severities: orEmpty(severities), MaxRows: limit}
	if h := c.Query("host"); h != "" {
		params.Host = &h
	}
	if q := c.Query("q"); q != "" {
		escaped := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q)
		params.Contains = &escaped
	}
	var out []LogLine
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		rows, err := q.LogSearch(c.Request.Context(), params)
		for _, r := range rows {
			out = append(out, LogLine{Time: r.Time, HostID: r.HostID, Host: r.Host, Source: r.Source, Severity: r.Severity,
				Message: r.Message, Attributes: r.Attributes})
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(orEmpty(out), limit, func(l LogLine) string { return strconv.FormatInt(l.Time.UnixNano(), 10) }))
}

// parseTime reads RFC 3339 or milliseconds since the epoch; empty gives def.
func parseTime(s string, def time.Time, field string, errs *fieldErrors) time.Time {
	if s == "" {
		return def
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		errs.add(field, "must be RFC 3339 (2026-11-28T15:00:00Z) or milliseconds since the epoch")
	}
	return t
}
