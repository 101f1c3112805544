// Package stream is the live feed behind GET /api/v1/stream. One Hub per process holds a single
// dedicated connection that LISTENs on events.Channel, parses what producers publish (the poller, the
// ingest writer) and fans each event out to the subscribers of the event's tenant.
//
// The hub must never wait for a subscriber: each has a bounded buffer, and when it is full the event is
// dropped for that subscriber alone, which is told through Missed. Subscribers are told the same when
// the hub lost its connection for a while, since notifications sent meanwhile are gone for good. What
// was missed is recovered by the subscriber from the database (the stream handler replays
// app.check_events); the hub itself never reads tenant data and never writes.
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/events"
	"github.com/infrawatch/infrawatch/internal/service"
)

// Errors of Subscribe.
var (
	// ErrTooManyStreams: the tenant already has as many subscriptions in this process as it may
	// (Config.MaxPerTenant, or its own max_streams).
	ErrTooManyStreams = errors.New("too many live streams for this tenant")
	// ErrClosed: the hub is shutting down.
	ErrClosed = errors.New("live stream hub is closed")
)

// ApplicationName is the application_name of the hub's connection, so that operators (and tests) can
// find it in pg_stat_activity.
const ApplicationName = "infrawatch stream hub"

// Config tunes a Hub. Zero fields take DefaultConfig's values. The hub has no flags.
type Config struct {
	// Buffer is how many events may wait for one subscriber before it starts missing them.
	Buffer int
	// MaxPerTenant caps one tenant's subscriptions in this process; beyond it Subscribe answers
	// ErrTooManyStreams. A tenant's max_streams, when set, replaces it (SubscribeUpTo).
	MaxPerTenant int
	// MinBackoff and MaxBackoff bound the wait before reconnecting after the connection failed: it starts
	// at MinBackoff, doubles at each failure up to MaxBackoff, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// PingInterval is how long the connection may stay silent before the hub pings the server, so that
	// a connection that died without a word is noticed.
	PingInterval time.Duration
}

// DefaultConfig holds the hub's defaults.
func DefaultConfig() Config {
	return Config{Buffer: 256, MaxPerTenant: 100, MinBackoff: 250 * time.Millisecond, MaxBackoff: 15 * time.Second,
		PingInterval: 30 * time.Second}
}

func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.Buffer <= 0 {
		c.Buffer = def.Buffer
	}
	if c.MaxPerTenant <= 0 {
		c.MaxPerTenant = def.MaxPerTenant
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = def.MinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = def.MaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.PingInterval <= 0 {
		c.PingInterval = def.PingInterval
	}
	return c
}

// Validate reports settings that cannot work; zero is the default everywhere, negative is wrong.
func (c Config) Validate() error {
	if c.Buffer < 0 || c.MaxPerTenant < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 || c.PingInterval < 0 {
		return errors.New("stream: buffer, streams per tenant, backoffs and ping interval must not be negative")
	}
	return nil
}

// Hub listens for events and hands them to subscribers by tenant. It listens between Start and Stop
// (Run is the same loop, blocking); Subscribe and Close may be called from any goroutine.
type Hub struct {
	cfg        Config
	connConfig *pgx.ConnConfig
	log        *slog.Logger
	m          *metrics
	loop       service.Loop

	mu        sync.Mutex
	tenants   map[uuid.UUID]map[*Subscription]struct{}
	listening bool
	changed   chan struct{} // closed and replaced whenever listening changes
	closed    bool
	closing   chan struct{} // closed by Close
}

// New returns a hub that connects like pool (same server, login and settings) but on a connection of
// its own, outside the pool: a LISTEN connection is never handed to anyone else.
func New(cfg Config, pool *pgxpool.Pool, log *slog.Logger, reg prometheus.Registerer) *Hub {
	cc := pool.Config().ConnConfig.Copy()
	cc.RuntimeParams["application_name"] = ApplicationName
	h := &Hub{cfg: cfg.withDefaults(), connConfig: cc, log: log, m: newMetrics(reg),
		tenants: map[uuid.UUID]map[*Subscription]struct{}{}, changed: make(chan struct{}), closing: make(chan struct{})}
	h.loop.Run = h.Run
	return h
}

var _ service.Service = (*Hub)(nil)

// Start listens in a goroutine of its own until Stop, or Close.
func (h *Hub) Start(ctx context.Context) error { return h.loop.Start(ctx) }

// Stop ends Run, which closes the hub (see Close), and returns once the hub has let go of its
// connection.
func (h *Hub) Stop() { h.loop.Stop() }

// Subscription receives one tenant's events that its filter accepts. Events are shared between
// subscribers: never modify one.
type Subscription struct {
	hub    *Hub
	tenant uuid.UUID
	accept func(events.Event) bool
	events chan events.Event
	missed chan struct{}
	done   chan struct{}
	ended  bool // guarded by hub.mu
}

// Events delivers the subscription's events in the order the hub heard them.
func (s *Subscription) Events() <-chan events.Event { return s.events }

// Missed receives a value when events may have been lost since the subscriber last looked: its buffer
// overflowed, or the hub (re)connected, which it does after missing notifications. Signals coalesce:
// one value stands for any number of losses.
func (s *Subscription) Missed() <-chan struct{} { return s.missed }

// Done is closed when the subscription ends: by Close, or because the hub closed.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s)
}

func (s *Subscription) signalMissed() {
	select {
	case s.missed <- struct{}{}:
	default:
	}
}

// MaxPerTenant is the cap of a tenant's subscriptions in this process when it has no max_streams of its own.
func (h *Hub) MaxPerTenant() int { return h.cfg.MaxPerTenant }

// Subscribe registers a subscriber for tenant's events. accept, when not nil, picks the events it wants;
// it runs on the hub's goroutine, so it must be quick and must not block. Events committed after
// Subscribe returns are delivered, or signalled on Missed.
func (h *Hub) Subscribe(tenant uuid.UUID, accept func(events.Event) bool) (*Subscription, error) {
	return h.SubscribeUpTo(tenant, 0, accept)
}

// SubscribeUpTo is Subscribe with the tenant's own cap of subscriptions in this process (its
// max_streams) in place of Config.MaxPerTenant; zero or less means Config.MaxPerTenant.
func (h *Hub) SubscribeUpTo(tenant uuid.UUID, maxStreams int, accept func(events.Event) bool) (*Subscription, error) {
	if maxStreams <= 0 {
		maxStreams = h.cfg.MaxPerTenant
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	subs := h.tenants[tenant]
	if len(subs) >= maxStreams {
		h.m.refused.Inc()
		return nil, ErrTooManyStreams
	}
	if subs == nil {
		subs = map[*Subscription]struct{}{}
		h.tenants[tenant] = subs
	}
	s := &Subscription{hub: h, tenant: tenant, accept: accept, events: make(chan events.Event, h.cfg.Buffer),
		missed: make(chan struct{}, 1), done: make(chan struct{})}
	subs[s] = struct{}{}
	h.m.subscribers.Inc()
	return s, nil
}

func (h *Hub) removeLocked(s *Subscription) {
	if s.ended {
		return
	}
	s.ended = true
	close(s.done)
	h.m.subscribers.Dec()
	subs := h.tenants[s.tenant]
	delete(subs, s)
	if len(subs) == 0 {
		delete(h.tenants, s.tenant)
	}
}

// Close ends every subscription, refuses new ones and stops Run. The HTTP server calls it when it starts
// shutting down: streams never go idle by themselves, so without it a graceful shutdown would wait for
// them until its timeout.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.closing)
	for _, subs := range h.tenants {
		for s := range subs {
			h.removeLocked(s)
		}
	}
}

// WaitListening returns once the hub holds a listening connection, or with ctx's error.
func (h *Hub) WaitListening(ctx context.Context) error {
	for {
		h.mu.Lock()
		listening, changed, closed := h.listening, h.changed, h.closed
		h.mu.Unlock()
		switch {
		case listening:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-changed:
		case <-h.closing:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (h *Hub) setListening(on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.listening == on {
		return
	}
	h.listening = on
	close(h.changed)
	h.changed = make(chan struct{})
	if on {
		h.m.listening.Set(1)
		// Whatever was published while the hub was not listening is lost: tell every subscriber, now
		// that a catch-up read is followed by live events again.
		for _, subs := range h.tenants {
			for s := range subs {
				s.signalMissed()
			}
		}
	} else {
		h.m.listening.Set(0)
	}
}

// Run listens until ctx ends or Close is called, reconnecting with backoff whenever the connection
// fails, and closes the hub when it returns.
func (h *Hub) Run(ctx context.Context) {
	defer h.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-h.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := h.cfg.MinBackoff
	for {
		connected, err := h.listen(ctx)
		h.setListening(false)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = h.cfg.MinBackoff
		}
		// Full jitter around the backoff, so that replicas cut off together do not reconnect together.
		wait := backoff/2 + rand.N(backoff/2+1)
		h.m.reconnects.Inc()
		h.log.Warn("live stream: no LISTEN connection; events published meanwhile are lost to streams until it is back",
			"err", db.Redact(err), "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, h.cfg.MaxBackoff)
	}
}

// listen connects, LISTENs and dispatches notifications until the connection fails or ctx ends.
// connected says whether it got as far as listening.
func (h *Hub) listen(ctx context.Context) (connected bool, err error) {
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(connectCtx, h.connConfig)
	cancel()
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	// The channel's name is private to the database (events.PrivateChannel); LISTEN takes an identifier,
	// not a parameter.
	channel, err := events.PrivateChannel(ctx, dbsqlc.New(conn))
	if err != nil {
		return false, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen on %s: %w", events.Channel, err)
	}
	h.setListening(true)
	h.log.Debug("live stream: listening", "channel", events.Channel, "pid", conn.PgConn().PID())
	for {
		waitCtx, cancel := context.WithTimeout(ctx, h.cfg.PingInterval)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			h.dispatch(n.Payload)
		case ctx.Err() != nil:
			return true, nil
		case pgconn.Timeout(err):
			// Silence: make sure the server is still there. A timed-out wait leaves the connection usable.
			pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return true, fmt.Errorf("ping: %w", err)
			}
		default:
			return true, fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// dispatch parses one notification and hands it to the subscribers of its tenant that accept it. It
// never blocks: a subscriber whose buffer is full misses the event and is told so.
func (h *Hub) dispatch(payload string) {
	var ev events.Event
	if err := json.Unmarshal([]byte(payload), &ev); err != nil || ev.Tenant == uuid.Nil || ev.Type == "" {
		h.m.malformed.Inc()
		h.log.Warn("live stream: ignoring a malformed event", "err", err, "bytes", len(payload))
		return
	}
	h.m.received.WithLabelValues(ev.Type).Inc()
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.tenants[ev.Tenant] {
		if s.accept != nil && !s.accept(ev) {
			continue
		}
		select {
		case s.events <- ev:
		default:
			h.m.dropped.Inc()
			s.signalMissed()
		}
	}
}

type metrics struct {
	subscribers prometheus.Gauge
	listening   prometheus.Gauge
	received    *prometheus.CounterVec
	dropped     prometheus.Counter
	malformed   prometheus.Counter
	refused     prometheus.Counter
	reconnects  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "infrawatch_stream_subscribers",
			Help: "Live streams open on this process."}),
		listening: prometheus.NewGauge(prometheus.GaugeOpts{Name: "infrawatch_stream_listening",
			Help: "1 while the stream hub holds its LISTEN connection, 0 while it reconnects."}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_stream_events_total",
			Help: "Events the stream hub heard, by type."}, []string{"type"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_stream_dropped_total",
			Help: "Events not handed to a subscriber because its buffer was full (it is told to catch up)."}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_stream_malformed_total",
			Help: "Notifications on the events channel that were not a valid event."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_stream_refused_total",
			Help: "Streams refused because their tenant had too many open on this process."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_stream_reconnects_total",
			Help: "Times the stream hub lost or failed to open its LISTEN connection."}),
	}
	if reg != nil {
		reg.MustRegister(m.subscribers, m.listening, m.received, m.dropped, m.malformed, m.refused, m.reconnects)
	}
	return m
}
