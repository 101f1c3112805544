package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Tester sends a channel's test message on a user's request (POST /api/v1/channels/{id}/test) and
// answers what the provider said. The message is a notification of kind test like any other: it is in
// the delivery log with its attempt. It is system work behind a narrow method that takes the tenant.
type Tester struct {
	sys    *db.System
	sender *Sender
	cfg    Config

	mu      sync.Mutex
	tenants map[uuid.UUID]*rate.Limiter
}

// NewTester returns a tester sending through sender.
func NewTester(sys *db.System, sender *Sender) *Tester {
	return &Tester{sys: sys, sender: sender, cfg: sender.cfg, tenants: map[uuid.UUID]*rate.Limiter{}}
}

// TestResult is what a test message came to.
type TestResult struct {
	NotificationID int64  `json:"notification_id"`
	Status         string `json:"status"` // sent or failed
	// StatusCode is the provider's answer (HTTP status, SMTP reply code); null without one.
	StatusCode *int   `json:"status_code"`
	Error      string `json:"error"`
	DurationMS int64  `json:"duration_ms"`
}

// TooSoonError says the tenant sent test messages too fast.
type TooSoonError struct{ RetryAfter time.Duration }

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("too many test messages; retry in %s", e.RetryAfter.Round(time.Second))
}

// TestChannel sends channel id of tenant a test message now (disabled or not: testing comes before
// enabling), waits for the provider's answer and returns it. A failure is final: the user decides when
// to try again. db.ErrNotFound says the tenant has no such channel; a *TooSoonError that it sent too
// many test messages lately.
func (t *Tester) TestChannel(ctx context.Context, tenant uuid.UUID, id int64) (TestResult, error) {
	ch, err := t.sys.Queries().ChannelGetForTenant(ctx, dbsqlc.ChannelGetForTenantParams{TenantID: tenant, ID: id})
	if err != nil {
		return TestResult{}, fmt.Errorf("channel %d: %w", id, err)
	}
	if wait := t.reserve(tenant); wait > 0 {
		return TestResult{}, &TooSoonError{RetryAfter: wait}
	}
	ten, err := t.sys.Queries().TenantGetByID(ctx, tenant)
	if err != nil {
		return TestResult{}, fmt.Errorf("tenant: %w", err)
	}
	now := t.sender.clock.Now()
	payload := SamplePayload(PayloadTenant{ID: ten.ID.String(), Slug: ten.Slug, Name: ten.Name}, ch.Name, now)
	raw, err := json.Marshal(payload)
	if err != nil {
		return TestResult{}, err
	}
	row, err := t.sys.Queries().NotificationInsertTest(ctx, dbsqlc.NotificationInsertTestParams{TenantID: tenant,
		ChannelID: id, Payload: raw, Owner: "test:" + t.cfg.Owner, Lease: t.cfg.Lease})
	if err != nil {
		return TestResult{}, fmt.Errorf("record the test message: %w", err)
	}
	msg := NewMessage([]Notification{{ID: row.ID, Kind: "test", Payload: payload}}, t.cfg.PublicURL, now)
	out := t.sender.Send(ctx, SealedChannel{ID: ch.ID, TenantID: ch.TenantID, Name: ch.Name, Kind: ch.Kind,
		Settings: ch.Settings, Secrets: ch.Secrets}, msg)
	res := TestResult{NotificationID: row.ID, Status: "sent", Error: out.ErrorText(), DurationMS: out.Duration.Milliseconds()}
	if out.Status != 0 {
		code := out.Status
		res.StatusCode = &code
	}
	if out.Err != nil {
		res.Status = "failed"
	}
	// The answer is the provider's whatever happens to the record; a record that fails is logged, and
	// its lease runs out into a resend of the test by the notifier.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var status *int32
	if out.Status != 0 {
		s := int32(out.Status)
		status = &s
	}
	err = t.sys.InTx(recordCtx, func(q *dbsqlc.Queries) error {
		if err := q.NotificationAttemptsInsert(recordCtx, dbsqlc.NotificationAttemptsInsertParams{TenantID: tenant,
			StartedAt: out.Started, DurationMs: int32(out.Duration.Milliseconds()), Outcome: attemptOutcome(res.Status),
			StatusCode: status, Error: res.Error, MessageKey: row.ID, NotificationIds: []int64{row.ID}, Attempts: []int32{1}}); err != nil {
			return err
		}
		ids := []int64{row.ID}
		if out.Err == nil {
			_, err := q.NotificationMarkSent(recordCtx, dbsqlc.NotificationMarkSentParams{Ids: ids, Owner: "test:" + t.cfg.Owner})
			return err
		}
		_, err := q.NotificationMarkFailed(recordCtx, dbsqlc.NotificationMarkFailedParams{Ids: ids, Owner: "test:" + t.cfg.Owner,
			LastError: res.Error})
		return err
	})
	if err != nil {
		t.sender.log.Error("record a test message", "notification", row.ID, "err", err)
	}
	return res, nil
}

// reserve takes one of the tenant's test messages, or says how long until there is one.
func (t *Tester) reserve(tenant uuid.UUID) time.Duration {
	now := t.sender.clock.Now()
	t.mu.Lock()
	l, ok := t.tenants[tenant]
	if !ok {
		if len(t.tenants) > 10000 {
			clear(t.tenants)
		}
		l = rate.NewLimiter(rate.Every(t.cfg.TestSendEvery), t.cfg.TestSendBurst)
		t.tenants[tenant] = l
	}
	t.mu.Unlock()
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}
