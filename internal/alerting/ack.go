package alerting

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/events"
)

// ErrNotFiring refuses to acknowledge an alert that is not firing (or suppressed).
var ErrNotFiring = errors.New("only a firing alert can be acknowledged")

// maxCommentBytes bounds an acknowledgement's or a silence's comment.
const maxCommentBytes = 1024

// Ack acknowledges alert id for actor with a comment, records it in the alert's history and announces
// it on the live stream. q runs as the alert's tenant. An acknowledged alert stops repeating and
// escalating; the acknowledgement ends when the alert stops firing. It answers db.ErrNotFound when the
// tenant has no such alert and ErrNotFiring when it does not fire.
func Ack(ctx context.Context, q *dbsqlc.Queries, tenant uuid.UUID, id int64, actor, comment string, now time.Time) error {
	if len(comment) > maxCommentBytes {
		return fmt.Errorf("comment over %d bytes", maxCommentBytes)
	}
	row, err := q.AlertAck(ctx, dbsqlc.AlertAckParams{ID: id, AckedAt: &now, AckedBy: &actor, Comment: comment})
	if errors.Is(err, db.ErrNotFound) {
		if _, err := q.AlertGetByID(ctx, id); err != nil {
			return err
		}
		return ErrNotFiring
	}
	if err != nil {
		return fmt.Errorf("acknowledge alert %d: %w", id, err)
	}
	if err := q.AlertEventCreate(ctx, dbsqlc.AlertEventCreateParams{AlertID: id, Time: now, Kind: "ack", Reason: comment,
		Actor: actor}); err != nil {
		return fmt.Errorf("record the acknowledgement of alert %d: %w", id, err)
	}
	return events.Publish(ctx, q, events.Event{Type: events.AlertAcked, Tenant: tenant, AlertID: id, RuleID: row.RuleID,
		Severity: row.Severity, Summary: row.Summary, Time: now})
}

// Unack withdraws the acknowledgement of alert id: it repeats and escalates again. It answers
// db.ErrNotFound when the tenant has no such alert; an alert not acknowledged stays as it is.
func Unack(ctx context.Context, q *dbsqlc.Queries, id int64, actor string, now time.Time) error {
	n, err := q.AlertUnack(ctx, id)
	if err != nil {
		return fmt.Errorf("withdraw the acknowledgement of alert %d: %w", id, err)
	}
	if n == 0 {
		_, err := q.AlertGetByID(ctx, id)
		return err
	}
	return q.AlertEventCreate(ctx, dbsqlc.AlertEventCreateParams{AlertID: id, Time: now, Kind: "unack", Actor: actor})
}
