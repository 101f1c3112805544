package api

import (
	"encoding/json"
	"math"
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

// logCursor is where the next page of a log search starts: at the lines of time, after the first skip
// of them. Lines sharing a time come in an order that stays the same from page to page (see
// api.search_logs), so a page may end in the middle of them and the next one loses none. Its text is
// "<microseconds since the epoch>:<skip>"; PostgreSQL keeps times to the microsecond.
type logCursor struct {
	time time.Time
	skip int
}

func parseLogCursor(s string) (logCursor, bool) {
	us, skip, ok := strings.Cut(s, ":")
	t, err1 := strconv.ParseInt(us, 10, 64)
	n, err2 := strconv.Atoi(skip)
	if !ok || err1 != nil || err2 != nil || n < 1 || n > math.MaxInt32 {
		return logCursor{}, false
	}
	return logCursor{time: time.UnixMicro(t), skip: n}, true
}

func (lc logCursor) String() string {
	return strconv.FormatInt(lc.time.UnixMicro(), 10) + ":" + strconv.Itoa(lc.skip)
}

// next is the cursor after page, which followed lc (the zero cursor for the first page): after the
// page's last line, counting every line of its time sent so far.
func (lc logCursor) next(page []LogLine) logCursor {
	last := page[len(page)-1].Time
	n := 0
	for i := len(page) - 1; i >= 0 && page[i].Time.Equal(last); i-- {
		n++
	}
	if last.Equal(lc.time) {
		n += lc.skip // the page began with the lines of that time after the first lc.skip of them
	}
	return logCursor{time: last, skip: n}
}

// searchLogs is GET /api/v1/logs?host=&severity=error,critical&q=&from=&to=&limit=&cursor=: newest first.
func (s *server) searchLogs(c *gin.Context) {
	limit, rawCursor, ok := page(c)
	if !ok {
		return
	}
	var errs fieldErrors
	to := parseTime(c.Query("to"), time.Now(), "to", &errs)
	from := parseTime(c.Query("from"), to.Add(-24*time.Hour), "from", &errs)
	if !from.Before(to) {
		errs.add("from", "must be before to")
	}
	if to.Sub(from) > MaxLogRange {
		errs.add("from", "the range may span at most %s", MaxLogRange)
	}
	var cursor logCursor
	if rawCursor != "" {
		if cursor, ok = parseLogCursor(rawCursor); !ok {
			errs.add("cursor", "is not a cursor this API returned")
		} else if cursor.time.Before(to) {
			to = cursor.time.Add(time.Microsecond) // up to and including the cursor's time
		} else {
			cursor = logCursor{} // the range ends before the cursor's time: none of its lines to skip
		}
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
	params := dbsqlc.LogSearchParams{FromTime: from, ToTime: to, Severities: orEmpty(severities),
		Skip: int32(cursor.skip), MaxRows: limit}
	if h := c.Query("host"); h != "" {
		params.Host = &h
	}
	if q := c.Query("q"); q != "" {
		params.Contains = &q // matched literally: the search function escapes % and _
	}
	var out []LogLine
	if !s.inTenantReadOnly(c, func(q *dbsqlc.Queries) error {
		rows, err := q.LogSearch(c.Request.Context(), params)
		for _, r := range rows {
			out = append(out, LogLine{Time: r.Time, HostID: r.HostID, Host: r.Host, Source: r.Source, Severity: r.Severity,
				Message: r.Message, Attributes: r.Attributes})
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(orEmpty(out), limit, func(LogLine) string { return cursor.next(out).String() }))
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
