package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/events"
	"github.com/infrawatch/infrawatch/internal/query"
	"github.com/infrawatch/infrawatch/internal/stream"
)

// StreamConfig tunes GET /api/v1/stream. The number of streams per tenant is the hub's (stream.Config).
type StreamConfig struct {
	// MaxIDs caps the check and series ids one stream subscribes to, together. Zero means 1,000.
	MaxIDs int
	// Heartbeat is the interval of the ": ping" comment that keeps proxies from closing a quiet stream
	// and lets the server notice a client that went away. Zero means 15 s.
	Heartbeat time.Duration
	// Retry is the reconnection delay the stream suggests to clients (its retry: field). Zero means 3 s.
	Retry time.Duration
	// SamplesInterval spaces the samples messages of one stream: at most one per interval, carrying
	// every subscribed series that got samples meanwhile. Zero means 1 s.
	SamplesInterval time.Duration
	// SamplesLookback bounds how far back the newest sample of a series is looked for. Zero means 1 hour.
	SamplesLookback time.Duration
	// ReplayMax and ReplayWindow bound the status changes replayed to a client that resumes: the newest
	// ReplayMax of them, none older than ReplayWindow. Zero means 1,000 and 24 hours.
	ReplayMax    int
	ReplayWindow time.Duration
	// WriteTimeout ends a stream whose client takes no event for that long. Zero means 30 s.
	WriteTimeout time.Duration
	// Recheck is how often a stream authenticates its credential again, so that a revoked API key or
	// OAuth client, a removed or disabled user and a suspended tenant end it. Zero means 5 s.
	Recheck time.Duration
	// RecheckTicks, when not nil, replaces every stream's Recheck ticker: each value received makes one
	// stream re-check, so that tests re-check exactly when they mean to.
	RecheckTicks <-chan time.Time
	// Now is the clock a stream compares its credential's expiry with. Nil means time.Now.
	Now func() time.Time
}

// withDefaults fills the zero fields from DefaultConfig's.
func (c StreamConfig) withDefaults() StreamConfig {
	d := DefaultConfig().Stream
	def := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.MaxIDs <= 0 {
		c.MaxIDs = d.MaxIDs
	}
	if c.ReplayMax <= 0 {
		c.ReplayMax = d.ReplayMax
	}
	def(&c.Heartbeat, d.Heartbeat)
	def(&c.Retry, d.Retry)
	def(&c.SamplesInterval, d.SamplesInterval)
	def(&c.SamplesLookback, d.SamplesLookback)
	def(&c.ReplayWindow, d.ReplayWindow)
	def(&c.WriteTimeout, d.WriteTimeout)
	def(&c.Recheck, d.Recheck)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// streamRequest is what one stream subscribes to. It is read by the hub's goroutine (accept) and never
// changes after parsing.
type streamRequest struct {
	allChecks   bool // no check and no series named: every check of the tenant
	checks      map[int64]bool
	checkIDs    []int64
	series      map[int64]bool
	seriesIDs   []int64
	resume      bool // the client sent a Last-Event-ID
	lastEventID int64
	alerts      bool // alert.firing, alert.resolved and alert.acked: by default when no id is named, or ?alerts=
}

// parseStreamRequest reads ?check=, ?series= (each repeatable) and the Last-Event-ID header or
// ?last_event_id=, or answers 400.
func parseStreamRequest(c *gin.Context, maxIDs int) (streamRequest, bool) {
	var errs fieldErrors
	ids := func(field string) (set map[int64]bool, list []int64) {
		set = map[int64]bool{}
		for _, v := range c.QueryArray(field) {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				errs.add(field, "must be a positive integer id, not %q", v)
				return nil, nil
			}
			if !set[id] {
				set[id] = true
				list = append(list, id)
			}
		}
		slices.Sort(list)
		return set, list
	}
	r := streamRequest{}
	r.checks, r.checkIDs = ids("check")
	r.series, r.seriesIDs = ids("series")
	r.allChecks = len(c.QueryArray("check")) == 0 && len(c.QueryArray("series")) == 0
	r.alerts = r.allChecks
	if v := c.Query("alerts"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs.add("alerts", "must be true or false")
		}
		r.alerts = b
	}
	if n := len(r.checkIDs) + len(r.seriesIDs); n > maxIDs {
		field := "series"
		if len(r.checkIDs) > maxIDs {
			field = "check"
		}
		errs.add(field, "a stream subscribes to at most %d check and series ids together, not %d; open several streams", maxIDs, n)
	}
	last, field := c.GetHeader("Last-Event-ID"), "Last-Event-ID"
	if last == "" {
		last, field = c.Query("last_event_id"), "last_event_id"
	}
	if last != "" {
		id, err := strconv.ParseInt(last, 10, 64)
		if err != nil || id < 0 {
			errs.add(field, "must be the id of a check.status event this stream sent, not %q", last)
		}
		r.resume, r.lastEventID = true, id
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return r, false
	}
	return r, true
}

func (r *streamRequest) wantsChecks() bool { return r.allChecks || len(r.checkIDs) > 0 }

// accepts picks the tenant's events the stream subscribes to. The hub routes by tenant already; the
// tenant is checked again, so that a routing mistake can never cross tenants.
func (r *streamRequest) accepts(tenant uuid.UUID) func(events.Event) bool {
	return func(ev events.Event) bool {
		if ev.Tenant != tenant {
			return false
		}
		switch ev.Type {
		case events.CheckStatus, events.CheckResult:
			return r.allChecks || r.checks[ev.CheckID]
		case events.AlertFiring, events.AlertResolved, events.AlertAcked:
			return r.alerts
		case events.Samples:
			if len(r.series) == 0 {
				return false // most streams: checks only
			}
			for _, id := range ev.SeriesIDs {
				if r.series[id] {
					return true
				}
			}
		}
		return false
	}
}

// validate answers 404 naming the first id that is not the tenant's.
func (r *streamRequest) validate(ctx context.Context, q *dbsqlc.Queries) error {
	if len(r.checkIDs) > 0 {
		known, err := q.CheckListKnownIDs(ctx, r.checkIDs)
		if err != nil {
			return err
		}
		if id, ok := firstMissing(r.checkIDs, known); ok {
			return &problemError{status: http.StatusNotFound, title: "not found", detail: "no check " + strconv.FormatInt(id, 10)}
		}
	}
	if len(r.seriesIDs) > 0 {
		rows, err := q.SeriesMatch(ctx, dbsqlc.SeriesMatchParams{Ids: r.seriesIDs, MaxRows: int32(len(r.seriesIDs))})
		if err != nil {
			return err
		}
		known := make([]int64, len(rows))
		for i, row := range rows {
			known[i] = row.ID
		}
		if id, ok := firstMissing(r.seriesIDs, known); ok {
			return &problemError{status: http.StatusNotFound, title: "not found", detail: "no series " + strconv.FormatInt(id, 10)}
		}
	}
	return nil
}

func firstMissing(want, have []int64) (int64, bool) {
	for _, id := range want {
		if !slices.Contains(have, id) {
			return id, true
		}
	}
	return 0, false
}

// maxStreams is how many live streams a tenant with caps may have open in this process: its own
// max_streams, or the hub's cap; 0 when this process has no hub.
func (s *server) maxStreams(caps auth.TenantCaps) int {
	switch {
	case s.hub == nil:
		return 0
	case caps.MaxStreams > 0:
		return caps.MaxStreams
	}
	return s.hub.MaxPerTenant()
}

// liveStream is GET /api/v1/stream: Server-Sent Events of the tenant's checks and series. It subscribes
// to the hub before reading what a resuming client missed, so that nothing falls between the replay
// and the live events, and drops live status changes the replay already sent.
func (s *server) liveStream(c *gin.Context) {
	if s.hub == nil {
		c.Header("Retry-After", "5")
		writeProblem(c, http.StatusServiceUnavailable, "live stream unavailable",
			"this server process does not run the api role, which serves the live stream")
		return
	}
	req, ok := parseStreamRequest(c, s.streamCfg.MaxIDs)
	if !ok {
		return
	}
	p := principal(c)
	tenant := p.TenantID
	// What the stream authenticates again while it lasts: the credential authenticateStream admitted,
	// or, for a stream opened with a ticket (spent now), the ticket's user.
	reauth := func(ctx context.Context) (auth.Principal, error) { return s.auth.AuthenticateAgain(ctx, p) }
	if credential, ok := bearer(c); ok && !openedWithTicket(c) {
		reauth = func(ctx context.Context) (auth.Principal, error) { return s.auth.Authenticate(ctx, credential) }
	}
	sub, err := s.hub.SubscribeUpTo(tenant, p.Caps.MaxStreams, req.accepts(tenant))
	switch {
	case errors.Is(err, stream.ErrTooManyStreams):
		c.Header("Retry-After", "30")
		writeProblem(c, http.StatusTooManyRequests, "too many streams",
			"this tenant has as many live streams open on this server as it may ("+strconv.Itoa(s.maxStreams(p.Caps))+
				"); close one, or subscribe to more ids per stream")
		return
	case err != nil:
		c.Header("Retry-After", "1")
		writeProblem(c, http.StatusServiceUnavailable, "shutting down", "the server is shutting down; reconnect")
		return
	}
	defer sub.Close()

	st := &sseStream{s: s, c: c, cfg: s.streamCfg, tenant: tenant, reauth: reauth, expiresAt: p.ExpiresAt,
		req: &req, lastID: req.lastEventID,
		sent: newRecentIDs(max(4096, 2*s.streamCfg.ReplayMax)), dirty: map[int64]struct{}{}}
	var missed []dbsqlc.CheckEventListAfterRow
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		if err := req.validate(c.Request.Context(), q); err != nil {
			return err
		}
		if !req.resume {
			// Count from the newest status change, so that a catch-up after missed events replays only
			// what happened since the stream began.
			var err error
			st.lastID, err = q.CheckEventLastID(c.Request.Context())
			return err
		}
		var err error
		missed, err = st.readMissed(c.Request.Context(), q)
		return err
	}) {
		return
	}
	st.floor = st.lastID

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	c.Status(http.StatusOK)
	st.buf = append(st.buf, "retry: "...)
	st.buf = strconv.AppendInt(st.buf, st.cfg.Retry.Milliseconds(), 10)
	st.buf = append(st.buf, "\n\n"...)
	st.appendStatusRows(missed)
	st.markAllSeries() // the first samples message carries the current values
	if st.flush() != nil {
		return
	}
	st.run(sub)
}

// sseStream is one client's stream.
type sseStream struct {
	s      *server
	c      *gin.Context
	cfg    StreamConfig
	tenant uuid.UUID
	req    *streamRequest
	// reauth authenticates what the client opened the stream with again, every Recheck; expiresAt is
	// when that credential expires (zero: never).
	reauth    func(context.Context) (auth.Principal, error)
	expiresAt time.Time

	floor  int64      // where the stream started: Last-Event-ID, or the newest change when it began
	lastID int64      // the newest check.status id sent, or floor
	sent   *recentIDs // check.status ids sent, so that none goes twice
	buf    []byte     // written but not yet flushed

	dirty       map[int64]struct{} // subscribed series with samples not yet sent
	samplesDue  <-chan time.Time
	lastSamples time.Time
}

// run sends live events until the client goes away, the server shuts down, a write fails, or the
// credential expires or no longer authenticates (then a closed event says why).
func (st *sseStream) run(sub *stream.Subscription) {
	ctx := st.c.Request.Context()
	heartbeat := time.NewTicker(st.cfg.Heartbeat)
	defer heartbeat.Stop()
	recheck := st.cfg.RecheckTicks
	if recheck == nil {
		ticker := time.NewTicker(st.cfg.Recheck)
		defer ticker.Stop()
		recheck = ticker.C
	}
	var expiry <-chan time.Time
	if !st.expiresAt.IsZero() {
		timer := time.NewTimer(st.expiresAt.Sub(st.cfg.Now()))
		defer timer.Stop()
		expiry = timer.C
	}
	st.armSamples()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Done():
			return // the hub closed: the server is shutting down
		case <-expiry:
			st.close(closeExpired)
			return
		case <-recheck:
			if why := st.recheck(ctx); why != nil {
				st.close(*why)
				return
			}
		case <-heartbeat.C:
			st.buf = append(st.buf, ": ping\n\n"...)
		case ev := <-sub.Events():
			st.appendEvent(ev)
		case <-sub.Missed():
			// Events were lost on the way (this client lagged, or the hub reconnected): say so, replay
			// the status changes from the database and refresh every series.
			st.appendResync("missed")
			var rows []dbsqlc.CheckEventListAfterRow
			err := st.inTenant(ctx, func(ctx context.Context, q *dbsqlc.Queries) error {
				var err error
				rows, err = st.readMissed(ctx, q)
				return err
			})
			if err != nil {
				// The client resumes from its Last-Event-ID when it reconnects.
				st.logEnd("replay after missed events", err)
				return
			}
			st.appendStatusRows(rows)
			st.markAllSeries()
		case <-st.samplesDue:
			st.samplesDue = nil
			st.appendSamples(ctx)
		}
		if err := st.flush(); err != nil {
			return
		}
		st.armSamples()
	}
}

// StreamClosed is the data of the closed event, the last of a stream that the server ends because its
// credential went: Reason is expired (reconnect with a fresh credential), revoked (the key or
// client was revoked, or the user removed or disabled), suspended (the tenant) or forbidden (the
// credential may no longer read the tenant).
type StreamClosed struct {
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

var (
	closeExpired = StreamClosed{Reason: "expired",
		Detail: "the credential of this stream expired; reconnect with a fresh one (refresh an access token)"}
	closeRevoked = StreamClosed{Reason: "revoked",
		Detail: "the credential of this stream no longer authenticates: it was revoked, or its user removed or disabled"}
	closeSuspended = StreamClosed{Reason: "suspended", Detail: "this tenant is suspended; contact the operator"}
	closeForbidden = StreamClosed{Reason: "forbidden", Detail: "the credential of this stream may no longer read this tenant"}
)

// recheck authenticates the stream's credential again and answers why the stream must end, or nil. A
// database that does not answer now ends nothing: the next re-check tries again.
func (st *sseStream) recheck(ctx context.Context) *StreamClosed {
	if !st.expiresAt.IsZero() && !st.cfg.Now().Before(st.expiresAt) {
		return &closeExpired
	}
	ctx, cancel := context.WithTimeout(ctx, streamQueryTimeout)
	defer cancel()
	p, err := st.reauth(ctx)
	switch {
	case errors.Is(err, auth.ErrSuspended):
		return &closeSuspended
	case errors.Is(err, auth.ErrUnauthenticated):
		return &closeRevoked
	case err != nil:
		if st.c.Request.Context().Err() == nil {
			st.s.log.Warn("live stream: re-check the credential", "request_id", st.c.GetString(requestIDKey), "err", db.Redact(err))
		}
		return nil
	case p.TenantID != st.tenant || !p.Can(auth.PermRead):
		return &closeForbidden
	}
	return nil
}

// close sends the closed event that says why the server ends the stream.
func (st *sseStream) close(why StreamClosed) {
	st.appendMessage(0, "closed", why)
	_ = st.flush()
}

// streamQueryTimeout bounds each read of a stream once it has started.
const streamQueryTimeout = 10 * time.Second

func (st *sseStream) inTenant(ctx context.Context, fn func(ctx context.Context, q *dbsqlc.Queries) error) error {
	ctx, cancel := context.WithTimeout(ctx, streamQueryTimeout)
	defer cancel()
	return st.s.tenants.WithTenant(ctx, st.tenant, func(q *dbsqlc.Queries) error { return fn(ctx, q) })
}

func (st *sseStream) logEnd(what string, err error) {
	if st.c.Request.Context().Err() == nil {
		st.s.log.Warn("live stream ended", "request_id", st.c.GetString(requestIDKey), "during", what, "err", db.Redact(err))
	}
}

// flush writes what is buffered, within the write timeout, and flushes it to the client.
func (st *sseStream) flush() error {
	if len(st.buf) == 0 {
		return nil
	}
	rc := http.NewResponseController(st.c.Writer)
	_ = rc.SetWriteDeadline(time.Now().Add(st.cfg.WriteTimeout)) // unsupported only by test recorders
	_, err := st.c.Writer.Write(st.buf)
	if err == nil {
		err = rc.Flush()
	}
	st.buf = st.buf[:0]
	if err != nil {
		st.logEnd("write", err)
	}
	return err
}

// readMissed reads the subscribed checks' status changes after lastID.
func (st *sseStream) readMissed(ctx context.Context, q *dbsqlc.Queries) ([]dbsqlc.CheckEventListAfterRow, error) {
	if !st.req.wantsChecks() {
		return nil, nil
	}
	return q.CheckEventListAfter(ctx, dbsqlc.CheckEventListAfterParams{AfterID: st.lastID,
		Since: time.Now().Add(-st.cfg.ReplayWindow), AllChecks: st.req.allChecks, CheckIds: st.req.checkIDs,
		MaxRows: int32(st.cfg.ReplayMax)})
}

// StreamStatus is the data of a check.status event; its id is also the event's id.
type StreamStatus struct {
	ID      int64  `json:"id"`
	CheckID int64  `json:"check_id"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Time    int64  `json:"time"` // milliseconds since the epoch
}

// StreamResult is the data of a check.result event. LatencyMS is null when the probe got no answer.
type StreamResult struct {
	CheckID   int64    `json:"check_id"`
	Status    string   `json:"status"`
	Reason    string   `json:"reason"`
	LatencyMS *float64 `json:"latency_ms"`
	Time      int64    `json:"time"`
}

// StreamAlert is the data of an alert.firing, alert.resolved or alert.acked event: fetch
// /api/v1/alerts/{alert_id} for the rest.
type StreamAlert struct {
	AlertID  int64  `json:"alert_id"`
	RuleID   int64  `json:"rule_id"`
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Time     int64  `json:"time"` // milliseconds since the epoch
}

// StreamSample is one series' newest sample in a samples event.
type StreamSample struct {
	ID    int64       `json:"id"`
	Time  int64       `json:"time"`
	Value query.Value `json:"value"`
}

func (st *sseStream) appendStatusRows(rows []dbsqlc.CheckEventListAfterRow) {
	if len(rows) >= st.cfg.ReplayMax {
		st.appendResync("truncated") // older changes than these were left out
	}
	for _, r := range rows {
		st.appendStatus(StreamStatus{ID: r.ID, CheckID: r.CheckID, Status: r.Status, Reason: r.Reason, Time: r.Time.UnixMilli()})
	}
}

// appendStatus sends a status change unless the client has it: it is at or below where the stream
// started (a notification still on its way when the stream subscribed), or it went already (replayed,
// then heard live). Ids above the start are compared one by one rather than with the newest sent, since
// transactions may commit in another order than they took their ids.
func (st *sseStream) appendStatus(ev StreamStatus) {
	if ev.ID > 0 {
		if ev.ID <= st.floor || st.sent.has(ev.ID) {
			return
		}
		st.sent.add(ev.ID)
		st.lastID = max(st.lastID, ev.ID)
	}
	st.appendMessage(ev.ID, events.CheckStatus, ev)
}

func (st *sseStream) appendEvent(ev events.Event) {
	switch ev.Type {
	case events.CheckStatus:
		st.appendStatus(StreamStatus{ID: ev.ID, CheckID: ev.CheckID, Status: ev.Status, Reason: ev.Reason, Time: ev.Time.UnixMilli()})
	case events.CheckResult:
		st.appendMessage(0, events.CheckResult, StreamResult{CheckID: ev.CheckID, Status: ev.Status, Reason: ev.Reason,
			LatencyMS: ev.LatencyMS, Time: ev.Time.UnixMilli()})
	case events.Samples:
		for _, id := range ev.SeriesIDs {
			if st.req.series[id] {
				st.dirty[id] = struct{}{}
			}
		}
	case events.AlertFiring, events.AlertResolved, events.AlertAcked:
		st.appendMessage(0, ev.Type, StreamAlert{AlertID: ev.AlertID, RuleID: ev.RuleID, Severity: ev.Severity,
			Summary: ev.Summary, Time: ev.Time.UnixMilli()})
	}
}

func (st *sseStream) appendResync(reason string) {
	st.appendMessage(0, "resync", map[string]string{"reason": reason})
}

func (st *sseStream) markAllSeries() {
	for _, id := range st.req.seriesIDs {
		st.dirty[id] = struct{}{}
	}
}

// armSamples schedules the next samples message when series are waiting: at once, or SamplesInterval
// after the previous one.
func (st *sseStream) armSamples() {
	if st.samplesDue != nil || len(st.dirty) == 0 {
		return
	}
	st.samplesDue = time.After(max(0, time.Until(st.lastSamples.Add(st.cfg.SamplesInterval))))
}

// appendSamples reads the newest sample of each waiting series and sends them in one message. A failed
// read is logged and skipped: the next samples event brings the series up to date.
func (st *sseStream) appendSamples(ctx context.Context) {
	ids := make([]int64, 0, len(st.dirty))
	for id := range st.dirty {
		ids = append(ids, id)
	}
	clear(st.dirty)
	slices.Sort(ids)
	st.lastSamples = time.Now()
	ctx, cancel := context.WithTimeout(ctx, streamQueryTimeout)
	defer cancel()
	rows, err := st.s.query.NewestSamples(ctx, st.tenant, ids, time.Now().Add(-st.cfg.SamplesLookback))
	if err != nil {
		if ctx.Err() == nil {
			st.s.log.Warn("live stream: read latest samples", "request_id", st.c.GetString(requestIDKey), "err", db.Redact(err))
		}
		return
	}
	if len(rows) == 0 {
		return
	}
	out := make([]StreamSample, len(rows))
	for i, r := range rows {
		out[i] = StreamSample{ID: r.SeriesID, Time: r.Time.UnixMilli(), Value: query.Value(r.Value)}
	}
	st.appendMessage(0, events.Samples, map[string]any{"series": out})
}

// appendMessage buffers one event: its id (when not 0), its name and its data as one line of JSON.
func (st *sseStream) appendMessage(id int64, name string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		st.s.log.Error("live stream: encode event", "event", name, "err", err)
		return
	}
	if id > 0 {
		st.buf = append(st.buf, "id: "...)
		st.buf = strconv.AppendInt(st.buf, id, 10)
		st.buf = append(st.buf, '\n')
	}
	st.buf = append(st.buf, "event: "...)
	st.buf = append(st.buf, name...)
	st.buf = append(st.buf, "\ndata: "...)
	st.buf = append(st.buf, raw...) // JSON from encoding/json holds no raw newline
	st.buf = append(st.buf, "\n\n"...)
}

// recentIDs remembers the last n ids added.
type recentIDs struct {
	set  map[int64]struct{}
	ring []int64
	next int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{set: make(map[int64]struct{}, n), ring: make([]int64, 0, n)}
}

func (r *recentIDs) has(id int64) bool { _, ok := r.set[id]; return ok }

func (r *recentIDs) add(id int64) {
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, id)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % len(r.ring)
	}
	r.set[id] = struct{}{}
}
