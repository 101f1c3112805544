package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/alerting"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Silences: /api/v1/silences. internal/alerting validates them (matchers, times) and the alerter
// applies them.

// Silence is a silence as the API shows it; state is pending (not begun), active or expired.
type Silence struct {
	ID        int64              `json:"id"`
	Matchers  []alerting.Matcher `json:"matchers"`
	StartsAt  time.Time          `json:"starts_at"`
	EndsAt    time.Time          `json:"ends_at"`
	Comment   string             `json:"comment"`
	CreatedBy string             `json:"created_by"`
	State     string             `json:"state"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
}

func silenceOut(s dbsqlc.AppSilence) Silence {
	out := Silence{ID: s.ID, StartsAt: s.StartsAt, EndsAt: s.EndsAt, Comment: s.Comment, CreatedBy: s.CreatedBy,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
	_ = json.Unmarshal(s.Matchers, &out.Matchers)
	now := time.Now()
	switch {
	case now.Before(s.StartsAt):
		out.State = "pending"
	case now.Before(s.EndsAt):
		out.State = "active"
	default:
		out.State = "expired"
	}
	return out
}

// listSilences is GET /api/v1/silences: newest first; ?active=true leaves out the expired ones.
func (s *server) listSilences(c *gin.Context) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	params := dbsqlc.SilenceListParams{Now: time.Now(), MaxRows: limit}
	params.BeforeID, _ = strconv.ParseInt(cursor, 10, 64)
	if v := c.Query("active"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeValidation(c, fieldErrors{{Field: "active", Message: "must be true or false"}})
			return
		}
		params.ActiveOnly = b
	}
	var items []Silence
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		rows, err := q.SilenceList(c.Request.Context(), params)
		for _, r := range rows {
			items = append(items, silenceOut(r))
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(orEmpty(items), limit, func(s Silence) string { return strconv.FormatInt(s.ID, 10) }))
}

func (s *server) createSilence(c *gin.Context) {
	var in alerting.SilenceInput
	if !decodeBody(c, &in) {
		return
	}
	spec, ps := in.Apply(alerting.SilenceSpec{StartsAt: time.Now().Truncate(time.Second)}, true)
	if len(ps) > 0 {
		writeValidation(c, problems(ps))
		return
	}
	var row dbsqlc.AppSilence
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		actor, err := actorName(c, q)
		if err != nil {
			return err
		}
		row, err = q.SilenceCreate(c.Request.Context(), dbsqlc.SilenceCreateParams{Matchers: spec.MatchersJSON(),
			StartsAt: spec.StartsAt, EndsAt: spec.EndsAt, Comment: spec.Comment, CreatedBy: actor})
		if err != nil {
			return err
		}
		return record(c, q, "silence.create", "silence", strconv.FormatInt(row.ID, 10), nil)
	}) {
		return
	}
	c.JSON(http.StatusCreated, silenceOut(row))
}

func (s *server) getSilence(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var row dbsqlc.AppSilence
	if s.inTenant(c, func(q *dbsqlc.Queries) (err error) { row, err = q.SilenceGetByID(c.Request.Context(), id); return err }) {
		c.JSON(http.StatusOK, silenceOut(row))
	}
}

func (s *server) updateSilence(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var in alerting.SilenceInput
	if !decodeBody(c, &in) {
		return
	}
	var row dbsqlc.AppSilence
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		stored, err := q.SilenceGetByID(ctx, id)
		if err != nil {
			return err
		}
		spec, ps := in.Apply(alerting.SilenceFromRow(stored), false)
		if len(ps) > 0 {
			return invalid(problems(ps))
		}
		row, err = q.SilenceUpdate(ctx, dbsqlc.SilenceUpdateParams{ID: id, Matchers: spec.MatchersJSON(), StartsAt: spec.StartsAt,
			EndsAt: spec.EndsAt, Comment: spec.Comment})
		if err != nil {
			return err
		}
		return record(c, q, "silence.update", "silence", strconv.FormatInt(id, 10), nil)
	}) {
		return
	}
	c.JSON(http.StatusOK, silenceOut(row))
}

// expireSilence is DELETE /api/v1/silences/{id}: the silence ends now and stays listed as expired.
func (s *server) expireSilence(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var row dbsqlc.AppSilence
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		if row, err = q.SilenceExpire(c.Request.Context(), dbsqlc.SilenceExpireParams{ID: id, Now: time.Now()}); err != nil {
			return err
		}
		return record(c, q, "silence.expire", "silence", strconv.FormatInt(id, 10), nil)
	}) {
		return
	}
	c.JSON(http.StatusOK, silenceOut(row))
}
