package checks

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"
)

// The SNMP probe asks an agent over UDP for a few objects (settings.oids), walks subtrees
// (settings.walk) and, unless told not to, the IF-MIB interface tables, from which it derives
// per-interface traffic, error and discard rates. Rates need the counters of the previous run, which
// the prober keeps in memory per check (snmpCounters); after a restart of the poller the first run of
// each check gives no rates.
//
// A run costs few round trips: one GET for the system objects and the requested OIDs together, then
// one walk for all requested subtrees and one for all interface columns, each walk asking for every
// unfinished column in the same GETBULK (GETNEXT on SNMPv1).

// snmpKind asks an SNMP agent for objects and interface counters. Target: host:port, usually port 161.
type snmpKind struct{}

// SNMPSettings are an SNMP check's settings. Unknown settings are refused.
type SNMPSettings struct {
	Version       string   `json:"version"`   // 1, 2c or 3
	Community     string   `json:"community"` // v1, v2c
	Username      string   `json:"username"`  // v3
	SecurityLevel string   `json:"security_level"`
	AuthProtocol  string   `json:"auth_protocol"`
	AuthPassword  string   `json:"auth_password"`
	PrivProtocol  string   `json:"priv_protocol"`
	PrivPassword  string   `json:"priv_password"`
	OIDs          []string `json:"oids"`       // GET these
	Walk          []string `json:"walk"`       // BULKWALK these subtrees
	Interfaces    *bool    `json:"interfaces"` // walk IF-MIB and derive per-interface rates (default true)
}

// Bounds of an SNMP check's settings.
const (
	maxSNMPOIDs          = 128
	maxSNMPWalks         = 32
	maxOIDBytes          = 256
	maxSNMPSecretBytes   = 256 // community and v3 passwords
	maxSNMPUsernameBytes = 32  // RFC 3414's bound on a USM user name
)

var oidRE = regexp.MustCompile(`^\.?[0-9]+(\.[0-9]+)*$`)

func (snmpKind) Name() string { return "snmp" }

func (snmpKind) Validate(target string, settings json.RawMessage) []Problem {
	var ps problems
	if !isHostPort(target) {
		ps.add("target", "must be host:port, usually port 161")
	}
	var st SNMPSettings
	if decodeSettings(&ps, "snmp", settings, &st) {
		ps.snmpSettings(st)
	}
	return ps
}

func (ps *problems) snmpSettings(st SNMPSettings) {
	ps.atMost("settings.community", st.Community, maxSNMPSecretBytes)
	ps.atMost("settings.username", st.Username, maxSNMPUsernameBytes)
	ps.atMost("settings.auth_password", st.AuthPassword, maxSNMPSecretBytes)
	ps.atMost("settings.priv_password", st.PrivPassword, maxSNMPSecretBytes)
	if len(st.OIDs) > maxSNMPOIDs {
		ps.add("settings.oids", "must list at most %d OIDs, not %d", maxSNMPOIDs, len(st.OIDs))
	}
	if len(st.Walk) > maxSNMPWalks {
		ps.add("settings.walk", "must list at most %d subtrees, not %d", maxSNMPWalks, len(st.Walk))
	}
	switch st.Version {
	case "1", "2c":
		if st.Community == "" {
			ps.add("settings.community", "is required for SNMP v%s", st.Version)
		}
	case "3":
		if st.Username == "" {
			ps.add("settings.username", "is required for SNMP v3")
		}
		level := st.SecurityLevel
		if level == "" {
			level = "authPriv"
		}
		if !slices.Contains([]string{"noAuthNoPriv", "authNoPriv", "authPriv"}, level) {
			ps.add("settings.security_level", "must be noAuthNoPriv, authNoPriv or authPriv")
		}
		if level != "noAuthNoPriv" {
			if !slices.Contains([]string{"MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"}, st.AuthProtocol) {
				ps.add("settings.auth_protocol", "must be MD5, SHA, SHA224, SHA256, SHA384 or SHA512")
			}
			if len(st.AuthPassword) < 8 {
				ps.add("settings.auth_password", "must be at least 8 characters")
			}
		}
		if level == "authPriv" {
			if !slices.Contains([]string{"DES", "AES", "AES192", "AES256"}, st.PrivProtocol) {
				ps.add("settings.priv_protocol", "must be DES, AES, AES192 or AES256")
			}
			if len(st.PrivPassword) < 8 {
				ps.add("settings.priv_password", "must be at least 8 characters")
			}
		}
	default:
		ps.add("settings.version", "must be 1, 2c or 3")
	}
	for _, list := range []struct {
		field string
		oids  []string
	}{{"settings.oids", st.OIDs}, {"settings.walk", st.Walk}} {
		for _, o := range list.oids {
			if len(o) > maxOIDBytes || !oidRE.MatchString(o) {
				ps.add(list.field, "%.64q is not a numeric OID of at most %d characters", o, maxOIDBytes)
				break
			}
		}
	}
}

func (snmpKind) Endpoints(target string, _ json.RawMessage) []Endpoint {
	return []Endpoint{{Field: "target", Host: hostOf(target)}}
}

func (snmpKind) TargetHost(target string) string { return hostOf(target) }

// Secrets: the community and the v3 passwords.
func (snmpKind) Secrets() Secrets {
	return Secrets{Settings: []string{"community", "auth_password", "priv_password"}}
}

// Destination is the agent and the version: the same community sent as v1 or v2c, or the same user's
// keys under another version's rules, is not the exchange the secret's owner agreed to.
func (snmpKind) Destination(target string, settings json.RawMessage) string {
	var st struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal(settings, &st)
	return fmt.Sprintf("%q version %q", target, st.Version)
}

// Scalars read by the first request of every run: sysUpTime detects a reboot between two runs;
// sysName and sysDescr are shown with the result; ifNumber, asked only when interfaces are walked,
// sizes the GETBULKs of the interface walk.
const (
	oidSysDescr  = ".1.3.6.1.2.1.1.1.0"
	oidSysUpTime = ".1.3.6.1.2.1.1.3.0"
	oidSysName   = ".1.3.6.1.2.1.1.5.0"
	oidIfNumber  = ".1.3.6.1.2.1.2.1.0"
)

// Columns of IF-MIB's ifTable and ifXTable that the interface walk reads, in the order of ifColumnOIDs.
const (
	colIfDescr = iota
	colIfName
	colIfOperStatus
	colIfSpeed
	colIfHighSpeed
	colIfInOctets
	colIfOutOctets
	colIfHCInOctets
	colIfHCOutOctets
	colIfInErrors
	colIfOutErrors
	colIfInDiscards
	colIfOutDiscards
	ifColumnCount
)

var ifColumnOIDs = [ifColumnCount]string{
	colIfDescr:       ".1.3.6.1.2.1.2.2.1.2",
	colIfName:        ".1.3.6.1.2.1.31.1.1.1.1",
	colIfOperStatus:  ".1.3.6.1.2.1.2.2.1.8",
	colIfSpeed:       ".1.3.6.1.2.1.2.2.1.5",
	colIfHighSpeed:   ".1.3.6.1.2.1.31.1.1.1.15",
	colIfInOctets:    ".1.3.6.1.2.1.2.2.1.10",
	colIfOutOctets:   ".1.3.6.1.2.1.2.2.1.16",
	colIfHCInOctets:  ".1.3.6.1.2.1.31.1.1.1.6",
	colIfHCOutOctets: ".1.3.6.1.2.1.31.1.1.1.10",
	colIfInErrors:    ".1.3.6.1.2.1.2.2.1.14",
	colIfOutErrors:   ".1.3.6.1.2.1.2.2.1.20",
	colIfInDiscards:  ".1.3.6.1.2.1.2.2.1.13",
	colIfOutDiscards: ".1.3.6.1.2.1.2.2.1.19",
}

const (
	// snmpMaxRepetitions is the most GETBULK max-repetitions: rows of each column per response. With
	// the thirteen interface columns a response carries up to 325 objects (some 8 KB); an agent that
	// cannot send that much returns fewer rows or tooBig, and the walk adapts. The interface walk asks
	// for ifNumber+1 rows when that is fewer, so that a small table comes whole, with its end, in one
	// answer instead of 25 rows of mostly other objects.
	snmpMaxRepetitions = 25
	// snmpGetBatch is the most OIDs asked in one GET.
	snmpGetBatch = 32
	// snmpMaxWalkObjects bounds what the walks of settings.walk return in one run.
	snmpMaxWalkObjects = 10000
	// snmpMaxInterfaces bounds the interface table read in one run.
	snmpMaxInterfaces = 10000
	// snmpCounterTTL is how long the counters of a check that stopped running are kept.
	snmpCounterTTL = 2 * time.Hour
	// snmpMaxTrackedChecks caps how many checks' counters are kept; beyond it the stalest go first.
	snmpMaxTrackedChecks = 100000
)

// Probe runs one SNMP check. It is up when the agent answered the first request (the GET of the
// system objects and settings.oids) with something other than an error status; a later walk that
// fails is reported in Detail (walk_error, interfaces_error) and leaves it up.
//
// Metrics: snmp.value{oid} for each numeric object of settings.oids and settings.walk (the OID without
// its leading dot; text values go to Detail "values"), snmp.uptime_seconds, and per interface
// {interface, ifindex}: snmp.if_oper_status, snmp.if_speed_bps and, from the second run on,
// snmp.if_in_bps, snmp.if_out_bps, snmp.if_{in,out}_errors_per_s, snmp.if_{in,out}_discards_per_s.
//
// Outcome.Latency is the round trip of the first request sent — for SNMPv3 that is the engine
// discovery exchange, the first thing a v3 manager must do.
func (snmpKind) Probe(ctx context.Context, p *Prober, c Check) Outcome {
	var st SNMPSettings
	if len(c.Settings) > 0 {
		if err := json.Unmarshal(c.Settings, &st); err != nil {
			return down("settings: %v", err)
		}
	}
	if ps := (snmpKind{}).Validate(c.Target, c.Settings); len(ps) > 0 {
		return down("%s %s", ps[0].Field, ps[0].Message)
	}
	host, portStr, err := net.SplitHostPort(c.Target)
	if err != nil {
		return down("target %q is not host:port: %v", c.Target, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return down("target %q: bad port", c.Target)
	}
	// Resolve once through the guard and talk to that address: the name cannot be rebound to a
	// forbidden one between the check and the connection.
	addrs, err := p.guard.Resolve(ctx, host)
	if err != nil {
		return down("%v", err)
	}
	addr := addrs[0]
	agent := net.JoinHostPort(addr.String(), portStr)

	budget := 5 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		budget = time.Until(deadline)
	}
	if budget <= 0 {
		return down("no time left to ask %s", agent)
	}
	wait := budget // named in "no answer within …": the check's timeout, which the reader set
	if c.Timeout > 0 {
		wait = c.Timeout
	}
	x, err := snmpClient(ctx, st, addr.String(), uint16(port), budget)
	if err != nil {
		return down("SNMP settings: %v", err)
	}
	// The guard's Control refuses, again, any address it does not allow, at the connect itself.
	x.Control = p.guard.Dialer(budget).Control
	var sent time.Time
	var latency time.Duration
	answered, requests := false, 0
	x.PreSend = func(*gosnmp.GoSNMP) { sent = time.Now() }
	x.OnSent = func(*gosnmp.GoSNMP) { requests++ }
	x.OnRecv = func(*gosnmp.GoSNMP) {
		if !answered {
			answered, latency = true, time.Since(sent)
		}
	}
	if err := x.Connect(); err != nil {
		return down("open a UDP socket to %s: %v", agent, err)
	}
	defer x.Close()

	// First request: the system objects and the requested OIDs in one GET.
	interfaces := st.Interfaces == nil || *st.Interfaces
	oids := []string{oidSysUpTime, oidSysName, oidSysDescr}
	if interfaces {
		oids = append(oids, oidIfNumber)
	}
	wanted := map[string]bool{} // settings.oids, written as gosnmp answers them
	for _, o := range st.OIDs {
		o = snmpOID(o)
		wanted[o] = true
		if !slices.Contains(oids, o) {
			oids = append(oids, o)
		}
	}
	vars, missing, err := snmpGet(x, oids)
	if err != nil && len(vars) == 0 {
		if x.Version == gosnmp.Version3 && strings.Contains(err.Error(), "not authentic") && snmpUnknownUser(x) {
			return down("unknown SNMPv3 user %q", st.Username)
		}
		return down("%s", snmpReason(err, answered, st.Version, agent, wait))
	}

	out := Outcome{Up: true, Latency: latency, Detail: map[string]any{"address": agent}}
	if err != nil {
		out.Detail["get_error"] = snmpReason(err, answered, st.Version, agent, wait)
	}
	sample := &snmpSample{target: agent}
	ifNumber := -1
	values := map[string]string{}
	for _, v := range vars {
		switch v.Name {
		case oidSysUpTime:
			if t, ok := v.Value.(uint32); ok {
				sample.uptime, sample.hasUptime = t, true
				out.Metrics = append(out.Metrics, Metric{Name: "snmp.uptime_seconds", Value: float64(t) / 100})
			}
		case oidSysName:
			out.Detail["sys_name"] = snmpString(v, 255)
		case oidSysDescr:
			out.Detail["sys_descr"] = snmpString(v, 255)
		case oidIfNumber:
			if n, ok := v.Value.(int); ok && n >= 0 {
				ifNumber = n
			}
		}
		if !wanted[v.Name] {
			continue // a system object nobody asked for by OID
		}
		if n, ok := snmpNumber(v); ok {
			out.Metrics = append(out.Metrics, Metric{Name: "snmp.value", Labels: map[string]string{"oid": snmpLabel(v.Name)}, Value: n})
		} else {
			values[snmpLabel(v.Name)] = snmpString(v, 1024)
		}
	}
	if len(values) > 0 {
		out.Detail["values"] = values
	}
	var asked []string
	for _, m := range missing {
		if wanted[m] {
			asked = append(asked, snmpLabel(m))
		}
	}
	if len(asked) > 0 {
		out.Detail["missing"] = asked
	}

	if len(st.Walk) > 0 {
		out.Metrics = append(out.Metrics, snmpWalkMetrics(x, st.Walk, out.Detail, answered, st.Version, agent, wait)...)
	}

	if interfaces {
		cols := ifColumnOIDs[:]
		if x.Version == gosnmp.Version1 {
			// SNMPv1 cannot carry Counter64: an agent skips the HC columns, so do not ask for them.
			cols = slices.DeleteFunc(slices.Clone(cols), func(o string) bool {
				return o == ifColumnOIDs[colIfHCInOctets] || o == ifColumnOIDs[colIfHCOutOctets]
			})
		}
		reps := snmpMaxRepetitions
		if ifNumber >= 0 {
			// A floor, in case ifNumber is wrong: one row per request would be slow.
			reps = min(reps, max(ifNumber+1, 4))
		}
		sample.at = time.Now()
		res, truncated, err := snmpWalk(x, cols, reps, snmpMaxInterfaces*len(cols))
		switch {
		case err != nil:
			out.Detail["interfaces_error"] = snmpReason(err, answered, st.Version, agent, wait)
		case truncated:
			out.Detail["interfaces_error"] = fmt.Sprintf("more than %d interfaces; interface metrics skipped", snmpMaxInterfaces)
		default:
			byCol := make([][]gosnmp.SnmpPDU, ifColumnCount)
			for i, o := range cols {
				byCol[slices.Index(ifColumnOIDs[:], o)] = res[i]
			}
			rows := ifRowsOf(byCol)
			sample.ifaces = ifCountersOf(rows)
			prev := p.snmp.swap(c.ID, sample)
			rebooted := snmpRebooted(prev, sample)
			out.Metrics = append(out.Metrics, ifMetrics(rows, sample, prev, rebooted)...)
			out.Detail["interfaces"] = len(rows)
			out.Detail["rebooted"] = rebooted
		}
	}
	out.Detail["requests"] = requests
	return out
}

// snmpClient builds the gosnmp session for settings st. Each request waits half the time left, so one
// retry fits; gosnmp also ends every request at ctx's deadline.
func snmpClient(ctx context.Context, st SNMPSettings, ip string, port uint16, budget time.Duration) (*gosnmp.GoSNMP, error) {
	x := &gosnmp.GoSNMP{
		Target:         ip,
		Port:           port,
		Transport:      "udp",
		Context:        ctx,
		Timeout:        budget / 2,
		Retries:        1,
		MaxOids:        snmpGetBatch,
		MaxRepetitions: snmpMaxRepetitions,
	}
	switch st.Version {
	case "1":
		x.Version, x.Community = gosnmp.Version1, st.Community
	case "2c":
		x.Version, x.Community = gosnmp.Version2c, st.Community
	case "3":
		x.Version = gosnmp.Version3
		x.SecurityModel = gosnmp.UserSecurityModel
		usm := &gosnmp.UsmSecurityParameters{
			UserName:               st.Username,
			AuthenticationProtocol: gosnmp.NoAuth,
			PrivacyProtocol:        gosnmp.NoPriv,
		}
		level := cmp.Or(st.SecurityLevel, "authPriv")
		switch level {
		case "noAuthNoPriv":
			x.MsgFlags = gosnmp.NoAuthNoPriv
		case "authNoPriv":
			x.MsgFlags = gosnmp.AuthNoPriv
		case "authPriv":
			x.MsgFlags = gosnmp.AuthPriv
		default:
			return nil, fmt.Errorf("unknown security level %q", st.SecurityLevel)
		}
		if level != "noAuthNoPriv" {
			auth, ok := map[string]gosnmp.SnmpV3AuthProtocol{
				"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224,
				"SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512,
			}[st.AuthProtocol]
			if !ok {
				return nil, fmt.Errorf("unknown auth protocol %q", st.AuthProtocol)
			}
			usm.AuthenticationProtocol, usm.AuthenticationPassphrase = auth, st.AuthPassword
		}
		if level == "authPriv" {
			priv, ok := map[string]gosnmp.SnmpV3PrivProtocol{
				"DES": gosnmp.DES, "AES": gosnmp.AES, "AES192": gosnmp.AES192, "AES256": gosnmp.AES256,
			}[st.PrivProtocol]
			if !ok {
				return nil, fmt.Errorf("unknown privacy protocol %q", st.PrivProtocol)
			}
			usm.PrivacyProtocol, usm.PrivacyPassphrase = priv, st.PrivPassword
		}
		x.SecurityParameters = usm
	default:
		return nil, fmt.Errorf("unknown version %q", st.Version)
	}
	return x, nil
}

// snmpUnknownUser tells an unknown SNMPv3 user from a wrong password, which look alike to gosnmp: the
// agent's report (usmStatsUnknownUserNames or usmStatsWrongDigests) is not authenticated, so gosnmp
// discards it as "not authentic" before reading it. Asked again without authentication, the agent's
// report about an unknown user comes through.
func snmpUnknownUser(x *gosnmp.GoSNMP) bool {
	usm, ok := x.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	if !ok {
		return false
	}
	y := &gosnmp.GoSNMP{
		Target:             x.Target,
		Port:               x.Port,
		Transport:          "udp",
		Context:            x.Context,
		Timeout:            x.Timeout,
		Version:            gosnmp.Version3,
		SecurityModel:      gosnmp.UserSecurityModel,
		MsgFlags:           gosnmp.NoAuthNoPriv,
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: usm.UserName},
		Control:            x.Control,
	}
	if y.Connect() != nil {
		return false
	}
	defer y.Close()
	_, err := y.Get([]string{oidSysUpTime})
	return errors.Is(err, gosnmp.ErrUnknownUsername)
}

// snmpStatusError is an error-status the agent answered with.
type snmpStatusError gosnmp.SNMPError

func (e snmpStatusError) Error() string { return "agent answered " + gosnmp.SNMPError(e).String() }

// snmpReason says why an exchange with the agent failed, for a person reading the alert. answered says
// whether anything came back from the agent during the run; wait is the time the probe had.
func snmpReason(err error, answered bool, version, agent string, wait time.Duration) string {
	var netErr net.Error
	var status snmpStatusError
	timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, gosnmp.ErrMaxRetriesExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout())
	within := wait.Round(100 * time.Millisecond)
	switch {
	case errors.Is(err, gosnmp.ErrUnknownUsername):
		return "unknown SNMPv3 user"
	case errors.Is(err, gosnmp.ErrWrongDigest), errors.Is(err, gosnmp.ErrDecryption),
		// A wrong password makes the agent's report fail our own digest check.
		strings.Contains(err.Error(), "not authentic"):
		return "SNMPv3 authentication failed (wrong password or protocol)"
	case errors.Is(err, gosnmp.ErrUnknownSecurityLevel):
		return "SNMPv3 security level not accepted for this user"
	case errors.Is(err, gosnmp.ErrNotInTimeWindow):
		return "SNMPv3 time window error: the agent's clock (engine time) did not match"
	case errors.As(err, &status) && (gosnmp.SNMPError(status) == gosnmp.AuthorizationError || gosnmp.SNMPError(status) == gosnmp.NoAccess):
		return fmt.Sprintf("%s refused access (%v): these credentials may not read these objects at this security level", agent, gosnmp.SNMPError(status))
	case errors.As(err, &status):
		return fmt.Sprintf("%s answered with error %v", agent, gosnmp.SNMPError(status))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%s refused the request: no SNMP agent listens on that port", agent)
	case errors.Is(err, context.Canceled):
		return "probe cancelled"
	case timedOut && !answered && version == "3":
		return fmt.Sprintf("no answer from %s within %s (host down or no SNMPv3 agent)", agent, within)
	case timedOut && !answered:
		return fmt.Sprintf("no answer from %s within %s (wrong community or host down)", agent, within)
	case timedOut && version == "3":
		// The engine discovery was answered, the real request was not: an agent drops a message it
		// cannot decrypt without a word.
		return fmt.Sprintf("%s answered SNMPv3 discovery but not the request within %s (wrong privacy password or protocol?)", agent, within)
	case timedOut:
		return fmt.Sprintf("%s stopped answering within %s", agent, within)
	}
	return fmt.Sprintf("SNMP request to %s failed: %v", agent, err)
}

// snmpGet fetches oids in GETs of at most snmpGetBatch and returns the objects the agent had and the
// OIDs it lacked. SNMPv1 fails a whole request for one unknown object (noSuchName), so that one is
// set aside and the rest asked again.
func snmpGet(x *gosnmp.GoSNMP, oids []string) (vars []gosnmp.SnmpPDU, missing []string, err error) {
	oids = slices.Clone(oids)
	batch := snmpGetBatch
	for len(oids) > 0 {
		n := min(batch, len(oids))
		resp, err := x.Get(oids[:n])
		if err != nil {
			return vars, missing, fmt.Errorf("get: %w", err)
		}
		switch resp.Error {
		case gosnmp.NoError:
		case gosnmp.NoSuchName:
			i := int(resp.ErrorIndex) - 1
			if i < 0 || i >= n {
				return vars, missing, fmt.Errorf("get: agent answered noSuchName for object %d of %d", i+1, n)
			}
			missing = append(missing, oids[i])
			oids = slices.Delete(oids, i, i+1)
			continue
		case gosnmp.TooBig:
			if n == 1 {
				return vars, missing, errors.New("get: agent answered tooBig for a single object")
			}
			batch = n / 2
			continue
		default:
			return vars, missing, fmt.Errorf("get: %w", snmpStatusError(resp.Error))
		}
		for _, v := range resp.Variables {
			switch v.Type {
			case gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView, gosnmp.Null:
				missing = append(missing, v.Name)
			default:
				vars = append(vars, v)
			}
		}
		oids = oids[n:]
	}
	return vars, missing, nil
}

// snmpWalk walks the subtrees under roots side by side: each request asks for the next objects of
// every subtree not yet finished — GETBULK with snmpMaxRepetitions, or GETNEXT on SNMPv1 — so the
// columns of a table come back in as few round trips as the agent allows. It returns each root's
// objects in order. maxReps is the GETBULK max-repetitions. It stops after limit objects in all and
// says so with truncated.
func snmpWalk(x *gosnmp.GoSNMP, roots []string, maxReps, limit int) (out [][]gosnmp.SnmpPDU, truncated bool, err error) {
	out = make([][]gosnmp.SnmpPDU, len(roots))
	next := make([]string, len(roots))
	active := make([]int, len(roots))
	for i, r := range roots {
		next[i], active[i] = snmpOID(r), i
	}
	reps := uint32(max(maxReps, 1))
	total := 0
	for len(active) > 0 {
		oids := make([]string, len(active))
		for i, c := range active {
			oids[i] = next[c]
		}
		var resp *gosnmp.SnmpPacket
		if x.Version == gosnmp.Version1 {
			resp, err = x.GetNext(oids)
		} else {
			resp, err = x.GetBulk(oids, 0, reps)
		}
		if err != nil {
			return out, false, fmt.Errorf("walk: %w", err)
		}
		switch resp.Error {
		case gosnmp.NoError:
		case gosnmp.NoSuchName:
			// SNMPv1's end of the MIB, or past the objects this community may see: that subtree ends.
			i := int(resp.ErrorIndex) - 1
			if i < 0 || i >= len(active) {
				return out, false, fmt.Errorf("walk: agent answered noSuchName for object %d of %d", i+1, len(active))
			}
			active = slices.Delete(active, i, i+1)
			continue
		case gosnmp.TooBig:
			if reps > 1 && x.Version != gosnmp.Version1 {
				reps /= 2
				continue
			}
			return out, false, errors.New("walk: agent answered tooBig")
		default:
			return out, false, fmt.Errorf("walk: %w", snmpStatusError(resp.Error))
		}
		if len(resp.Variables) == 0 {
			return out, false, errors.New("walk: empty answer")
		}
		// GETBULK answers row by row: the i-th object belongs to the (i mod n)-th subtree asked. An
		// agent may cut the answer short, even mid-row; what is missing is asked for next time.
		finished := make([]bool, len(active))
		for i, v := range resp.Variables {
			a := i % len(active)
			if finished[a] {
				continue
			}
			c := active[a]
			if v.Type == gosnmp.EndOfMibView || v.Type == gosnmp.NoSuchObject || v.Type == gosnmp.NoSuchInstance ||
				!strings.HasPrefix(v.Name, snmpOID(roots[c])+".") || oidCompare(v.Name, next[c]) <= 0 {
				finished[a] = true
				continue
			}
			out[c] = append(out[c], v)
			next[c] = v.Name
			if total++; total >= limit {
				return out, true, nil
			}
		}
		var still []int
		for a, c := range active {
			if !finished[a] {
				still = append(still, c)
			}
		}
		active = still
	}
	return out, false, nil
}

// snmpWalkMetrics walks the subtrees of settings.walk and returns an snmp.value for every numeric
// object found; problems go into detail.
func snmpWalkMetrics(x *gosnmp.GoSNMP, walk []string, detail map[string]any, answered bool, version, agent string, wait time.Duration) []Metric {
	roots := make([]string, 0, len(walk))
	for _, w := range walk {
		if w = snmpOID(w); !slices.Contains(roots, w) {
			roots = append(roots, w)
		}
	}
	res, truncated, err := snmpWalk(x, roots, snmpMaxRepetitions, snmpMaxWalkObjects)
	if err != nil {
		detail["walk_error"] = snmpReason(err, answered, version, agent, wait)
	}
	if truncated {
		detail["walk_truncated"] = fmt.Sprintf("stopped after %d objects", snmpMaxWalkObjects)
	}
	var ms []Metric
	seen := map[string]bool{} // overlapping subtrees give some objects twice
	objects := 0
	for _, col := range res {
		for _, v := range col {
			objects++
			if n, ok := snmpNumber(v); ok && !seen[v.Name] {
				seen[v.Name] = true
				ms = append(ms, Metric{Name: "snmp.value", Labels: map[string]string{"oid": snmpLabel(v.Name)}, Value: n})
			}
		}
	}
	detail["walk_objects"] = objects
	return ms
}

// snmpNumber returns a numeric object's value; ok is false for strings, OIDs, addresses and the like.
func snmpNumber(v gosnmp.SnmpPDU) (float64, bool) {
	switch n := v.Value.(type) {
	case int:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case int64:
		return float64(n), true
	case float32:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// snmpString renders a non-numeric object for Detail, cut to limit bytes: text as is, other bytes in hex.
func snmpString(v gosnmp.SnmpPDU, limit int) string {
	var s string
	switch val := v.Value.(type) {
	case []byte:
		if utf8.Valid(val) {
			s = string(val)
		} else {
			s = "0x" + hex.EncodeToString(val)
		}
	case string:
		s = val
	default:
		s = fmt.Sprint(val)
	}
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "") + "…"
	}
	return s
}

// snmpOID writes an OID the way gosnmp answers it, with a leading dot.
func snmpOID(s string) string { return "." + strings.TrimPrefix(s, ".") }

// snmpLabel writes an OID for the oid label: dotted numbers without the leading dot.
func snmpLabel(s string) string { return strings.TrimPrefix(s, ".") }

// oidCompare orders two numeric OIDs as SNMP does, arc by arc; an OID sorts before those it prefixes.
func oidCompare(a, b string) int {
	a, b = strings.TrimPrefix(a, "."), strings.TrimPrefix(b, ".")
	for a != "" && b != "" {
		var x, y string
		x, a, _ = strings.Cut(a, ".")
		y, b, _ = strings.Cut(b, ".")
		// Arcs have no leading zeros, so the longer number is the larger.
		if c := cmp.Compare(len(x), len(y)); c != 0 {
			return c
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}
