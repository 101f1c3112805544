package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/ingest"
)

// Host is a host as the API shows it.
type Host struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels"`
	MonitoredBy string            `json:"monitored_by"`
	Metadata    json.RawMessage   `json:"metadata"`
	LastSeenAt  *time.Time        `json:"last_seen_at"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

func hostOut(h dbsqlc.AppHost) Host {
	return Host{ID: h.ID, Name: h.Name, Labels: h.Labels, MonitoredBy: h.MonitoredBy, Metadata: h.Metadata,
		LastSeenAt: h.LastSeenAt, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt}
}

// hostInput is the body of POST and PATCH /hosts; absent fields keep their value on PATCH.
type hostInput struct {
	Name        *string            `json:"name"`
	Labels      *map[string]string `json:"labels"`
	MonitoredBy *string            `json:"monitored_by"`
}

var monitoredBy = []string{"agent", "polling", "both"}

func (in hostInput) validate(creating bool) fieldErrors {
	var errs fieldErrors
	if in.Name == nil && creating {
		errs.add("name", "is required")
	} else if in.Name != nil {
		if why := ingest.CheckHostName(*in.Name); why != "" {
			errs.add("name", "%s", why)
		}
	}
	if in.MonitoredBy != nil && !slices.Contains(monitoredBy, *in.MonitoredBy) {
		errs.add("monitored_by", "must be one of agent, polling, both")
	}
	if in.Labels != nil {
		for _, e := range ingest.CheckHostLabels("labels", *in.Labels) {
			errs.add(e.Field, "%s", e.Message)
		}
	}
	return errs
}

func (s *server) listHosts(c *gin.Context) {
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppHost, error) {
		return q.HostList(c.Request.Context(), dbsqlc.HostListParams{AfterID: after, Labels: labelFilter(c), MaxRows: limit})
	}, hostOut, func(h Host) int64 { return h.ID })
}

func (s *server) createHost(c *gin.Context) {
	var in hostInput
	if !decodeBody(c, &in) {
		return
	}
	if errs := in.validate(true); len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	labels := map[string]string{}
	if in.Labels != nil {
		labels = *in.Labels
	}
	mb := "agent"
	if in.MonitoredBy != nil {
		mb = *in.MonitoredBy
	}
	var h dbsqlc.AppHost
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		if h, err = q.HostCreate(c.Request.Context(), dbsqlc.HostCreateParams{Name: *in.Name, Labels: labels, MonitoredBy: mb}); err != nil {
			return err
		}
		return record(c, q, "host.create", "host", strconv.FormatInt(h.ID, 10), gin.H{"name": h.Name})
	}) {
		return
	}
	c.JSON(http.StatusCreated, hostOut(h))
}

func (s *server) getHost(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var h dbsqlc.AppHost
	if s.inTenant(c, func(q *dbsqlc.Queries) (err error) { h, err = q.HostGetByID(c.Request.Context(), id); return err }) {
		c.JSON(http.StatusOK, hostOut(h))
	}
}

func (s *server) updateHost(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var in hostInput
	if !decodeBody(c, &in) {
		return
	}
	if errs := in.validate(false); len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	var labels []byte
	if in.Labels != nil {
		labels, _ = json.Marshal(*in.Labels)
	}
	var h dbsqlc.AppHost
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		h, err = q.HostUpdate(c.Request.Context(), dbsqlc.HostUpdateParams{ID: id, Name: in.Name, Labels: labels, MonitoredBy: in.MonitoredBy})
		if err != nil {
			return err
		}
		return record(c, q, "host.update", "host", strconv.FormatInt(id, 10), in)
	}) {
		return
	}
	c.JSON(http.StatusOK, hostOut(h))
}

func (s *server) deleteHost(c *gin.Context) {
	s.removeByID(c, "host.delete", "host", func(q *dbsqlc.Queries, id int64) error {
		return deleted(q.HostDelete(c.Request.Context(), id))
	})
}

// orEmpty makes a nil slice an empty one, so lists are [] rather than null in JSON.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
