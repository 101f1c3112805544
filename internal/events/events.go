// Package events carries what happened — a check changed status, a check produced a result, samples
// arrived for some series — from the process that stored it to every process serving the live stream.
// Producers publish with pg_notify inside the transaction that stores the data, so an event is sent only
// if the data committed; the stream hub of each API process LISTENs on one connection and fans events
// out to its clients.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Channel is the base name of the LISTEN/NOTIFY channel every event travels on. The channel's name in
// the database is private (PrivateChannel): it ends with a secret of the database, so that the BI
// logins of tenants, which may LISTEN and NOTIFY like any session, can neither hear events nor make
// them up.
const Channel = "infrawatch_events"

// Types of event.
const (
	CheckStatus = "check.status" // a check went up or down; ID is its app.check_events id
	CheckResult = "check.result" // a check ran
	Samples     = "samples"      // samples were stored for SeriesIDs
	// Alert events: AlertID changed state (firing, resolved) or was acknowledged.
	AlertFiring   = "alert.firing"
	AlertResolved = "alert.resolved"
	AlertAcked    = "alert.acked"
)

// Event is one notification. Payloads stay under PostgreSQL's 8,000-byte NOTIFY limit whatever the
// producer puts in them: Publish cuts a long reason to MaxReasonBytes and splits a samples event over
// many series into several.
type Event struct {
	Type   string    `json:"type"`
	Tenant uuid.UUID `json:"tenant_id"`
	// ID is the app.check_events id of a check.status event, usable as the stream's Last-Event-ID.
	ID        int64    `json:"id,omitempty"`
	CheckID   int64    `json:"check_id,omitempty"`
	Status    string   `json:"status,omitempty"` // up or down, for check events
	Reason    string   `json:"reason,omitempty"`
	LatencyMS *float64 `json:"latency_ms,omitempty"`
	SeriesIDs []int64  `json:"series_ids,omitempty"`
	// AlertID, RuleID, Severity and Summary describe an alert event; Publish cuts Summary like Reason.
	AlertID  int64     `json:"alert_id,omitempty"`
	RuleID   int64     `json:"rule_id,omitempty"`
	Severity string    `json:"severity,omitempty"`
	Summary  string    `json:"summary,omitempty"`
	Time     time.Time `json:"time"`
}

// maxSeriesPerEvent keeps a samples event's payload under the NOTIFY limit (ids of up to 19 digits).
const maxSeriesPerEvent = 300

// maxPayloadBytes is PostgreSQL's NOTIFY limit: pg_notify refuses a payload of 8,000 bytes or more, and
// the refusal would fail the transaction storing the data the event announces.
const maxPayloadBytes = 7999

// MaxReasonBytes bounds the reason an event carries, so that a reason quoting what a tenant or a
// target controls (a setting, an answer) cannot push a payload over the NOTIFY limit: escaped as JSON
// at up to six bytes a byte, it still leaves room for the other fields. Producers store reasons
// bounded the same way, so the stream shows what is stored.
const MaxReasonBytes = 512

// TruncateReason cuts s to at most MaxReasonBytes bytes on a UTF-8 character boundary, ending a cut
// reason with "…".
func TruncateReason(s string) string {
	if len(s) <= MaxReasonBytes {
		return s
	}
	const mark = "…"
	cut := MaxReasonBytes - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Publish queues evs on Channel through q, which must run in the transaction that stores what they
// announce: they are delivered when it commits, and never when it does not. An event whose payload would
// still exceed the NOTIFY limit is refused with an error before anything reaches pg_notify.
func Publish(ctx context.Context, q *dbsqlc.Queries, evs ...Event) error {
	var payloads []string
	add := func(ev Event) error {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", ev.Type, err)
		}
		if len(b) > maxPayloadBytes {
			return fmt.Errorf("%s event of %d bytes is over the NOTIFY limit of %d", ev.Type, len(b), maxPayloadBytes)
		}
		payloads = append(payloads, string(b))
		return nil
	}
	for _, ev := range evs {
		ev.Reason = TruncateReason(ev.Reason)
		ev.Summary = TruncateReason(ev.Summary)
		for len(ev.SeriesIDs) > maxSeriesPerEvent {
			part := ev
			part.SeriesIDs = ev.SeriesIDs[:maxSeriesPerEvent]
			if err := add(part); err != nil {
				return err
			}
			ev.SeriesIDs = ev.SeriesIDs[maxSeriesPerEvent:]
		}
		if err := add(ev); err != nil {
			return err
		}
	}
	if len(payloads) == 0 {
		return nil
	}
	if err := q.EventNotify(ctx, dbsqlc.EventNotifyParams{Channel: Channel, Payloads: payloads}); err != nil {
		return fmt.Errorf("publish %d events: %w", len(payloads), err)
	}
	return nil
}

// PrivateChannel is the name to LISTEN on for events: Channel and the database's secret (migration
// 000013). Only the owning login may ask it.
func PrivateChannel(ctx context.Context, q *dbsqlc.Queries) (string, error) {
	name, err := q.EventChannel(ctx, Channel)
	if err != nil {
		return "", fmt.Errorf("read the events channel's name: %w", err)
	}
	return name, nil
}
