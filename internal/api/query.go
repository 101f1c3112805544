package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/query"
)

// The dashboard query API: GET /api/v1/query/range, /query/latest, /series and /overview. The handlers
// read the request into the planner's input (internal/query), which plans and runs it as the caller's
// tenant; answerError maps the planner's refusals to problems. The heavy-read gate bounds how many run
// at once.

// seriesSelector reads the filters of /query/range and /query/latest: metric (the series name), host,
// label.KEY=VALUE and series=ID (repeatable).
func seriesSelector(c *gin.Context, errs *fieldErrors) query.Selector {
	sel := query.Selector{Metric: c.Query("metric"), Host: c.Query("host"), Labels: labelParams(c)}
	for _, v := range c.QueryArray("series") {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			errs.add("series", "%q is not a series id", v)
			continue
		}
		sel.IDs = append(sel.IDs, id)
	}
	return sel
}

// addRefusals adds the planner's refusals of a request's parameters to errs.
func (fe *fieldErrors) addRefusals(refusals []error) {
	for _, err := range refusals {
		if field, msg, ok := refusedParam(err); ok {
			fe.add(field, "%s", msg)
		}
	}
}

// queryRange is GET /api/v1/query/range.
func (s *server) queryRange(c *gin.Context) {
	var errs fieldErrors
	r := query.RangeRequest{Step: c.DefaultQuery("step", "auto"), Agg: c.DefaultQuery("agg", "avg")}
	r.Selector = seriesSelector(c, &errs)
	r.To = parseTime(c.Query("to"), time.Now(), "to", &errs)
	r.From = parseTime(c.Query("from"), r.To.Add(-time.Hour), "from", &errs)
	errs.addRefusals(s.query.ValidateRange(r))
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	res, err := s.query.Range(c.Request.Context(), principal(c).TenantID, r)
	if err != nil {
		s.answerError(c, err)
		return
	}
	body, err := res.MarshalJSON()
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

// queryLatest is GET /api/v1/query/latest: the newest sample of each matching series within the
// planner's lookback; silent series are left out.
func (s *server) queryLatest(c *gin.Context) {
	var errs fieldErrors
	sel := seriesSelector(c, &errs)
	errs.addRefusals(s.query.ValidateSelector(sel))
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	out, err := s.query.Latest(c.Request.Context(), principal(c).TenantID, sel)
	if err != nil {
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"series": out})
}

// listSeries is GET /api/v1/series: the tenant's series by name (exact, or name_prefix), host and labels,
// paged by id.
func (s *server) listSeries(c *gin.Context) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	after, _ := strconv.ParseInt(cursor, 10, 64)
	items, err := s.query.Series(c.Request.Context(), principal(c).TenantID, query.SeriesFilter{Name: c.Query("name"),
		NamePrefix: c.Query("name_prefix"), Host: c.Query("host"), Labels: labelParams(c), AfterID: after, Limit: limit})
	if err != nil {
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusOK, newPage(items, limit, func(s query.Series) string { return strconv.FormatInt(s.ID, 10) }))
}

// overview is GET /api/v1/overview.
func (s *server) overview(c *gin.Context) {
	o, err := s.query.Overview(c.Request.Context(), principal(c).TenantID)
	if err != nil {
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}
