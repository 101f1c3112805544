package api

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Notification is one entry of the delivery log: a notification to a channel, its state and its
// attempts so far.
type Notification struct {
	ID            int64      `json:"id"`
	AlertID       *int64     `json:"alert_id"`
	ChannelID     int64      `json:"channel_id"`
	ChannelName   string     `json:"channel_name"`
	ChannelKind   string     `json:"channel_kind"`
	RuleID        *int64     `json:"rule_id"`
	Kind          string     `json:"kind"`
	State         string     `json:"state"`
	Attempts      int32      `json:"attempts"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"` // null once sent or failed
	SentAt        *time.Time `json:"sent_at"`
}

// NotificationDetail adds what the notification says and each attempt.
type NotificationDetail struct {
	Notification
	Payload      json.RawMessage       `json:"payload"`
	AttemptsList []NotificationAttempt `json:"attempt_log"`
}

// NotificationAttempt is one try to send a notification.
type NotificationAttempt struct {
	Attempt    int32     `json:"attempt"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int32     `json:"duration_ms"`
	Outcome    string    `json:"outcome"`
	StatusCode *int32    `json:"status_code"`
	Error      string    `json:"error"`
	MessageKey int64     `json:"message_key"`
}

func notificationOut(r dbsqlc.NotificationListRow) Notification {
	n := Notification{ID: r.ID, AlertID: r.AlertID, ChannelID: r.ChannelID, ChannelName: r.ChannelName, ChannelKind: r.ChannelKind,
		RuleID: r.RuleID, Kind: r.Kind, State: r.State, Attempts: r.Attempts, LastError: r.LastError, CreatedAt: r.CreatedAt,
		SentAt: r.SentAt}
	if r.State == "pending" || r.State == "sending" {
		at := r.NextAttemptAt
		n.NextAttemptAt = &at
	}
	return n
}

// notificationStates and notificationKinds are what the filters accept.
var (
	notificationStates = []string{"pending", "sending", "sent", "failed"}
	notificationKinds  = []string{"firing", "resolved", "repeat", "flapping", "escalation", "test"}
)

// listNotifications is GET /api/v1/notifications: the delivery log, newest first, filtered by state,
// kind, channel_id, alert_id and created_at within since and until.
func (s *server) listNotifications(c *gin.Context) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	var errs fieldErrors
	params := dbsqlc.NotificationListParams{BeforeID: math.MaxInt64, MaxRows: limit}
	if cursor != "" {
		id, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || id <= 0 {
			errs.add("cursor", "is not a cursor this API returned")
		}
		params.BeforeID = id
	}
	if v := c.Query("state"); v != "" {
		if !slices.Contains(notificationStates, v) {
			errs.add("state", "must be pending, sending, sent or failed")
		}
		params.State = &v
	}
	if v := c.Query("kind"); v != "" {
		if !slices.Contains(notificationKinds, v) {
			errs.add("kind", "must be firing, resolved, repeat, flapping, escalation or test")
		}
		params.Kind = &v
	}
	for _, f := range []struct {
		name string
		dst  **int64
	}{{"channel_id", &params.ChannelID}, {"alert_id", &params.AlertID}} {
		if v := c.Query(f.name); v != "" {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				errs.add(f.name, "must be a positive integer")
			}
			*f.dst = &id
		}
	}
	for _, f := range []struct {
		name string
		dst  **time.Time
	}{{"since", &params.Since}, {"until", &params.Until}} {
		if v := c.Query(f.name); v != "" {
			t := parseTime(v, time.Time{}, f.name, &errs)
			*f.dst = &t
		}
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	var out []Notification
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		rows, err := q.NotificationList(c.Request.Context(), params)
		for _, r := range rows {
			out = append(out, notificationOut(r))
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(orEmpty(out), limit, func(n Notification) string { return strconv.FormatInt(n.ID, 10) }))
}

// getNotification is GET /api/v1/notifications/{id}: one entry of the delivery log with its payload and
// every attempt.
func (s *server) getNotification(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var out NotificationDetail
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		r, err := q.NotificationGetByID(ctx, id)
		if err != nil {
			return err
		}
		out.Notification = notificationOut(dbsqlc.NotificationListRow{ID: r.ID, AlertID: r.AlertID, ChannelID: r.ChannelID,
			ChannelName: r.ChannelName, ChannelKind: r.ChannelKind, RuleID: r.RuleID, Kind: r.Kind, State: r.State,
			Attempts: r.Attempts, LastError: r.LastError, CreatedAt: r.CreatedAt, NextAttemptAt: r.NextAttemptAt, SentAt: r.SentAt})
		out.Payload = r.Payload
		attempts, err := q.NotificationAttemptList(ctx, id)
		out.AttemptsList = make([]NotificationAttempt, 0, len(attempts))
		for _, a := range attempts {
			out.AttemptsList = append(out.AttemptsList, NotificationAttempt{Attempt: a.Attempt, StartedAt: a.StartedAt,
				DurationMS: a.DurationMs, Outcome: a.Outcome, StatusCode: a.StatusCode, Error: a.Error, MessageKey: a.MessageKey})
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, out)
}
