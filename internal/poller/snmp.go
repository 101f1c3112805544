package poller

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// probeSNMP runs one SNMP check. It is up when the agent answered the first request (the GET of the
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
func (p *Prober) probeSNMP(ctx context.Context, c Check) Outcome {
	var st SNMPSettings
	if len(c.Settings) > 0 {
		if err := json.Unmarshal(c.Settings, &st); err != nil {
			return down("settings: %v", err)
		}
	}
	if ps := Validate("snmp", c.Target, c.Settings); len(ps) > 0 {
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

// ifRow is one interface's cells, indexed by the col* constants; a cell the agent lacked is zero.
type ifRow struct {
	index int
	cells [ifColumnCount]gosnmp.SnmpPDU
}

// ifRowsOf turns walked columns (indexed by the col* constants) into rows ordered by ifIndex.
func ifRowsOf(cols [][]gosnmp.SnmpPDU) []*ifRow {
	byIndex := map[int]*ifRow{}
	for c, vars := range cols {
		for _, v := range vars {
			idx, err := strconv.Atoi(strings.TrimPrefix(v.Name, ifColumnOIDs[c]+"."))
			if err != nil || idx <= 0 {
				continue
			}
			r := byIndex[idx]
			if r == nil {
				r = &ifRow{index: idx}
				byIndex[idx] = r
			}
			r.cells[c] = v
		}
	}
	rows := slices.Collect(maps.Values(byIndex))
	slices.SortFunc(rows, func(a, b *ifRow) int { return cmp.Compare(a.index, b.index) })
	return rows
}

// name is ifName, else ifDescr, else the index.
func (r *ifRow) name() string {
	for _, c := range []int{colIfName, colIfDescr} {
		if b, ok := r.cells[c].Value.([]byte); ok && len(b) > 0 {
			return snmpString(r.cells[c], 255)
		}
	}
	return "ifIndex " + strconv.Itoa(r.index)
}

// speed is the interface's speed in bits per second: ifHighSpeed (in Mbit/s) when set, else ifSpeed.
func (r *ifRow) speed() (float64, bool) {
	high, hasHigh := r.cells[colIfHighSpeed].Value.(uint)
	if hasHigh && high > 0 {
		return float64(high) * 1e6, true
	}
	if s, ok := r.cells[colIfSpeed].Value.(uint); ok && s < math.MaxUint32 {
		return float64(s), true
	}
	return 0, hasHigh
}

// counterOf reads a Counter32 or Counter64 cell; the zero counter when there is none.
func counterOf(v gosnmp.SnmpPDU) snmpCounter {
	switch n := v.Value.(type) {
	case uint:
		if v.Type == gosnmp.Counter32 {
			return snmpCounter{value: uint64(n), bits: 32}
		}
	case uint64:
		if v.Type == gosnmp.Counter64 {
			return snmpCounter{value: n, bits: 64}
		}
	}
	return snmpCounter{}
}

// ifCountersOf takes from each row the counters kept for the next run: 64-bit octet counters when the
// agent has them, the 32-bit ones otherwise.
func ifCountersOf(rows []*ifRow) map[int]ifCounters {
	m := make(map[int]ifCounters, len(rows))
	for _, r := range rows {
		ic := ifCounters{
			name:        r.name(),
			in:          counterOf(r.cells[colIfHCInOctets]),
			out:         counterOf(r.cells[colIfHCOutOctets]),
			inErrors:    counterOf(r.cells[colIfInErrors]),
			outErrors:   counterOf(r.cells[colIfOutErrors]),
			inDiscards:  counterOf(r.cells[colIfInDiscards]),
			outDiscards: counterOf(r.cells[colIfOutDiscards]),
		}
		if ic.in.bits == 0 {
			ic.in = counterOf(r.cells[colIfInOctets])
		}
		if ic.out.bits == 0 {
			ic.out = counterOf(r.cells[colIfOutOctets])
		}
		m[r.index] = ic
	}
	return m
}

// ifMetrics returns the per-interface metrics of this run, with rates against prev when it allows.
func ifMetrics(rows []*ifRow, cur, prev *snmpSample, rebooted bool) []Metric {
	var ms []Metric
	var elapsed time.Duration
	if prev != nil {
		elapsed = cur.at.Sub(prev.at)
	}
	for _, r := range rows {
		labels := map[string]string{"interface": r.name(), "ifindex": strconv.Itoa(r.index)}
		add := func(name string, v float64) {
			ms = append(ms, Metric{Name: name, Labels: maps.Clone(labels), Value: v})
		}
		if s, ok := r.cells[colIfOperStatus].Value.(int); ok {
			add("snmp.if_oper_status", float64(s))
		}
		speed, hasSpeed := r.speed()
		if hasSpeed {
			add("snmp.if_speed_bps", speed)
		}
		if prev == nil {
			continue
		}
		now := cur.ifaces[r.index]
		was, ok := prev.ifaces[r.index]
		if !ok || was.name != now.name {
			continue // a new interface, or another one under a reused index
		}
		// A 32-bit octet counter that went backwards wrapped only if the implied rate fits the link.
		maxOctets := 0.0
		if hasSpeed && speed > 0 {
			maxOctets = speed / 8 * 1.1
		}
		for _, k := range []struct {
			name      string
			prev, cur snmpCounter
			scale     float64
			max       float64
		}{
			{"snmp.if_in_bps", was.in, now.in, 8, maxOctets},
			{"snmp.if_out_bps", was.out, now.out, 8, maxOctets},
			{"snmp.if_in_errors_per_s", was.inErrors, now.inErrors, 1, 0},
			{"snmp.if_out_errors_per_s", was.outErrors, now.outErrors, 1, 0},
			{"snmp.if_in_discards_per_s", was.inDiscards, now.inDiscards, 1, 0},
			{"snmp.if_out_discards_per_s", was.outDiscards, now.outDiscards, 1, 0},
		} {
			if rate, ok := counterRate(k.prev, k.cur, elapsed, rebooted, k.max); ok {
				add(k.name, rate*k.scale)
			}
		}
	}
	return ms
}

// snmpCounter is one counter as read: its value and width (32 or 64 bits; 0 when the agent had none).
type snmpCounter struct {
	value uint64
	bits  uint8
}

// counterRate returns how fast a counter grew per second between two readings taken elapsed apart.
// ok is false when no honest rate exists: no earlier reading (first sample), the agent rebooted in
// between, no time passed, the counter changed width, or it went backwards in a way a wrap does not
// explain. A 64-bit counter never wraps in practice, so going backwards is a reset; a 32-bit one
// wrapped if the distance modulo 2^32 is under half the range and, when maxPerSecond is set (the
// link's speed), no faster than it — otherwise it was reset (a cleared counter, a replaced card).
func counterRate(prev, cur snmpCounter, elapsed time.Duration, rebooted bool, maxPerSecond float64) (rate float64, ok bool) {
	if prev.bits == 0 || cur.bits == 0 || prev.bits != cur.bits || rebooted || elapsed <= 0 {
		return 0, false
	}
	secs := elapsed.Seconds()
	delta := cur.value - prev.value
	if cur.value < prev.value {
		if cur.bits != 32 {
			return 0, false
		}
		delta &= math.MaxUint32
		if delta > 1<<31 || (maxPerSecond > 0 && float64(delta)/secs > maxPerSecond) {
			return 0, false
		}
	}
	return float64(delta) / secs, true
}

// snmpRebooted says whether the agent restarted between two samples: its sysUpTime went backwards.
// (sysUpTime also wraps after 497 days, which costs one round of rates.)
func snmpRebooted(prev, cur *snmpSample) bool {
	return prev != nil && prev.hasUptime && cur.hasUptime && cur.uptime < prev.uptime
}

// snmpSample is what one run of a check read for rates: the agent, its sysUpTime (hundredths of a
// second), when the interface walk began, and each interface's counters by ifIndex.
type snmpSample struct {
	target    string
	at        time.Time
	uptime    uint32
	hasUptime bool
	ifaces    map[int]ifCounters
}

// ifCounters are one interface's counters kept between runs; name tells a reused ifIndex apart.
type ifCounters struct {
	name                                         string
	in, out                                      snmpCounter
	inErrors, outErrors, inDiscards, outDiscards snmpCounter
}

// snmpCounters keeps the last sample of every SNMP check that reads interfaces, so that the next run
// can turn counters into rates. It forgets checks not run for snmpCounterTTL and never holds more
// than snmpMaxTrackedChecks. It is safe for concurrent use; a nil *snmpCounters keeps nothing.
type snmpCounters struct {
	mu     sync.Mutex
	checks map[int64]*snmpSample
	swept  time.Time
}

func newSNMPCounters() *snmpCounters {
	return &snmpCounters{checks: map[int64]*snmpSample{}}
}

// swap stores cur as check id's last sample and returns the one it replaces — nil when there is none,
// or when it was taken from another agent (the check's target changed).
func (s *snmpCounters) swap(id int64, cur *snmpSample) *snmpSample {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.checks[id]
	s.checks[id] = cur
	if cur.at.Sub(s.swept) > snmpCounterTTL/10 {
		s.swept = cur.at
		maps.DeleteFunc(s.checks, func(_ int64, v *snmpSample) bool { return cur.at.Sub(v.at) > snmpCounterTTL })
	}
	for len(s.checks) > snmpMaxTrackedChecks {
		// Rare: only with more live checks than the cap. Drop the stalest.
		var oldest int64
		var at time.Time
		for k, v := range s.checks {
			if k != id && (at.IsZero() || v.at.Before(at)) {
				oldest, at = k, v.at
			}
		}
		delete(s.checks, oldest)
	}
	if prev != nil && prev.target != cur.target {
		return nil
	}
	return prev
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
