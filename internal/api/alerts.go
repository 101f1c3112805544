package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/alerting"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Alerts: /api/v1/alerts, what the alerter raised; acknowledgements through internal/alerting.

// Lookups of the alerting objects behind :id, for requireOn.
var (
	lookupAlertRule = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.AlertRuleGetByID(c.Request.Context(), id)
		return err
	})
	lookupAlert = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.AlertGetByID(c.Request.Context(), id)
		return err
	})
	lookupSilence = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.SilenceGetByID(c.Request.Context(), id)
		return err
	})
	lookupMaintenanceWindow = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.MaintenanceWindowGetByID(c.Request.Context(), id)
		return err
	})
)

// Alert is an alert as the API shows it.
type Alert struct {
	ID               int64             `json:"id"`
	RuleID           int64             `json:"rule_id"`
	RuleName         string            `json:"rule_name"`
	RuleKind         string            `json:"rule_kind"`
	Fingerprint      string            `json:"fingerprint"`
	State            string            `json:"state"`
	Severity         string            `json:"severity"`
	Labels           map[string]string `json:"labels"`
	Summary          string            `json:"summary"`
	Description      string            `json:"description"`
	Value            *float64          `json:"value"`
	Threshold        *float64          `json:"threshold"`
	Comparator       *string           `json:"comparator"`
	HostID           *int64            `json:"host_id"`
	CheckID          *int64            `json:"check_id"`
	SeriesID         *int64            `json:"series_id"`
	ActiveSince      *time.Time        `json:"active_since"`
	StartedAt        *time.Time        `json:"started_at"`
	ResolvedAt       *time.Time        `json:"resolved_at"`
	Flapping         bool              `json:"flapping"`
	SilencedBy       []int64           `json:"silenced_by"`
	MaintenanceBy    []int64           `json:"maintenance_by"`
	SuppressedReason string            `json:"suppressed_reason"`
	Ack              *AlertAck         `json:"ack"`
	CreatedAt        time.Time         `json:"created_at"`
	UpdatedAt        time.Time         `json:"updated_at"`
}

// AlertAck is who acknowledged an alert, when, and why.
type AlertAck struct {
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	Comment string    `json:"comment"`
}

// AlertDetail is an alert with its timeline: every change of state with the value at the time,
// acknowledgements, flapping, and the notifications enqueued for it with what delivery made of them.
type AlertDetail struct {
	Alert
	Timeline []TimelineEntry `json:"timeline"`
}

// TimelineEntry is one entry of an alert's timeline: type is state, ack, unack, flapping, settled or
// notification.
type TimelineEntry struct {
	Time         time.Time        `json:"time"`
	Type         string           `json:"type"`
	From         *string          `json:"from,omitempty"`
	To           *string          `json:"to,omitempty"`
	Value        *float64         `json:"value,omitempty"`
	Reason       string           `json:"reason,omitempty"`
	Actor        string           `json:"actor,omitempty"`
	Notification *TimelineMessage `json:"notification,omitempty"`
	order        int              // events before notifications of the same time
}

// TimelineMessage is a notification of an alert: its kind, channel and delivery.
type TimelineMessage struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind"`
	ChannelID   int64      `json:"channel_id"`
	ChannelName string     `json:"channel_name"`
	ChannelKind string     `json:"channel_kind"`
	State       string     `json:"state"`
	Attempts    int32      `json:"attempts"`
	LastError   string     `json:"last_error"`
	SentAt      *time.Time `json:"sent_at"`
}

func alertOut(a dbsqlc.AppAlert, ruleName, ruleKind string) Alert {
	out := Alert{ID: a.ID, RuleID: a.RuleID, RuleName: ruleName, RuleKind: ruleKind, Fingerprint: a.Fingerprint, State: a.State,
		Severity: a.Severity, Summary: a.Summary, Description: a.Description, Value: finite(a.Value), Threshold: a.Threshold,
		Comparator: a.Comparator, HostID: a.HostID, CheckID: a.CheckID, SeriesID: a.SeriesID, ActiveSince: a.ActiveSince,
		StartedAt: a.StartedAt, ResolvedAt: a.ResolvedAt, Flapping: a.Flapping, SilencedBy: orEmpty(a.SilencedBy),
		MaintenanceBy: orEmpty(a.MaintenanceBy), SuppressedReason: a.SuppressedReason, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	_ = json.Unmarshal(a.Labels, &out.Labels)
	if a.AckedAt != nil {
		out.Ack = &AlertAck{At: *a.AckedAt, Comment: a.AckComment}
		if a.AckedBy != nil {
			out.Ack.By = *a.AckedBy
		}
	}
	return out
}

// finite is a value JSON can carry: null for NaN and ±Inf.
func finite(v *float64) *float64 {
	if v == nil {
		return nil
	}
	return alerting.ValueOf(*v).Finite()
}

func alertRowOut(r dbsqlc.AlertListRow) Alert {
	return alertOut(dbsqlc.AppAlert{ID: r.ID, TenantID: r.TenantID, RuleID: r.RuleID, Fingerprint: r.Fingerprint, State: r.State,
		Severity: r.Severity, Labels: r.Labels, SeriesID: r.SeriesID, HostID: r.HostID, CheckID: r.CheckID, Value: r.Value,
		Threshold: r.Threshold, Comparator: r.Comparator, Summary: r.Summary, Description: r.Description, ActiveSince: r.ActiveSince,
		StartedAt: r.StartedAt, ResolvedAt: r.ResolvedAt, Flapping: r.Flapping, SilencedBy: r.SilencedBy, MaintenanceBy: r.MaintenanceBy,
		SuppressedReason: r.SuppressedReason, AckedAt: r.AckedAt, AckedBy: r.AckedBy, AckComment: r.AckComment,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}, r.RuleName, r.RuleKind)
}

func alertGetOut(a dbsqlc.AlertGetByIDRow) Alert {
	return alertRowOut(dbsqlc.AlertListRow(a))
}

var alertStates = []string{"pending", "firing", "resolved", "inactive", "suppressed"}

// listAlerts is GET /api/v1/alerts: newest first, filtered by state (comma-separated), severity, rule_id,
// host_id, check_id and label.KEY=VALUE.
func (s *server) listAlerts(c *gin.Context) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	var errs fieldErrors
	params := dbsqlc.AlertListParams{States: []string{}, Labels: labelFilter(c), MaxRows: limit}
	params.BeforeID, _ = strconv.ParseInt(cursor, 10, 64)
	if v := c.Query("state"); v != "" {
		for _, st := range strings.Split(v, ",") {
			if !slices.Contains(alertStates, st) {
				errs.add("state", "must be states among %s, comma-separated", strings.Join(alertStates, ", "))
				break
			}
			params.States = append(params.States, st)
		}
	}
	if v := c.Query("severity"); v != "" {
		if !slices.Contains(alerting.Severities, v) {
			errs.add("severity", "must be one of %s", strings.Join(alerting.Severities, ", "))
		}
		params.Severity = &v
	}
	for _, f := range []struct {
		name string
		dst  **int64
	}{{"rule_id", &params.RuleID}, {"host_id", &params.HostID}, {"check_id", &params.CheckID}} {
		if v := c.Query(f.name); v != "" {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				errs.add(f.name, "must be a positive integer")
			}
			*f.dst = &id
		}
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	var items []Alert
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		rows, err := q.AlertList(c.Request.Context(), params)
		for _, r := range rows {
			items = append(items, alertRowOut(r))
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(orEmpty(items), limit, func(a Alert) string { return strconv.FormatInt(a.ID, 10) }))
}

// maxTimelineEvents bounds the events of one alert's timeline (its newest notifications all come).
const maxTimelineEvents = 1000

// getAlert is GET /api/v1/alerts/{id}: the alert and its timeline.
func (s *server) getAlert(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var out AlertDetail
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		a, err := q.AlertGetByID(ctx, id)
		if err != nil {
			return err
		}
		out.Alert = alertGetOut(a)
		evs, err := q.AlertEventListByAlert(ctx, dbsqlc.AlertEventListByAlertParams{AlertID: id, MaxRows: maxTimelineEvents})
		if err != nil {
			return err
		}
		msgs, err := q.AlertNotificationList(ctx, id)
		if err != nil {
			return err
		}
		out.Timeline = make([]TimelineEntry, 0, len(evs)+len(msgs))
		for _, e := range evs {
			out.Timeline = append(out.Timeline, TimelineEntry{Time: e.Time, Type: e.Kind, From: e.FromState, To: e.ToState,
				Value: finite(e.Value), Reason: e.Reason, Actor: e.Actor})
		}
		for _, m := range msgs {
			out.Timeline = append(out.Timeline, TimelineEntry{Time: m.CreatedAt, Type: "notification", order: 1,
				Notification: &TimelineMessage{ID: m.ID, Kind: m.Kind, ChannelID: m.ChannelID, ChannelName: m.ChannelName,
					ChannelKind: m.ChannelKind, State: m.State, Attempts: m.Attempts, LastError: m.LastError, SentAt: m.SentAt}})
		}
		sort.SliceStable(out.Timeline, func(i, j int) bool {
			a, b := out.Timeline[i], out.Timeline[j]
			if !a.Time.Equal(b.Time) {
				return a.Time.Before(b.Time)
			}
			return a.order < b.order
		})
		return nil
	}) {
		return
	}
	c.JSON(http.StatusOK, out)
}

// ackInput is the body of POST /alerts/{id}/ack.
type ackInput struct {
	Comment *string `json:"comment"`
}

// ackAlert is POST /api/v1/alerts/{id}/ack: the alert stops repeating and escalating until it resolves.
func (s *server) ackAlert(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var in ackInput
	if !decodeBody(c, &in) {
		return
	}
	comment := ""
	if in.Comment != nil {
		comment = *in.Comment
	}
	if len(comment) > 1024 {
		writeValidation(c, fieldErrors{{Field: "comment", Message: "must be at most 1024 bytes"}})
		return
	}
	var out Alert
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		actor, err := actorName(c, q)
		if err != nil {
			return err
		}
		err = alerting.Ack(ctx, q, principal(c).TenantID, id, actor, comment, time.Now())
		if errors.Is(err, alerting.ErrNotFiring) {
			return &problemError{status: http.StatusConflict, title: "alert not firing", detail: err.Error()}
		}
		if err != nil {
			return err
		}
		if err := record(c, q, "alert.ack", "alert", strconv.FormatInt(id, 10), gin.H{"comment": comment}); err != nil {
			return err
		}
		a, err := q.AlertGetByID(ctx, id)
		out = alertGetOut(a)
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, out)
}

// unackAlert is POST /api/v1/alerts/{id}/unack: the alert repeats and escalates again. 204.
func (s *server) unackAlert(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	if s.inTenant(c, func(q *dbsqlc.Queries) error {
		actor, err := actorName(c, q)
		if err != nil {
			return err
		}
		if err := alerting.Unack(c.Request.Context(), q, id, actor, time.Now()); err != nil {
			return err
		}
		return record(c, q, "alert.unack", "alert", strconv.FormatInt(id, 10), nil)
	}) {
		c.Status(http.StatusNoContent)
	}
}

// actorName names the caller in an alert's history: a user by email, a key or client by kind and id.
func actorName(c *gin.Context, q *dbsqlc.Queries) (string, error) {
	p := principal(c)
	if p.Kind != auth.ActorUser {
		return p.ActorID(), nil
	}
	m, err := q.MembershipGetMember(c.Request.Context(), p.UserID)
	if err != nil {
		return "", err
	}
	return m.Email, nil
}
