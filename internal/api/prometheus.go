package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/promql"
)

// The Prometheus HTTP API's read side, under /prometheus/api/v1, so that Grafana's Prometheus data
// source (and any PromQL tool) works against infrawatch as it is: GET and POST query, query_range,
// series and labels, GET label/{name}/values, metadata and status/buildinfo. The handlers read the
// parameters as Prometheus does (a form in the URL or, for POST, the body) and call internal/promql;
// answers and errors have Prometheus's shape ({"status":"success","data":…} and
// {"status":"error","errorType":…,"error":…}), every error of these routes included (sendProblem).

// prometheusPrefix is where the Prometheus HTTP API is served.
const prometheusPrefix = "/prometheus/api/v1"

// promRoutes registers the Prometheus HTTP API on the REST API's process, behind its credential, rate
// limits and the read permission; the routes that read series take a heavy-read slot.
func (s *server) promRoutes(r *gin.Engine, rest, read, heavy gin.HandlerFunc) {
	g := r.Group(prometheusPrefix, rest, s.authenticate(), s.rateLimit(), read)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		g.Handle(method, "/query", heavy, s.promQuery)
		g.Handle(method, "/query_range", heavy, s.promQueryRange)
		g.Handle(method, "/series", heavy, s.promSeries)
		g.Handle(method, "/labels", heavy, s.promLabels)
	}
	g.GET("/label/:name/values", heavy, s.promLabelValues)
	g.GET("/metadata", s.promMetadata)
	g.GET("/status/buildinfo", s.promBuildInfo)
}

// isPrometheusAPI tells whether the request is one of the Prometheus HTTP API's, whose errors take
// Prometheus's shape.
func isPrometheusAPI(c *gin.Context) bool {
	return strings.HasPrefix(c.Request.URL.Path, prometheusPrefix+"/") || c.Request.URL.Path == prometheusPrefix
}

// sendPrometheusError writes a problem in the Prometheus HTTP API's shape, keeping its status and the
// headers set already (Retry-After, WWW-Authenticate), with the request id.
func sendPrometheusError(c *gin.Context, p Problem) {
	msg := p.Title
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	for _, fe := range p.Errors {
		if fe.Message != p.Detail {
			msg += "; " + fe.Field + ": " + fe.Message
		}
	}
	writePrometheusError(c, p.Status, prometheusErrorType(p.Status), msg)
}

// prometheusErrorType names a status as the Prometheus HTTP API's errorType does, with names of our
// own for what Prometheus never answers (401, 403).
func prometheusErrorType(status int) promql.ErrorType {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusMethodNotAllowed:
		return promql.BadData
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusUnprocessableEntity:
		return promql.Execution
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return promql.Unavailable
	}
	return promql.Internal
}

func writePrometheusError(c *gin.Context, status int, typ promql.ErrorType, msg string) {
	body, _ := json.Marshal(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		RequestID string `json:"request_id,omitempty"`
	}{"error", string(typ), msg, c.GetString(requestIDKey)})
	c.Abort()
	c.Data(status, "application/json; charset=utf-8", body)
}

// promError answers an error of internal/promql with the status Prometheus gives its type.
func (s *server) promError(c *gin.Context, err error) {
	var pe *promql.Error
	if !errors.As(err, &pe) {
		pe = &promql.Error{Type: promql.Internal, Err: err}
	}
	status := http.StatusInternalServerError
	switch pe.Type {
	case promql.BadData:
		status = http.StatusBadRequest
	case promql.Execution:
		status = http.StatusUnprocessableEntity
	case promql.Timeout:
		status = http.StatusServiceUnavailable
	case promql.Canceled:
		if c.Request.Context().Err() != nil {
			c.Abort() // the client went away
			return
		}
		status = 499 // Prometheus's status for a cancelled query
	case promql.Unavailable:
		c.Header("Retry-After", "5")
		status = http.StatusServiceUnavailable
	default:
		s.log.Error("promql request failed", "request_id", c.GetString(requestIDKey), "route", c.FullPath(), "err", db.Redact(err))
		writePrometheusError(c, status, promql.Internal, "the server failed to handle this request; quote the request id when reporting it")
		return
	}
	writePrometheusError(c, status, pe.Type, pe.Error())
}

// promForm reads the parameters as Prometheus does: the URL's query and, for a POST with a form
// (application/x-www-form-urlencoded), its body, at most MaxBodyBytes. A parameter PostgreSQL could not
// store as text (a NUL, bytes that are not UTF-8) is refused naming it, as on every route.
func (s *server) promForm(c *gin.Context) (url.Values, bool) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writePrometheusError(c, http.StatusRequestEntityTooLarge, promql.BadData, fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes))
			return nil, false
		}
		writePrometheusError(c, http.StatusBadRequest, promql.BadData, "error parsing form values: "+err.Error())
		return nil, false
	}
	names := make([]string, 0, len(c.Request.Form))
	for k := range c.Request.Form {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if why := ingest.CheckText(k); why != "" {
			writePrometheusError(c, http.StatusBadRequest, promql.BadData, fmt.Sprintf("invalid parameter %q: this parameter name %s", k, why))
			return nil, false
		}
		for _, v := range c.Request.Form[k] {
			if why := ingest.CheckText(v); why != "" {
				writePrometheusError(c, http.StatusBadRequest, promql.BadData, fmt.Sprintf("invalid parameter %q: %s", k, why))
				return nil, false
			}
		}
	}
	return c.Request.Form, true
}

// promBad answers a parameter the handler cannot read, worded as Prometheus words it.
func promBad(c *gin.Context, param string, err error) {
	writePrometheusError(c, http.StatusBadRequest, promql.BadData, fmt.Sprintf("invalid parameter %q: %v", param, err))
}

// promTime reads a time parameter; an absent one is def.
func promTime(c *gin.Context, form url.Values, param string, def time.Time) (time.Time, bool) {
	v := form.Get(param)
	if v == "" {
		return def, true
	}
	t, err := promql.ParseTime(v)
	if err != nil {
		promBad(c, param, err)
		return time.Time{}, false
	}
	return t, true
}

// promOptions reads the parameters that tune one query: timeout and lookback_delta.
func promOptions(c *gin.Context, form url.Values) (promql.QueryOptions, bool) {
	var o promql.QueryOptions
	for _, p := range []struct {
		name string
		dst  *time.Duration
	}{{"timeout", &o.Timeout}, {"lookback_delta", &o.Lookback}} {
		if v := form.Get(p.name); v != "" {
			d, err := promql.ParseDuration(v)
			if err != nil || d < 0 {
				if err == nil {
					err = errors.New("must not be negative")
				}
				promBad(c, p.name, err)
				return o, false
			}
			*p.dst = d
		}
	}
	return o, true
}

// promSuccess writes {"status":"success","data":data} with the warnings and infos, if any.
func promSuccess(c *gin.Context, data []byte, warnings, infos []string) {
	b := make([]byte, 0, len(data)+64)
	b = append(b, `{"status":"success","data":`...)
	b = append(b, data...)
	for _, a := range []struct {
		key   string
		items []string
	}{{"warnings", warnings}, {"infos", infos}} {
		if len(a.items) > 0 {
			items, _ := json.Marshal(a.items)
			b = append(b, `,"`+a.key+`":`...)
			b = append(b, items...)
		}
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", append(b, '}'))
}

// promQuery is /query: an instant query at time (default now).
func (s *server) promQuery(c *gin.Context) {
	form, ok := s.promForm(c)
	if !ok {
		return
	}
	ts, ok := promTime(c, form, "time", time.Now())
	if !ok {
		return
	}
	opts, ok := promOptions(c, form)
	if !ok {
		return
	}
	a, err := s.promql.Instant(c.Request.Context(), principal(c).TenantID, form.Get("query"), ts, opts)
	if err != nil {
		s.promError(c, err)
		return
	}
	promSuccess(c, a.Data, a.Warnings, a.Infos)
}

// promQueryRange is /query_range: a query at start, start+step, … up to end.
func (s *server) promQueryRange(c *gin.Context) {
	form, ok := s.promForm(c)
	if !ok {
		return
	}
	var start, end time.Time
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"start", &start}, {"end", &end}} {
		t, err := promql.ParseTime(form.Get(p.name))
		if err != nil {
			promBad(c, p.name, err)
			return
		}
		*p.dst = t
	}
	step, err := promql.ParseDuration(form.Get("step"))
	if err != nil {
		promBad(c, "step", err)
		return
	}
	opts, ok := promOptions(c, form)
	if !ok {
		return
	}
	a, err := s.promql.Range(c.Request.Context(), principal(c).TenantID, form.Get("query"), start, end, step, opts)
	if err != nil {
		s.promError(c, err)
		return
	}
	promSuccess(c, a.Data, a.Warnings, a.Infos)
}

// promListing reads what the listings share: match[] (required), start, end and limit.
func (s *server) promListing(c *gin.Context, matchRequired bool) (matches []string, r promql.TimeRange, limit int, ok bool) {
	form, ok := s.promForm(c)
	if !ok {
		return
	}
	matches = form["match[]"]
	if matchRequired && len(matches) == 0 {
		writePrometheusError(c, http.StatusBadRequest, promql.BadData, "no match[] parameter provided")
		return nil, r, 0, false
	}
	if r.Start, ok = promTime(c, form, "start", time.Time{}); !ok {
		return
	}
	if r.End, ok = promTime(c, form, "end", time.Time{}); !ok {
		return
	}
	if v := form.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			promBad(c, "limit", errors.New("must be a non-negative integer"))
			return nil, r, 0, false
		}
		limit = n
	}
	return matches, r, limit, true
}

// promSeries is /series: the series that match any match[].
func (s *server) promSeries(c *gin.Context) {
	matches, r, limit, ok := s.promListing(c, true)
	if !ok {
		return
	}
	sets, err := s.promql.ParseMatchers(matches)
	if err != nil {
		s.promError(c, err)
		return
	}
	l, err := s.promql.Series(c.Request.Context(), principal(c).TenantID, sets, r, limit)
	if err != nil {
		s.promError(c, err)
		return
	}
	data, _ := json.Marshal(l.Items)
	promSuccess(c, data, l.Warnings, nil)
}

// promLabels is /labels: the label names, of the series match[] selects when given.
func (s *server) promLabels(c *gin.Context) {
	matches, r, limit, ok := s.promListing(c, false)
	if !ok {
		return
	}
	sets, err := s.promql.ParseMatchers(matches)
	if err != nil {
		s.promError(c, err)
		return
	}
	l, err := s.promql.LabelNames(c.Request.Context(), principal(c).TenantID, sets, r, limit)
	if err != nil {
		s.promError(c, err)
		return
	}
	data, _ := json.Marshal(l.Items)
	promSuccess(c, data, l.Warnings, nil)
}

// promLabelValues is /label/{name}/values: a label's values, over the series match[] selects when given.
func (s *server) promLabelValues(c *gin.Context) {
	name, err := promql.LabelNameFromPath(c.Param("name"))
	if err != nil {
		promBad(c, "label_name", err)
		return
	}
	matches, r, limit, ok := s.promListing(c, false)
	if !ok {
		return
	}
	sets, err := s.promql.ParseMatchers(matches)
	if err != nil {
		s.promError(c, err)
		return
	}
	l, err := s.promql.LabelValues(c.Request.Context(), principal(c).TenantID, name, sets, r, limit)
	if err != nil {
		s.promError(c, err)
		return
	}
	data, _ := json.Marshal(l.Items)
	promSuccess(c, data, l.Warnings, nil)
}

// promMetadata is /metadata: infrawatch keeps no type, help or unit of its metrics (remote write 1.0
// sends them apart, and they are not stored), so the answer is always empty, as Prometheus's is for a
// metric without metadata. Grafana then offers every metric without a type.
func (s *server) promMetadata(c *gin.Context) {
	if _, ok := s.promForm(c); ok {
		promSuccess(c, []byte("{}"), nil, nil)
	}
}

// promBuildInfo is /status/buildinfo, which Grafana reads on "Save & test" to tell Prometheus from
// Mimir (no features: Prometheus) and its version: the version of the PromQL engine infrawatch runs.
func (s *server) promBuildInfo(c *gin.Context) {
	data, _ := json.Marshal(map[string]string{"version": promql.EngineVersion(), "revision": "infrawatch", "branch": "",
		"buildUser": "", "buildDate": "", "goVersion": runtime.Version()})
	promSuccess(c, data, nil, nil)
}
