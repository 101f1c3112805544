package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/service"
)

// Notifier is the notifier role's worker. It claims due notifications under a lease (FOR UPDATE SKIP
// LOCKED, so any number of notifiers share the outbox and each notification goes to one of them), takes
// each rule's waiting notifications for a channel as one message, sends each channel's messages one at
// a time (so one slow or failing channel holds up only itself), and records every attempt. A failure
// worth retrying (timeout, connection, 5xx, 429) waits a capped exponential backoff with jitter, or what
// the provider asked; any other refusal fails the notification with the provider's reason; so does an
// age past MaxAge.
type Notifier struct {
	cfg    Config
	sys    *db.System
	sender *Sender
	log    *slog.Logger
	loop   service.Loop
	clock  Clock
	// testSignals are nil but in tests.
	testSignals  testSignals
	claimedTotal prometheus.Counter
	lostTotal    prometheus.Counter

	mu      sync.Mutex
	busy    map[int64]bool // channels with a message being sent by this notifier
	running int
	freed   chan struct{} // signalled when a message is done, so a full notifier claims again at once
}

var _ service.Service = (*Notifier)(nil)

// New returns a notifier that sends through sender. reg, when not nil, gets its metrics.
func New(cfg Config, sys *db.System, sender *Sender, log *slog.Logger, reg prometheus.Registerer) *Notifier {
	n := &Notifier{cfg: cfg.withDefaults(), sys: sys, sender: sender, log: log, clock: sender.clock,
		busy: map[int64]bool{}, freed: make(chan struct{}, 1),
		claimedTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_notify_claimed_total",
			Help: "Notifications claimed for sending."}),
		lostTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_notify_lost_leases_total",
			Help: "Notifications whose outcome was not recorded because another notifier had taken them over."})}
	if reg != nil {
		reg.MustRegister(n.claimedTotal, n.lostTotal)
	}
	n.loop.Run = n.Run
	return n
}

// Start runs the notifier in the background until Stop.
func (n *Notifier) Start(ctx context.Context) error { return n.loop.Start(ctx) }

// Stop stops claiming and returns once the messages being sent are sent and recorded (each within the
// send timeout); a message still waiting for a rate limit is given back, unsent.
func (n *Notifier) Stop() { n.loop.Stop() }

// claimed is one message claimed for sending: its channel and its notifications, oldest first.
type claimed struct {
	channel SealedChannel
	enabled bool
	rows    []dbsqlc.NotificationMarkSendingRow
}

// Run delivers until ctx ends, then waits for the messages under way.
func (n *Notifier) Run(ctx context.Context) {
	var sends sync.WaitGroup
	defer sends.Wait()
	for ctx.Err() == nil {
		wake := n.clock.After(n.cfg.Idle)
		now := n.clock.DatabaseNow()
		msgs, err := n.claim(ctx, now)
		if err != nil && ctx.Err() == nil {
			n.log.Error("claim due notifications", "err", err)
		}
		for _, c := range msgs {
			sends.Go(func() {
				defer n.release(c.channel.ID)
				n.deliver(ctx, c)
			})
		}
		if len(msgs) > 0 && n.hasRoom() {
			continue // more may be due
		}
		n.signalIdle(now)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-n.freed:
		}
	}
}

func (n *Notifier) hasRoom() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running < n.cfg.Concurrency
}

func (n *Notifier) release(channel int64) {
	n.mu.Lock()
	delete(n.busy, channel)
	n.running--
	n.mu.Unlock()
	select {
	case n.freed <- struct{}{}:
	default:
	}
}

// claim leases the due notifications of up to as many channels as there is room for, one message per
// channel: a rule's group (every notification of the rule waiting for the channel, at most MaxGroup), or
// a single notification. now nil is the database's clock.
func (n *Notifier) claim(ctx context.Context, now *time.Time) ([]claimed, error) {
	n.mu.Lock()
	free := n.cfg.Concurrency - n.running
	busy := make([]int64, 0, len(n.busy))
	for ch := range n.busy {
		busy = append(busy, ch)
	}
	n.mu.Unlock()
	if free <= 0 {
		return nil, nil
	}
	var out []claimed
	err := n.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		out = nil
		cands, err := q.NotificationClaimCandidates(ctx, dbsqlc.NotificationClaimCandidatesParams{Now: now,
			BusyChannels: busy, MaxRows: int32(n.cfg.Batch)})
		if err != nil || len(cands) == 0 {
			return err
		}
		// The first due notification of each channel leads its channel's message.
		var ids, groupChannels, groupRules []int64
		seen := map[int64]bool{}
		for _, c := range cands {
			if seen[c.ChannelID] || len(seen) == free {
				continue
			}
			seen[c.ChannelID] = true
			if c.RuleID == nil {
				ids = append(ids, c.ID)
			} else {
				groupChannels, groupRules = append(groupChannels, c.ChannelID), append(groupRules, *c.RuleID)
			}
		}
		if len(groupChannels) > 0 {
			members, err := q.NotificationClaimGroups(ctx, dbsqlc.NotificationClaimGroupsParams{ChannelIds: groupChannels,
				RuleIds: groupRules, Now: now})
			if err != nil {
				return err
			}
			perChannel := map[int64]int{}
			for _, m := range members {
				if perChannel[m.ChannelID] < n.cfg.MaxGroup {
					perChannel[m.ChannelID]++
					ids = append(ids, m.ID)
				}
			}
		}
		rows, err := q.NotificationMarkSending(ctx, dbsqlc.NotificationMarkSendingParams{Owner: n.cfg.Owner, Now: now,
			Lease: n.cfg.Lease, Ids: ids})
		if err != nil {
			return err
		}
		byChannel := map[int64]int{}
		for _, r := range rows {
			i, ok := byChannel[r.ChannelID]
			if !ok {
				i = len(out)
				byChannel[r.ChannelID] = i
				out = append(out, claimed{enabled: r.ChannelEnabled, channel: SealedChannel{ID: r.ChannelID, TenantID: r.TenantID,
					Name: r.ChannelName, Kind: r.ChannelKind, Settings: r.ChannelSettings, Secrets: r.ChannelSecrets}})
			}
			out[i].rows = append(out[i].rows, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim due notifications: %w", err)
	}
	n.mu.Lock()
	for _, c := range out {
		slices.SortFunc(c.rows, func(a, b dbsqlc.NotificationMarkSendingRow) int { return int(a.ID - b.ID) })
		n.busy[c.channel.ID] = true
		n.running++
		n.claimedTotal.Add(float64(len(c.rows)))
	}
	n.mu.Unlock()
	return out, nil
}

// deliver sends one claimed message and records what came of it.
func (n *Notifier) deliver(stop context.Context, c claimed) {
	now := n.clock.Now()
	// Notifications past their age are not sent any more: they fail with the reason they could not go.
	var live []dbsqlc.NotificationMarkSendingRow
	for _, r := range c.rows {
		if now.Sub(r.CreatedAt) > n.cfg.MaxAge {
			reason := fmt.Sprintf("not delivered within %s", n.cfg.MaxAge)
			if r.LastError != "" {
				reason += "; last error: " + r.LastError
			}
			n.finish(c, []dbsqlc.NotificationMarkSendingRow{r}, nil, "failed", reason, now)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if !c.enabled {
		n.finish(c, live, nil, "failed", "the channel is disabled", now)
		return
	}
	ns := make([]Notification, 0, len(live))
	for _, r := range live {
		p, err := DecodePayload(r.Payload)
		if err != nil {
			n.finish(c, []dbsqlc.NotificationMarkSendingRow{r}, nil, "failed", err.Error(), now)
			continue
		}
		ns = append(ns, Notification{ID: r.ID, Kind: r.Kind, Payload: p})
	}
	live = slices.DeleteFunc(live, func(r dbsqlc.NotificationMarkSendingRow) bool {
		return !slices.ContainsFunc(ns, func(x Notification) bool { return x.ID == r.ID })
	})
	if len(live) == 0 {
		return
	}
	msg := NewMessage(ns, n.cfg.PublicURL, now)
	out := n.sender.Send(stop, c.channel, msg)
	if out.Err == errStopped {
		n.giveBack(c, live)
		return
	}
	switch {
	case out.Err == nil:
		n.finish(c, live, &out, "sent", "", out.Started)
	case !out.Retry:
		n.finish(c, live, &out, "failed", out.ErrorText(), out.Started)
	default:
		// Another attempt, unless that would come past a notification's age.
		next := n.clock.Now().Add(n.backoff(live[0].Attempts, out.RetryAfter))
		var retry, giveUp []dbsqlc.NotificationMarkSendingRow
		for _, r := range live {
			if next.Sub(r.CreatedAt) > n.cfg.MaxAge {
				giveUp = append(giveUp, r)
			} else {
				retry = append(retry, r)
			}
		}
		if len(giveUp) > 0 {
			n.finish(c, giveUp, &out, "failed", fmt.Sprintf("gave up after %s: %s", n.cfg.MaxAge, out.ErrorText()), out.Started)
		}
		if len(retry) > 0 {
			n.finishRetry(c, retry, &out, next)
		}
	}
}

// backoff is the wait before attempt+1: what the provider asked for, or BackoffBase doubled at each
// attempt up to BackoffCap, of which a random half (jitter) so that notifiers do not retry in step.
func (n *Notifier) backoff(attempt int32, asked time.Duration) time.Duration {
	if asked > 0 {
		return max(asked, time.Second)
	}
	d := n.cfg.BackoffBase
	for i := int32(1); i < attempt && d < n.cfg.BackoffCap; i++ {
		d *= 2
	}
	d = min(d, n.cfg.BackoffCap)
	return d/2 + rand.N(d/2+1)
}

// finish records the attempt and the final state of rows: sent, or failed with reason. out is nil when
// rows failed without a send (too old, the channel disabled): the attempt then records the reason alone.
func (n *Notifier) finish(c claimed, rows []dbsqlc.NotificationMarkSendingRow, out *Outcome, state, reason string, at time.Time) {
	if out == nil {
		out = &Outcome{Err: errors.New(reason), Started: at}
	}
	n.record(c, rows, out, state, func(ctx context.Context, q *dbsqlc.Queries, ids []int64) ([]int64, error) {
		if state == "sent" {
			return q.NotificationMarkSent(ctx, dbsqlc.NotificationMarkSentParams{Ids: ids, Owner: n.cfg.Owner,
				Now: n.clock.DatabaseNow()})
		}
		return q.NotificationMarkFailed(ctx, dbsqlc.NotificationMarkFailedParams{Ids: ids, Owner: n.cfg.Owner,
			LastError: bound(reason)})
	})
}

// finishRetry records the attempt and puts rows back for another at next.
func (n *Notifier) finishRetry(c claimed, rows []dbsqlc.NotificationMarkSendingRow, out *Outcome, next time.Time) {
	n.record(c, rows, out, "retry", func(ctx context.Context, q *dbsqlc.Queries, ids []int64) ([]int64, error) {
		return q.NotificationMarkRetry(ctx, dbsqlc.NotificationMarkRetryParams{Ids: ids, Owner: n.cfg.Owner,
			NextAttemptAt: next, LastError: out.ErrorText()})
	})
}

// giveBack returns rows that were not sent (the notifier is stopping) for any notifier to send now.
func (n *Notifier) giveBack(c claimed, rows []dbsqlc.NotificationMarkSendingRow) {
	n.record(c, rows, nil, "given back", func(ctx context.Context, q *dbsqlc.Queries, ids []int64) ([]int64, error) {
		return q.NotificationMarkRetry(ctx, dbsqlc.NotificationMarkRetryParams{Ids: ids, Owner: n.cfg.Owner,
			NextAttemptAt: n.clock.Now(), LastError: rows[0].LastError})
	})
}

// record writes, in one transaction, an attempt for each row (when one was made) and the rows' new state
// through mark, which changes only the rows this notifier still holds. A row another notifier took over
// (this one was too slow, past its lease) keeps the state the other gives it.
func (n *Notifier) record(c claimed, rows []dbsqlc.NotificationMarkSendingRow, out *Outcome, outcome string,
	mark func(ctx context.Context, q *dbsqlc.Queries, ids []int64) ([]int64, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := make([]int64, len(rows))
	attempts := make([]int32, len(rows))
	for i, r := range rows {
		ids[i], attempts[i] = r.ID, r.Attempts
	}
	var kept []int64
	err := n.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		if out != nil {
			var status *int32
			if out.Status != 0 {
				s := int32(out.Status)
				status = &s
			}
			if err := q.NotificationAttemptsInsert(ctx, dbsqlc.NotificationAttemptsInsertParams{TenantID: c.channel.TenantID,
				StartedAt: out.Started, DurationMs: int32(out.Duration.Milliseconds()), Outcome: attemptOutcome(outcome),
				StatusCode: status, Error: out.ErrorText(), MessageKey: slices.Min(ids), NotificationIds: ids,
				Attempts: attempts}); err != nil {
				return fmt.Errorf("record the attempt: %w", err)
			}
		}
		var err error
		kept, err = mark(ctx, q, ids)
		return err
	})
	if err != nil {
		// The leases run out and the notifications are sent again, with the same idempotency key.
		n.log.Error("record notifications", "ids", ids, "outcome", outcome, "err", err)
		return
	}
	if lost := len(ids) - len(kept); lost > 0 {
		n.lostTotal.Add(float64(lost))
		n.log.Warn("notifications were taken over by another notifier before their outcome was recorded", "ids", ids)
	}
	n.testSignals.recorded.signal(Recorded{IDs: ids, Outcome: outcome})
}

func attemptOutcome(outcome string) string {
	if outcome == "sent" || outcome == "retry" {
		return outcome
	}
	return "failed"
}

// Recorded is what a test learns when the notifier recorded notifications.
type Recorded struct {
	IDs     []int64
	Outcome string // sent, failed, retry or given back
}

// testSignals are the moments a test waits for instead of sleeping (river's testSignals pattern). Each is
// a channel in tests and nil in production, where signalling does nothing.
type testSignals struct {
	// idle: the notifier claimed at a clock's time, found nothing more, and has nothing under way.
	idle testSignal[time.Time]
	// recorded: an outcome was recorded.
	recorded testSignal[Recorded]
}

func (s *testSignals) init() {
	s.idle = make(testSignal[time.Time], 1000)
	s.recorded = make(testSignal[Recorded], 1000)
}

// testSignal is a channel the notifier signals on in tests; nil, it does nothing.
type testSignal[T any] chan T

func (s testSignal[T]) signal(v T) {
	if s == nil {
		return
	}
	select {
	case s <- v:
	default:
		panic("notify: test signal channel full; the test does not read it")
	}
}

// signalIdle signals idle when the notifier claimed at the clock's time now and has nothing under way.
func (n *Notifier) signalIdle(now *time.Time) {
	if n.testSignals.idle == nil || now == nil {
		return
	}
	n.mu.Lock()
	running := n.running
	n.mu.Unlock()
	if running == 0 {
		n.testSignals.idle.signal(*now)
	}
}
