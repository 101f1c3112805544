package api

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/sla"
)

// SLANumbers is the answer of GET /api/v1/sla: the numbers, with the SLO and the period they are of.
type SLANumbers struct {
	SLO    *SLO    `json:"slo"`
	Period *string `json:"period"`
	sla.Numbers
}

// getSLA is GET /api/v1/sla?slo=ID|check=ID|host=ID with from and to (RFC 3339), or period (2026-11,
// 2026-W47, 2026-11-28 in the tenant's zone); without them, the SLO's current period or the current
// month. exclude_maintenance=false counts maintenance for a check or host (an SLO says it itself).
// JSON, or CSV with Accept: text/csv or format=csv.
func (s *server) getSLA(c *gin.Context) {
	var errs fieldErrors
	ids := map[string]int64{}
	for _, key := range []string{"slo", "check", "host"} {
		if v := c.Query(key); v != "" {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				errs.add(key, "must be an id")
				continue
			}
			ids[key] = id
		}
	}
	if len(ids) != 1 && len(errs) == 0 {
		errs.add("slo", "name exactly one of slo, check and host")
	}
	exclude := true
	if v := c.Query("exclude_maintenance"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs.add("exclude_maintenance", "must be true or false")
		}
		exclude = b
	}
	var from, to time.Time
	if v := c.Query("from"); v != "" {
		from = parseTime(v, time.Time{}, "from", &errs)
	}
	if v := c.Query("to"); v != "" {
		to = parseTime(v, time.Time{}, "to", &errs)
	}
	periodName := c.Query("period")
	if periodName != "" && (!from.IsZero() || !to.IsZero()) {
		errs.add("period", "give either period or from and to")
	}
	if from.IsZero() != to.IsZero() && periodName == "" {
		errs.add("from", "give both from and to, or neither")
	}
	asCSV := c.Query("format") == "csv" || strings.Contains(c.GetHeader("Accept"), "text/csv")
	if f := c.Query("format"); f != "" && f != "csv" && f != "json" {
		errs.add("format", "must be json or csv")
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	now := time.Now()
	var out SLANumbers
	if !s.inTenantReadOnly(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		ten, err := q.TenantGetCurrent(ctx)
		if err != nil {
			return err
		}
		loc, err := time.LoadLocation(ten.TimeZone)
		if err != nil {
			loc = time.UTC // validated on PATCH /tenant; a zone this server lacks reads as UTC
		}
		opts := sla.Options{Location: loc, ExcludeMaintenance: exclude}
		var scope sla.Scope
		var current sla.Period
		switch {
		case ids["slo"] != 0:
			row, err := q.SloGetByID(ctx, ids["slo"])
			if err != nil {
				return err
			}
			o := sla.FromRow(row)
			shown := sloOut(row)
			out.SLO = &shown
			scope = o.Scope()
			opts = o.Options(time.Time{}, time.Time{}, loc)
			current = o.CurrentPeriod(now, loc)
		case ids["check"] != 0:
			scope.CheckIDs = []int64{ids["check"]}
			current = sla.PeriodOf(sla.PeriodMonth, now, loc)
		default:
			scope.HostIDs = []int64{ids["host"]}
			current = sla.PeriodOf(sla.PeriodMonth, now, loc)
		}
		switch {
		case periodName != "":
			p, err := sla.ParsePeriod(periodName, loc)
			if err != nil {
				return invalid(fieldErrors{{Field: "period", Message: err.Error()}})
			}
			opts.From, opts.To, out.Period = p.Start, p.End, &p.Name
		case !from.IsZero():
			opts.From, opts.To = from, to
		default:
			opts.From, opts.To, out.Period = current.Start, current.End, &current.Name
		}
		checks, err := sla.ScopeChecks(ctx, q, scope)
		if err != nil {
			return err
		}
		if len(checks) == 0 && ids["slo"] == 0 {
			return notFound() // no such check or host of this tenant (an SLO may cover no check today)
		}
		out.Numbers, err = sla.ComputeChecks(ctx, q, checks, opts, now)
		if errors.Is(err, sla.ErrInvalid) {
			return invalid(fieldErrors{{Field: "from", Message: strings.TrimPrefix(err.Error(), sla.ErrInvalid.Error()+": ")}})
		}
		return err
	}) {
		return
	}
	if asCSV {
		var buf bytes.Buffer
		if err := sla.WriteCSV(&buf, out.Numbers); err != nil {
			s.internalError(c, err)
			return
		}
		c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
		return
	}
	c.JSON(http.StatusOK, out)
}
