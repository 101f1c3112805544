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

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Channel is the LISTEN/NOTIFY channel every event travels on.
const Channel = "infrawatch_events"

// Types of event.
const (
	CheckStatus = "check.status" // a check went up or down; ID is its app.check_events id
	CheckResult = "check.result" // a check ran
	Samples     = "samples"      // samples were stored for SeriesIDs
)

// Event is one notification. Payloads stay well under PostgreSQL's 8,000-byte NOTIFY limit: Publish
// splits a samples event over many series into several.
type Event struct {
	Type   string    `json:"type"`
	Tenant uuid.UUID `json:"tenant_id"`
	// ID is the app.check_events id of a check.status event, usable as the stream's Last-Event-ID.
	ID        int64     `json:"id,omitempty"`
	CheckID   int64     `json:"check_id,omitempty"`
	Status    string    `json:"status,omitempty"` // up or down, for check events
	Reason    string    `json:"reason,omitempty"`
	LatencyMS *float64  `json:"latency_ms,omitempty"`
	SeriesIDs []int64   `json:"series_ids,omitempty"`
	Time      time.Time `json:"time"`
}

// maxSeriesPerEvent keeps a samples event's payload under the NOTIFY limit (ids of up to 19 digits).
const maxSeriesPerEvent = 300

// Publish queues evs on Channel inside tx; they are delivered when tx commits.
func Publish(ctx context.Context, tx pgx.Tx, evs ...Event) error {
	var payloads []string
	for _, ev := range evs {
		for len(ev.SeriesIDs) > maxSeriesPerEvent {
			part := ev
			part.SeriesIDs = ev.SeriesIDs[:maxSeriesPerEvent]
			b, err := json.Marshal(part)
			if err != nil {
				return err
			}
			payloads = append(payloads, string(b))
			ev.SeriesIDs = ev.SeriesIDs[maxSeriesPerEvent:]
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		payloads = append(payloads, string(b))
	}
	if len(payloads) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, Channel, payloads); err != nil {
		return fmt.Errorf("publish %d events: %w", len(payloads), err)
	}
	return nil
}
