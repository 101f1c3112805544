package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

// SecretsColumn is where channels keep their sealed secrets: the context they are sealed for.
const SecretsColumn = secrets.ChannelsColumn

// SealedChannel is a channel as stored: public settings (with the mask where a secret is) and its
// sealed secrets.
type SealedChannel struct {
	ID       int64
	TenantID uuid.UUID
	Name     string
	Kind     string
	Settings []byte
	Secrets  []byte
}

// Outcome is what one send came to.
type Outcome struct {
	// Err is nil when the message went out.
	Err error
	// Retry: another attempt may succeed.
	Retry bool
	// RetryAfter is the wait the provider asked for; zero when it asked none.
	RetryAfter time.Duration
	// Status is the provider's status (HTTP, or SMTP reply code); zero without an answer.
	Status int
	// Started is when the send began (after any rate-limit wait); Duration how long it took.
	Started  time.Time
	Duration time.Duration
}

// ErrorText is the outcome's error as the delivery log keeps it: bounded, without a secret.
func (o Outcome) ErrorText() string {
	if o.Err == nil {
		return ""
	}
	return bound(o.Err.Error())
}

// Sender sends messages to channels: it opens their secrets, keeps the providers' rate limits and bounds
// each send. The notifier and a channel's test message share it. It is safe for concurrent use.
type Sender struct {
	env    *env
	keys   *secrets.Keyring
	limits *limiters
	clock  Clock
	cfg    Config
	log    *slog.Logger
	m      *metrics
}

// NewSender returns a sender. guard checks every address a user's URL connects to; keys open the
// channels' secrets. reg, when not nil, gets the sender's metrics.
func NewSender(cfg Config, guard *checks.Guard, keys *secrets.Keyring, log *slog.Logger, reg prometheus.Registerer) (*Sender, error) {
	cfg = cfg.withDefaults()
	relay, err := parseSMTP(cfg.SMTP, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	if guard == nil {
		guard = &checks.Guard{}
	}
	clock := Clock(realClock{})
	s := &Sender{keys: keys, clock: clock, limits: newLimiters(clock), cfg: cfg, log: log, m: newMetrics(reg),
		env: &env{userHTTP: newHTTPClient(guard, cfg.Timeout), apiHTTP: newHTTPClient(nil, cfg.Timeout), smtp: relay,
			providers: cfg.Providers, userAgent: "infrawatch-notifier/1", now: clock.Now}}
	return s, nil
}

// setClock makes the sender (its rate limits, its timestamps) run on clock; tests call it before use.
func (s *Sender) setClock(clock Clock) {
	s.clock, s.limits, s.env.now = clock, newLimiters(clock), clock.Now
}

// Open returns the channel with its secrets in its settings.
func (s *Sender) Open(ch SealedChannel) (Channel, error) {
	settings := json.RawMessage(ch.Settings)
	if len(ch.Secrets) > 0 {
		plain, err := s.keys.Open(ch.Secrets, secrets.For(SecretsColumn, ch.TenantID))
		if err != nil {
			return Channel{}, fmt.Errorf("open the channel's secrets: %w", err)
		}
		joined, err := secrets.Join(ch.Settings, plain)
		if err != nil {
			return Channel{}, fmt.Errorf("open the channel's secrets: %w", err)
		}
		settings = joined
	}
	return Channel{ID: ch.ID, TenantID: ch.TenantID, Name: ch.Name, Kind: ch.Kind, Settings: settings}, nil
}

// Send sends m to ch now: it opens the channel's secrets, waits for the provider's rate limits (stop
// ends the wait: nothing is sent then, and the outcome is retryable), and sends within the timeout. A
// panic of a kind is a final failure, never a crash.
func (s *Sender) Send(stop context.Context, ch SealedChannel, m *Message) (out Outcome) {
	k, ok := Lookup(ch.Kind)
	if !ok {
		return Outcome{Err: fmt.Errorf("unknown channel kind %q", ch.Kind), Started: s.clock.Now()}
	}
	open, err := s.Open(ch)
	if err != nil {
		// The key may come back (an operator restores it); the notification's age ends the retries.
		return Outcome{Err: err, Retry: true, Started: s.clock.Now()}
	}
	if err := s.limits.wait(stop, k.Limits(open.Settings, m)); err != nil {
		return Outcome{Err: errStopped, Retry: true, Started: s.clock.Now()}
	}
	d := &Delivery{Channel: open, Message: m, env: s.env}
	// The send itself is not cut short by a stop: a message half sent is worse than a shutdown that
	// waits for it, within the timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(stop), s.cfg.Timeout)
	defer cancel()
	out.Started = s.clock.Now()
	func() {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("channel kind panicked", "kind", ch.Kind, "panic", r, "stack", string(debug.Stack()))
				out.Retry, out.Err = false, fmt.Errorf("internal error in the %s channel", ch.Kind)
			}
		}()
		out.Retry, out.Err = k.Notify(ctx, d)
	}()
	out.Duration = s.clock.Now().Sub(out.Started)
	out.Status = d.Status()
	var pe *ProviderError
	if errors.As(out.Err, &pe) {
		out.RetryAfter = pe.RetryAfter
	}
	if out.Err == nil {
		out.Retry = false
	}
	s.m.observe(ch.Kind, out)
	return out
}

// errStopped: the notifier stopped before the message could be sent; nothing went out.
var errStopped = errors.New("the notifier stopped before sending")

// Clock is the notifier's time. Production runs on the real clock; tests drive a fake one.
type Clock interface {
	// Now stamps attempts and schedules retries.
	Now() time.Time
	// DatabaseNow is the time claims compare due times and leases with. Nil means the database's
	// now(), so that the database, not the clocks of the replicas, decides what is due.
	DatabaseNow() *time.Time
	// After fires once d has passed: the wait when nothing is due, a rate limit's wait.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) DatabaseNow() *time.Time                { return nil }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

type metrics struct {
	sends    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_notify_sends_total",
			Help: "Messages sent to channels, by kind and outcome (sent, retry, failed)."}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "infrawatch_notify_send_seconds",
			Help: "Time a send took, by channel kind.", Buckets: prometheus.ExponentialBuckets(0.005, 3, 9)}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.sends, m.duration)
	}
	return m
}

func (m *metrics) observe(kind string, out Outcome) {
	outcome := "sent"
	switch {
	case out.Err != nil && out.Retry:
		outcome = "retry"
	case out.Err != nil:
		outcome = "failed"
	}
	m.sends.WithLabelValues(kind, outcome).Inc()
	m.duration.WithLabelValues(kind).Observe(out.Duration.Seconds())
}
