package traps

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/secrets"
	"github.com/infrawatch/infrawatch/internal/service"
)

// Source is the source of every log line a trap becomes.
const Source = "snmptrap"

// Clock is the receiver's time: real but in tests, which step it.
type Clock interface {
	Now() time.Time
	// After fires once d has passed: the wait between two reads of the credentials.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Receiver is the trap receiver of the traps role: gosnmp's TrapListener on Config.Listen, a copy of the
// tenants' enabled credentials read again every Config.Refresh, and a writer that stores the traps it
// attributes as log lines through the ingest service. It keeps nothing else, so replicas share nothing.
// It is a service.Service.
type Receiver struct {
	cfg    Config
	sys    *db.System
	ingest *ingest.Service
	keys   *secrets.Keyring
	log    *slog.Logger
	m      *metrics
	// clock is the real clock but in tests.
	clock Clock
	// testSignals are nil but in tests.
	testSignals testSignals

	params   *gosnmp.GoSNMP
	listener *gosnmp.TrapListener
	snap     atomic.Pointer[snapshot]
	usmKey   string // what the gosnmp table was last built from, so an unchanged set of users costs nothing
	refresh  service.Loop

	qmu        sync.Mutex
	queue      chan trapLine
	closed     bool
	writerDone chan struct{}
}

var _ service.Service = (*Receiver)(nil)

// NewReceiver returns a receiver that stores traps through samples' writer of logs (the ingest
// service, whose writer must run while the receiver does) and opens USM passwords with keys.
func NewReceiver(cfg Config, sys *db.System, samples *ingest.Service, keys *secrets.Keyring, log *slog.Logger,
	reg prometheus.Registerer) *Receiver {
	r := &Receiver{cfg: cfg.withDefaults(), sys: sys, ingest: samples, keys: keys, log: log, m: newMetrics(reg), clock: realClock{}}
	r.params = &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel,
		Logger: gosnmp.NewLogger(&listenerLog{r: r})}
	r.params.SetTrapSecurityParametersTable(gosnmp.NewSnmpV3SecurityParametersTable(gosnmp.NewLogger(nil)))
	r.snap.Store(&snapshot{})
	r.refresh.Run = r.refreshLoop
	return r
}

// snapshot is the enabled credentials of every tenant, as last read.
type snapshot struct {
	communities map[[32]byte]uuid.UUID
	users       map[string][]usmUser // by user name
}

// usmUser is a tenant's USM user as the receiver matches traps against it.
type usmUser struct {
	tenant    uuid.UUID
	engineID  string // raw bytes; empty: any engine
	authProto gosnmp.SnmpV3AuthProtocol
	authPass  string
	privProto gosnmp.SnmpV3PrivProtocol
	privPass  string
}

var (
	authProtocolOf = map[string]gosnmp.SnmpV3AuthProtocol{"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224,
		"SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512}
	privProtocolOf = map[string]gosnmp.SnmpV3PrivProtocol{"DES": gosnmp.DES, "AES": gosnmp.AES, "AES192": gosnmp.AES192,
		"AES256": gosnmp.AES256, "AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C}
)

// Start reads the credentials, listens and starts the writer and the refresh loop. It fails when the
// address cannot be listened on; credentials that cannot be read yet are read again at the next refresh.
func (r *Receiver) Start(ctx context.Context) error {
	addr, err := ListenAddress(r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("--snmp-trap-listen: %w", err)
	}
	if err := r.Reload(ctx); err != nil {
		r.log.Warn("read the trap credentials; the receiver drops every trap until it can", "err", err)
	}
	r.queue = make(chan trapLine, r.cfg.QueueSize)
	r.writerDone = make(chan struct{})
	l := gosnmp.NewTrapListener()
	l.Params = r.params
	l.OnNewTrap = r.handle
	listenErr := make(chan error, 1)
	go func() { listenErr <- l.Listen(addr) }()
	select {
	case <-l.Listening():
	case err := <-listenErr:
		return fmt.Errorf("listen for SNMP traps on udp %s: %w", addr, err)
	}
	r.listener = l
	go r.write()
	r.log.Info("receiving SNMP traps", "addr", addr)
	return r.refresh.Start(ctx)
}

// Stop stops listening, then writes what is queued and returns.
func (r *Receiver) Stop() {
	r.refresh.Stop()
	if r.listener == nil {
		return
	}
	r.listener.Close()
	r.qmu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.qmu.Unlock()
	<-r.writerDone
}

func (r *Receiver) refreshLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.clock.After(r.cfg.Refresh):
		}
		if err := r.Reload(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("read the trap credentials again; the last ones read stay in use", "err", err)
		}
	}
}

// Reload reads the enabled credentials of every tenant and puts them in use.
func (r *Receiver) Reload(ctx context.Context) error {
	rows, err := r.sys.Queries().TrapCredentialsEnabled(ctx)
	if err != nil {
		return fmt.Errorf("read trap credentials: %w", err)
	}
	snap := &snapshot{communities: map[[32]byte]uuid.UUID{}, users: map[string][]usmUser{}}
	var key strings.Builder
	type added struct {
		name string
		sp   *gosnmp.UsmSecurityParameters
	}
	var table []added
	for _, c := range rows {
		switch c.Kind {
		case KindCommunity:
			var d [32]byte
			copy(d[:], c.CommunityDigest)
			snap.communities[d] = c.TenantID
		case KindUSM:
			u, sp, err := r.usm(c)
			if err != nil {
				r.log.Error("a trap credential cannot be used", "id", c.ID, "tenant", c.TenantID, "err", err)
				continue
			}
			snap.users[*c.Username] = append(snap.users[*c.Username], u)
			table = append(table, added{*c.Username, sp})
			fmt.Fprintf(&key, "%d:%x:%s:%x;", c.ID, c.EngineID, *c.Username, c.Secrets)
			if c.SecurityLevel != nil {
				key.WriteString(*c.SecurityLevel)
			}
		}
	}
	if key.String() != r.usmKey {
		t := gosnmp.NewSnmpV3SecurityParametersTable(gosnmp.NewLogger(nil))
		for _, a := range table {
			if err := t.Add(a.name, a.sp); err != nil {
				r.log.Error("a trap credential cannot be used", "user", a.name, "err", err)
			}
		}
		r.params.SetTrapSecurityParametersTable(t)
		r.usmKey = key.String()
	}
	r.snap.Store(snap)
	r.m.credentials.Set(float64(len(rows)))
	r.testSignals.reloaded.signal(len(rows))
	return nil
}

// usm turns a stored USM user into what the matcher and gosnmp's table use.
func (r *Receiver) usm(c dbsqlc.TrapCredentialsEnabledRow) (usmUser, *gosnmp.UsmSecurityParameters, error) {
	u := usmUser{tenant: c.TenantID, engineID: string(c.EngineID), authProto: gosnmp.NoAuth, privProto: gosnmp.NoPriv}
	if c.AuthProtocol != nil {
		s, err := openSecrets(r.keys, dbsqlc.AppTrapCredential{ID: c.ID, TenantID: c.TenantID, Secrets: c.Secrets})
		if err != nil {
			return u, nil, err
		}
		u.authProto, u.authPass = authProtocolOf[*c.AuthProtocol], s.AuthPassword
		if c.PrivProtocol != nil {
			u.privProto, u.privPass = privProtocolOf[*c.PrivProtocol], s.PrivPassword
		}
	}
	sp := &gosnmp.UsmSecurityParameters{UserName: *c.Username, AuthoritativeEngineID: u.engineID,
		AuthenticationProtocol: u.authProto, AuthenticationPassphrase: u.authPass,
		PrivacyProtocol: u.privProto, PrivacyPassphrase: u.privPass}
	return u, sp, nil
}

// handle is called by the listener for every trap it decoded (and, for v3, authenticated with some
// tenant's user): it finds the tenant and queues the trap's log line, or drops it.
func (r *Receiver) handle(p *gosnmp.SnmpPacket, from *net.UDPAddr) {
	defer func() {
		if rec := recover(); rec != nil {
			r.log.Error("a trap made the receiver panic; it is dropped", "from", from, "panic", rec)
			r.drop("internal_error")
		}
	}()
	version := versionName(p.Version)
	r.m.received.WithLabelValues(version).Inc()
	if p.PDUType != gosnmp.Trap && p.PDUType != gosnmp.SNMPv2Trap && p.PDUType != gosnmp.InformRequest {
		r.drop("not_a_trap")
		return
	}
	tenant, user, reason := r.tenantOf(r.snap.Load(), p)
	if reason != "" {
		r.drop(reason)
		return
	}
	line := r.line(p, from, version, user)
	line.tenant = tenant
	r.qmu.Lock()
	defer r.qmu.Unlock()
	if r.closed {
		r.drop("stopping")
		return
	}
	select {
	case r.queue <- line:
		r.testSignals.handled.signal("queued")
	default:
		r.drop("queue_full")
	}
}

func (r *Receiver) drop(reason string) {
	r.m.dropped.WithLabelValues(reason).Inc()
	r.testSignals.handled.signal(reason)
}

func versionName(v gosnmp.SnmpVersion) string {
	switch v {
	case gosnmp.Version1:
		return "1"
	case gosnmp.Version2c:
		return "2c"
	}
	return "3"
}

// tenantOf is the tenant whose credential a trap carries, or why it has none: a community is looked up by
// its digest; a v3 trap, which gosnmp authenticated with the first registered user of its name whose
// passwords fit, belongs to the user of that name and engine (or of any engine) whose passwords are those
// — so a trap only ever lands in a tenant whose credentials its sender knows.
func (r *Receiver) tenantOf(snap *snapshot, p *gosnmp.SnmpPacket) (tenant uuid.UUID, user, reason string) {
	if p.Version != gosnmp.Version3 {
		t, ok := snap.communities[[32]byte(CommunityDigest(p.Community))]
		if !ok {
			return tenant, "", "unknown_community"
		}
		return t, "", ""
	}
	usm, ok := p.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	if !ok || usm == nil {
		return tenant, "", "unknown_user"
	}
	var anyEngine *usmUser
	for i, u := range snap.users[usm.UserName] {
		if u.authProto != usm.AuthenticationProtocol || u.authPass != usm.AuthenticationPassphrase ||
			u.privProto != usm.PrivacyProtocol || u.privPass != usm.PrivacyPassphrase {
			continue
		}
		if u.engineID == usm.AuthoritativeEngineID {
			return u.tenant, usm.UserName, ""
		}
		if u.engineID == "" && anyEngine == nil {
			anyEngine = &snap.users[usm.UserName][i]
		}
	}
	if anyEngine != nil {
		return anyEngine.tenant, usm.UserName, ""
	}
	return tenant, "", "unknown_user"
}

// trapLine is a trap on its way to ts.logs.
type trapLine struct {
	tenant uuid.UUID
	host   string
	entry  ingest.LogEntry
}

// Bounds of a trap's log line: its attributes stay within ingest.LogAttributeLimits.
const (
	maxVarbindAttributes = 48
	maxAttributeText     = 1024
	maxMessageVarbinds   = 2048
)

// line turns a trap into its log line: the host, the severity of its notification, a message that says
// what and from where, and its varbinds as attributes named from the built-in table.
func (r *Receiver) line(p *gosnmp.SnmpPacket, from *net.UDPAddr, version, user string) trapLine {
	attrs := map[string]any{"snmp_version": version}
	source := ""
	if from != nil {
		source = from.IP.String()
		if a, ok := netip.AddrFromSlice(from.IP); ok {
			source = a.Unmap().String()
		}
		attrs["source_address"] = source
	}
	host := source
	var trapOID string
	var uptime any
	if p.Version == gosnmp.Version1 {
		trapOID = v1TrapOID(p.Enterprise, p.GenericTrap, p.SpecificTrap)
		attrs["enterprise"] = strings.TrimPrefix(p.Enterprise, ".")
		attrs["generic_trap"] = float64(p.GenericTrap)
		attrs["specific_trap"] = float64(p.SpecificTrap)
		uptime = p.Timestamp
		if a, err := netip.ParseAddr(p.AgentAddress); err == nil && !a.IsUnspecified() {
			attrs["agent_address"] = a.String()
			host = a.String()
		}
	}
	if user != "" {
		attrs["user"] = user
	}
	if p.PDUType == gosnmp.InformRequest {
		attrs["inform"] = true
	}
	var parts []string
	dropped := 0
	for _, v := range p.Variables {
		oid := strings.TrimPrefix(v.Name, ".")
		switch oid {
		case oidSnmpTrapOID:
			if s, ok := v.Value.(string); ok {
				trapOID = strings.TrimPrefix(s, ".")
			}
			continue
		case oidSysUpTime:
			uptime = v.Value
			continue
		case oidSnmpTrapAddress:
			if s, ok := v.Value.(string); ok && p.Version != gosnmp.Version1 {
				if a, err := netip.ParseAddr(s); err == nil && !a.IsUnspecified() {
					host = a.String()
				}
			}
		}
		name, entry, _ := lookupOID(oid)
		value := varbindValue(v)
		text := fmt.Sprint(value)
		if n, ok := value.(float64); ok && entry.enum != nil {
			if e, ok := entry.enum[int(n)]; ok {
				text = fmt.Sprintf("%s(%d)", e, int(n))
			}
		}
		parts = append(parts, name+"="+text)
		if len(name) > ingest.LogAttributeLimits.KeyBytes || len(attrs) >= maxVarbindAttributes {
			dropped++
			continue
		}
		attrs[name] = value
	}
	if dropped > 0 {
		attrs["varbinds_dropped"] = float64(dropped)
	}
	if uptime != nil {
		attrs["uptime_ticks"] = varbindNumber(uptime)
	}
	trapName, entry, _ := lookupOID(trapOID)
	attrs["trap_oid"] = trapOID
	attrs["trap"] = trapName
	severity := entry.severity
	if severity == "" {
		severity = "warning"
	}
	message := trapName + " from " + host
	if len(parts) > 0 {
		message += ": " + strings.Join(parts, " ")
	}
	if len(message) > maxMessageVarbinds {
		message = strings.ToValidUTF8(message[:maxMessageVarbinds], "") + "…"
	}
	return trapLine{host: host, entry: ingest.LogEntry{Time: r.clock.Now().UnixMilli(), Source: Source, Severity: severity,
		Message: message, Attributes: attrs}}
}

// varbindValue is a varbind's value as a log attribute: numbers as numbers, octet strings as text when
// they are printable UTF-8 and in hexadecimal (0x…) when not, OIDs by name, at most maxAttributeText bytes.
func varbindValue(v gosnmp.SnmpPDU) any {
	switch v.Type {
	case gosnmp.OctetString, gosnmp.BitString, gosnmp.Opaque:
		b, _ := v.Value.([]byte)
		if utf8.Valid(b) && !slices.ContainsFunc([]rune(string(b)), func(c rune) bool { return !unicode.IsPrint(c) && !unicode.IsSpace(c) }) {
			return cut(string(b))
		}
		return cut("0x" + hex.EncodeToString(b))
	case gosnmp.ObjectIdentifier:
		s, _ := v.Value.(string)
		name, _, _ := lookupOID(s)
		return cut(name)
	case gosnmp.IPAddress:
		s, _ := v.Value.(string)
		return s
	case gosnmp.Null, gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView:
		return nil
	}
	if n := varbindNumber(v.Value); n != nil {
		return n
	}
	return cut(fmt.Sprint(v.Value))
}

// varbindNumber is an integer varbind as a JSON number (decimal text past 2^53), or nil.
func varbindNumber(v any) any {
	var n uint64
	var neg bool
	switch x := v.(type) {
	case int:
		neg, n = x < 0, uint64(max(x, -x))
	case int64:
		neg, n = x < 0, uint64(max(x, -x))
	case uint:
		n = uint64(x)
	case uint32:
		n = uint64(x)
	case uint64:
		n = x
	case float64:
		return x
	case float32:
		return float64(x)
	default:
		return nil
	}
	if n > 1<<53 {
		s := strconv.FormatUint(n, 10)
		if neg {
			s = "-" + s
		}
		return s
	}
	if neg {
		return -float64(n)
	}
	return float64(n)
}

func cut(s string) string {
	if len(s) > maxAttributeText {
		return strings.ToValidUTF8(s[:maxAttributeText], "") + "…"
	}
	return s
}

// write stores queued traps until the queue is closed, in batches of what is there.
func (r *Receiver) write() {
	defer close(r.writerDone)
	for first := range r.queue {
		batch := []trapLine{first}
	more:
		for len(batch) < r.cfg.BatchSize {
			select {
			case l, ok := <-r.queue:
				if !ok {
					break more
				}
				batch = append(batch, l)
			default:
				break more
			}
		}
		r.store(batch)
		r.testSignals.written.signal(len(batch))
	}
}

// store writes a batch: one write per tenant, its lines grouped by host.
func (r *Receiver) store(batch []trapLine) {
	byTenant := map[uuid.UUID][]ingest.LogPush{}
	var order []uuid.UUID
	for _, l := range batch {
		groups, seen := byTenant[l.tenant]
		if !seen {
			order = append(order, l.tenant)
		}
		i := slices.IndexFunc(groups, func(g ingest.LogPush) bool { return g.Host.Name == l.host })
		if i < 0 {
			groups = append(groups, ingest.LogPush{Host: &ingest.JSONHost{Name: l.host}})
			i = len(groups) - 1
		}
		groups[i].Entries = append(groups[i].Entries, l.entry)
		byTenant[l.tenant] = groups
	}
	for _, tenant := range order {
		groups := byTenant[tenant]
		n := 0
		for _, g := range groups {
			n += len(g.Entries)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := r.ingest.WriteLogGroups(ctx, tenant, Source, groups)
		cancel()
		if err != nil {
			r.m.dropped.WithLabelValues("write_failed").Add(float64(n))
			level := slog.LevelError
			if errors.Is(err, ingest.ErrUnavailable) {
				level = slog.LevelWarn
			}
			r.log.Log(context.Background(), level, "traps not stored", "tenant", tenant, "traps", n, "err", err)
			continue
		}
		r.m.stored.Add(float64(res.Accepted))
		if len(res.Rejected) > 0 {
			r.m.dropped.WithLabelValues("refused").Add(float64(len(res.Rejected)))
			r.log.Warn("traps refused", "tenant", tenant, "refused", len(res.Rejected), "first_reason", res.Rejected[0].Reason)
		}
	}
}

// listenerLog receives what gosnmp's listener and decoder log. A trap the listener cannot decode (a v3
// user no tenant registered, passwords that do not authenticate, bytes that are not SNMP) is only ever
// logged there, so that is where it is counted as dropped.
type listenerLog struct{ r *Receiver }

func (l *listenerLog) Print(v ...any) { l.classify(fmt.Sprint(v...)) }

func (l *listenerLog) Printf(format string, v ...any) { l.classify(fmt.Sprintf(format, v...)) }

func (l *listenerLog) classify(msg string) {
	if !strings.HasPrefix(msg, "TrapListener: ") {
		return // the decoder's own steps; the listener says how each datagram ended
	}
	reason := "malformed"
	switch {
	case strings.Contains(msg, "no security parameters found"):
		reason = "unknown_user"
	case strings.Contains(msg, "no credentials successfully unmarshaled"):
		reason = "auth_failed"
	case strings.Contains(msg, "error in read"):
		return // the socket, not a trap
	}
	l.r.log.Debug("SNMP trap dropped", "reason", reason, "detail", strings.TrimSpace(msg))
	l.r.drop(reason)
}

type metrics struct {
	received    *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	stored      prometheus.Counter
	credentials prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_traps_received_total",
			Help: "SNMP traps decoded, by SNMP version (v3: authenticated with some tenant's user)."}, []string{"version"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_traps_dropped_total",
			Help: "SNMP traps not stored, by reason: unknown_community, unknown_user, auth_failed, malformed, not_a_trap, " +
				"queue_full, refused, write_failed, stopping, internal_error."}, []string{"reason"}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_traps_stored_total",
			Help: "SNMP traps stored as log lines."}),
		credentials: prometheus.NewGauge(prometheus.GaugeOpts{Name: "infrawatch_trap_credentials",
			Help: "Enabled trap credentials (communities and USM users) of every tenant, as last read."}),
	}
	for _, reason := range []string{"unknown_community", "unknown_user", "auth_failed", "malformed"} {
		m.dropped.WithLabelValues(reason)
	}
	if reg != nil {
		reg.MustRegister(m.received, m.dropped, m.stored, m.credentials)
	}
	return m
}

// testSignals are the moments a test waits for instead of sleeping. Each is a channel in tests and nil
// in production, where signalling does nothing.
type testSignals struct {
	// handled: a datagram was dealt with — "queued", or the reason it was dropped.
	handled testSignal[string]
	// written: a batch of this many traps was written (or failed).
	written testSignal[int]
	// reloaded: the credentials were read; this many are enabled.
	reloaded testSignal[int]
}

func (s *testSignals) init() {
	s.handled = make(testSignal[string], 1000)
	s.written = make(testSignal[int], 1000)
	s.reloaded = make(testSignal[int], 1000)
}

type testSignal[T any] chan T

func (s testSignal[T]) signal(v T) {
	if s == nil {
		return
	}
	select {
	case s <- v:
	default:
		panic("traps: test signal channel full")
	}
}
