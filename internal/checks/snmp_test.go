package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// snmpAgent is a net-snmp snmpd started for one test, listening on 127.0.0.1 only.
type snmpAgent struct {
	addr string // 127.0.0.1:port
	log  *lockedBuffer
}

// lockedBuffer collects snmpd's output, which the test reads while the process still writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startSNMPD runs snmpd in the foreground with a v1/v2c community "public" and an SNMPv3 user
// iwuser (SHA "authpass123", AES "privpass123"), everything it writes kept in t.TempDir(). It binds
// one UDP port on 127.0.0.1 and nothing else: the SMUX module, which would listen on TCP *:199, is
// left out.
func startSNMPD(t testing.TB) *snmpAgent {
	t.Helper()
	if testing.Short() {
		t.Skip("-short runs unit tests only; the SNMP probe tests run a real snmpd")
	}
	bin, err := exec.LookPath("snmpd")
	if err != nil {
		bin = "/usr/sbin/snmpd"
		if _, err := os.Stat(bin); err != nil {
			t.Skip("snmpd not found: install the Debian package snmpd (apt-get install snmpd) to run the SNMP probe tests")
		}
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()

	dir := t.TempDir()
	persist := filepath.Join(dir, "persist")
	if err := os.Mkdir(persist, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "snmpd.conf")
	// createUser is turned into a usmUser line in persist/snmpd.conf when snmpd starts.
	err = os.WriteFile(conf, fmt.Appendf(nil, `agentAddress udp:127.0.0.1:%d
rocommunity public 127.0.0.1
createUser iwuser SHA "authpass123" AES "privpass123"
rouser iwuser authPriv
`, port), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	noMIBs := filepath.Join(dir, "mibs") // snmpd needs no MIB files; loading the system's only prints noise
	// The listening address comes from agentAddress alone: giving it again on the command line makes
	// snmpd bind it twice and exit.
	cmd := exec.Command(bin, "-f", "-Lo", "-C", "-c", conf, "-I", "-smux", "-M", noMIBs, "-m", "",
		"--persistentDir="+persist)
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+persist, "SNMPCONFPATH="+dir, "MIBS=", "MIBDIRS="+noMIBs)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start snmpd: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("snmpd output:\n%s", log.String())
		}
	})

	a := &snmpAgent{addr: fmt.Sprintf("127.0.0.1:%d", port), log: log}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("snmpd exited at start:\n%s", log.String())
		default:
		}
		if a.answers() {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("snmpd did not answer on %s within 10s:\n%s", a.addr, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answers says whether the agent answers a v2c GET of sysUpTime.
func (a *snmpAgent) answers() bool {
	host, port, _ := net.SplitHostPort(a.addr)
	var p uint16
	fmt.Sscan(port, &p)
	x := &gosnmp.GoSNMP{Target: host, Port: p, Community: "public", Version: gosnmp.Version2c,
		Timeout: 200 * time.Millisecond, Retries: 0}
	if x.Connect() != nil {
		return false
	}
	defer x.Close()
	_, err := x.Get([]string{oidSysUpTime})
	return err == nil
}

// snmpCheck is an SNMP check of the agent at addr with the given settings.
func snmpCheck(id int64, addr string, timeout time.Duration, settings map[string]any) Check {
	raw, _ := json.Marshal(settings)
	return Check{ID: id, Kind: "snmp", Target: addr, Timeout: timeout, Settings: raw}
}

// metricsNamed returns the metrics called name whose labels include match.
func metricsNamed(out Outcome, name string, match map[string]string) []Metric {
	var ms []Metric
	for _, m := range out.Metrics {
		if m.Name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if m.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			ms = append(ms, m)
		}
	}
	return ms
}

func TestSNMPProbe(t *testing.T) {
	agent := startSNMPD(t)
	prober := NewProber(&Guard{AllowPrivate: true})
	no := false

	// Not parallel: the first thing sent to snmpd must not come from the refused probe.
	t.Run("SaaSGuardRefusesLoopback", func(t *testing.T) {
		// A listener of our own stands in for the agent, so "nothing was sent" can be checked.
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		saas := NewProber(&Guard{})
		out := saas.Probe(context.Background(), snmpCheck(1, pc.LocalAddr().String(), time.Second,
			map[string]any{"version": "2c", "community": "public"}))
		if out.Up || !strings.Contains(out.Reason, "not allowed") || !strings.Contains(out.Reason, "loopback") {
			t.Fatalf("want down with a not-allowed reason, got up=%v reason %q", out.Up, out.Reason)
		}
		pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, from, err := pc.ReadFrom(make([]byte, 1500)); err == nil {
			t.Fatalf("the refused probe sent %d bytes from %v", n, from)
		}
	})

	t.Run("V2cGet", func(t *testing.T) {
		t.Parallel()
		out := prober.Probe(context.Background(), snmpCheck(2, agent.addr, 3*time.Second, map[string]any{
			"version": "2c", "community": "public", "interfaces": no,
			"oids": []string{".1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.99.0"},
		}))
		if !out.Up {
			t.Fatalf("down: %s", out.Reason)
		}
		if out.Latency <= 0 || out.Latency > 3*time.Second {
			t.Errorf("latency %v", out.Latency)
		}
		up := metricsNamed(out, "snmp.value", map[string]string{"oid": "1.3.6.1.2.1.1.3.0"})
		if len(up) != 1 || up[0].Value <= 0 {
			t.Errorf("want one snmp.value of sysUpTime > 0, got %+v", up)
		}
		if len(metricsNamed(out, "snmp.uptime_seconds", nil)) != 1 {
			t.Errorf("no snmp.uptime_seconds in %+v", out.Metrics)
		}
		values, _ := out.Detail["values"].(map[string]string)
		if descr := values["1.3.6.1.2.1.1.1.0"]; descr == "" || descr != out.Detail["sys_descr"] {
			t.Errorf("sysDescr %q in values, sys_descr %q", descr, out.Detail["sys_descr"])
		}
		if missing, _ := out.Detail["missing"].([]string); len(missing) != 1 || missing[0] != "1.3.6.1.2.1.1.99.0" {
			t.Errorf("missing = %v, want the unknown OID", out.Detail["missing"])
		}
		if len(metricsNamed(out, "snmp.if_oper_status", nil)) != 0 {
			t.Errorf("interfaces walked although turned off")
		}
	})

	t.Run("V2cBulkWalk", func(t *testing.T) {
		t.Parallel()
		// ifTable on this host spans several GETBULK answers (22 columns × the interfaces, 25 per answer).
		out := prober.Probe(context.Background(), snmpCheck(3, agent.addr, 3*time.Second, map[string]any{
			"version": "2c", "community": "public", "interfaces": no,
			"walk": []string{".1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.1"},
		}))
		if !out.Up {
			t.Fatalf("down: %s", out.Reason)
		}
		if e := out.Detail["walk_error"]; e != nil {
			t.Fatalf("walk_error %v", e)
		}
		vals := metricsNamed(out, "snmp.value", nil)
		if len(vals) < 20 {
			t.Fatalf("only %d numeric objects walked", len(vals))
		}
		seen := map[string]bool{}
		for _, m := range vals {
			oid := m.Labels["oid"]
			if !strings.HasPrefix(oid, "1.3.6.1.2.1.2.2.1.") && !strings.HasPrefix(oid, "1.3.6.1.2.1.1.") {
				t.Errorf("object %s is outside the walked subtrees", oid)
			}
			if seen[oid] {
				t.Errorf("object %s reported twice", oid)
			}
			seen[oid] = true
		}
		// ifIndex.1 = 1 (lo), and the last column (ifSpecific is an OID, so ifOutQLen) was reached.
		for _, oid := range []string{"1.3.6.1.2.1.2.2.1.1.1", "1.3.6.1.2.1.2.2.1.21.1", "1.3.6.1.2.1.1.3.0"} {
			if !seen[oid] {
				t.Errorf("walk lacks %s", oid)
			}
		}
	})

	t.Run("V2cInterfaceRates", func(t *testing.T) {
		t.Parallel()
		check := snmpCheck(4, agent.addr, 3*time.Second, map[string]any{"version": "2c", "community": "public"})
		first := prober.Probe(context.Background(), check)
		if !first.Up {
			t.Fatalf("down: %s", first.Reason)
		}
		if e := first.Detail["interfaces_error"]; e != nil {
			t.Fatalf("interfaces_error %v", e)
		}
		lo := map[string]string{"interface": "lo"}
		if st := metricsNamed(first, "snmp.if_oper_status", lo); len(st) != 1 || st[0].Value != 1 {
			t.Fatalf("lo oper status %+v, want 1 (up)", st)
		}
		if sp := metricsNamed(first, "snmp.if_speed_bps", lo); len(sp) != 1 {
			t.Errorf("lo speed %+v", sp)
		}
		if n, _ := first.Detail["interfaces"].(int); n < 1 {
			t.Errorf("interfaces = %v", first.Detail["interfaces"])
		}
		if r := metricsNamed(first, "snmp.if_in_bps", nil); len(r) != 0 {
			t.Errorf("rates on the first sample: %+v", r)
		}
		// One GET, then the whole interface table in GETBULKs of up to 25 rows, sized by ifNumber.
		n, _ := first.Detail["interfaces"].(int)
		if req, _ := first.Detail["requests"].(int); req > 2+n/25 {
			t.Errorf("%d requests for %d interfaces", req, n)
		}
		t.Logf("first run: latency %v, detail %v", first.Latency, first.Detail)
		started := time.Now()

		// Traffic on lo between the two runs. net-snmp caches ifTable for about 3 s, so the second
		// run waits until that cache has expired.
		sent := sendLoopbackTraffic(t, 3000, 1000)
		time.Sleep(4*time.Second - time.Since(started))

		second := prober.Probe(context.Background(), check)
		if !second.Up {
			t.Fatalf("down: %s", second.Reason)
		}
		if second.Detail["rebooted"] != false {
			t.Errorf("rebooted = %v", second.Detail["rebooted"])
		}
		for _, name := range []string{"snmp.if_in_bps", "snmp.if_out_bps"} {
			r := metricsNamed(second, name, lo)
			if len(r) != 1 || !(r[0].Value > 0) || math.IsInf(r[0].Value, 0) {
				t.Fatalf("%s for lo = %+v after sending %d bytes", name, r, sent)
			}
			if r[0].Labels["ifindex"] == "" {
				t.Errorf("%s has no ifindex label", name)
			}
			t.Logf("%s lo = %.0f bit/s (sent %d bytes)", name, r[0].Value, sent)
		}
		for _, name := range []string{"snmp.if_in_errors_per_s", "snmp.if_out_errors_per_s", "snmp.if_in_discards_per_s", "snmp.if_out_discards_per_s"} {
			if r := metricsNamed(second, name, lo); len(r) != 1 || r[0].Value < 0 {
				t.Errorf("%s for lo = %+v", name, r)
			}
		}
	})

	t.Run("V3AuthPriv", func(t *testing.T) {
		t.Parallel()
		out := prober.Probe(context.Background(), snmpCheck(5, agent.addr, 3*time.Second, map[string]any{
			"version": "3", "username": "iwuser", "security_level": "authPriv",
			"auth_protocol": "SHA", "auth_password": "authpass123", "priv_protocol": "AES", "priv_password": "privpass123",
			"oids": []string{"1.3.6.1.2.1.1.3.0"},
		}))
		if !out.Up {
			t.Fatalf("down: %s", out.Reason)
		}
		if len(metricsNamed(out, "snmp.value", map[string]string{"oid": "1.3.6.1.2.1.1.3.0"})) != 1 {
			t.Errorf("no sysUpTime in %+v", out.Metrics)
		}
		if len(metricsNamed(out, "snmp.if_oper_status", map[string]string{"interface": "lo"})) != 1 {
			t.Errorf("no interface status over v3: %+v (detail %v)", out.Metrics, out.Detail)
		}
	})

	t.Run("V1Get", func(t *testing.T) {
		t.Parallel()
		// ifHCInOctets.1 is a Counter64, which SNMPv1 cannot carry: the agent answers noSuchName and
		// the probe asks again without it.
		out := prober.Probe(context.Background(), snmpCheck(6, agent.addr, 3*time.Second, map[string]any{
			"version": "1", "community": "public",
			"oids": []string{"1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.31.1.1.1.6.1"},
		}))
		if !out.Up {
			t.Fatalf("down: %s", out.Reason)
		}
		if v := metricsNamed(out, "snmp.value", map[string]string{"oid": "1.3.6.1.2.1.1.3.0"}); len(v) != 1 || v[0].Value <= 0 {
			t.Errorf("sysUpTime %+v", v)
		}
		if missing, _ := out.Detail["missing"].([]string); len(missing) != 1 {
			t.Errorf("missing = %v", out.Detail["missing"])
		}
		// The interface walk goes by GETNEXT on v1.
		if st := metricsNamed(out, "snmp.if_oper_status", map[string]string{"interface": "lo"}); len(st) != 1 {
			t.Errorf("no lo status over v1: %+v (detail %v)", out.Metrics, out.Detail)
		}
	})

	// The failures: each reason must tell the reader what to fix.
	for _, tc := range []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{
			name:     "WrongCommunity",
			settings: map[string]any{"version": "2c", "community": "private"},
			want:     fmt.Sprintf("no answer from %s within 1s (wrong community or host down)", agent.addr),
		},
		{
			name: "V3WrongAuthPassword",
			settings: map[string]any{"version": "3", "username": "iwuser", "auth_protocol": "SHA",
				"auth_password": "wrongpass123", "priv_protocol": "AES", "priv_password": "privpass123"},
			want: "SNMPv3 authentication failed (wrong password or protocol)",
		},
		{
			name: "V3WrongAuthProtocol",
			settings: map[string]any{"version": "3", "username": "iwuser", "auth_protocol": "SHA256",
				"auth_password": "authpass123", "priv_protocol": "AES", "priv_password": "privpass123"},
			want: "SNMPv3 authentication failed (wrong password or protocol)",
		},
		{
			name: "V3UnknownUser",
			settings: map[string]any{"version": "3", "username": "nobody", "auth_protocol": "SHA",
				"auth_password": "authpass123", "priv_protocol": "AES", "priv_password": "privpass123"},
			want: "unknown SNMPv3 user",
		},
		{
			// rouser iwuser authPriv: the agent knows the user but refuses a lower security level.
			name: "V3SecurityLevelTooLow",
			settings: map[string]any{"version": "3", "username": "iwuser", "security_level": "authNoPriv",
				"auth_protocol": "SHA", "auth_password": "authpass123"},
			want: fmt.Sprintf("%s refused access (AuthorizationError)", agent.addr),
		},
		{
			name: "V3WrongPrivPassword",
			settings: map[string]any{"version": "3", "username": "iwuser", "auth_protocol": "SHA",
				"auth_password": "authpass123", "priv_protocol": "AES", "priv_password": "wrongpriv123"},
			want: "wrong privacy password",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := prober.Probe(context.Background(), snmpCheck(7, agent.addr, time.Second, tc.settings))
			if out.Up || !strings.Contains(out.Reason, tc.want) {
				t.Fatalf("want down with %q, got up=%v reason %q", tc.want, out.Up, out.Reason)
			}
		})
	}

	t.Run("NoAgent", func(t *testing.T) {
		t.Parallel()
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		pc.Close() // nothing listens there now: the kernel answers port unreachable
		out := prober.Probe(context.Background(), snmpCheck(8, addr, time.Second, map[string]any{"version": "2c", "community": "public"}))
		if out.Up || !strings.Contains(out.Reason, "no SNMP agent listens") {
			t.Fatalf("got up=%v reason %q", out.Up, out.Reason)
		}
	})
}

// sendLoopbackTraffic sends n datagrams of size bytes from one 127.0.0.1 socket to another and returns
// the payload bytes sent.
func sendLoopbackTraffic(t *testing.T, n, size int) int {
	t.Helper()
	rx, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := rx.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	tx, err := net.Dial("udp4", rx.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	payload := make([]byte, size)
	sent := 0
	for range n {
		m, err := tx.Write(payload)
		if err != nil {
			t.Fatal(err)
		}
		sent += m
	}
	return sent
}

// BenchmarkSNMPInterfaceWalk measures a run of a check with the interface walk against a local snmpd;
// cpu-ms/op is the CPU this process spent per run (the target is 1,000 runs a minute on at most 15 %
// of a core: 9 ms).
func BenchmarkSNMPInterfaceWalk(b *testing.B) {
	agent := startSNMPD(b)
	prober := NewProber(&Guard{AllowPrivate: true})
	for _, bc := range []struct {
		name     string
		settings map[string]any
	}{
		{"v2c", map[string]any{"version": "2c", "community": "public"}},
		{"v3authPriv", map[string]any{"version": "3", "username": "iwuser", "auth_protocol": "SHA",
			"auth_password": "authpass123", "priv_protocol": "AES", "priv_password": "privpass123"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			check := snmpCheck(1, agent.addr, 3*time.Second, bc.settings)
			var before, after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			for b.Loop() {
				if out := prober.Probe(context.Background(), check); !out.Up {
					b.Fatal(out.Reason)
				}
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

func TestSNMPCounterRate(t *testing.T) {
	c32 := func(v uint64) snmpCounter { return snmpCounter{value: v, bits: 32} }
	c64 := func(v uint64) snmpCounter { return snmpCounter{value: v, bits: 64} }
	for _, tc := range []struct {
		name      string
		prev, cur snmpCounter
		elapsed   time.Duration
		rebooted  bool
		max       float64
		want      float64
		ok        bool
	}{
		{name: "first sample", prev: snmpCounter{}, cur: c64(1000), elapsed: 10 * time.Second},
		{name: "growth", prev: c64(1000), cur: c64(6000), elapsed: 10 * time.Second, want: 500, ok: true},
		{name: "no change", prev: c32(7), cur: c32(7), elapsed: time.Second, want: 0, ok: true},
		{name: "32-bit wrap", prev: c32(math.MaxUint32 - 99), cur: c32(900), elapsed: 10 * time.Second, want: 100, ok: true},
		{name: "32-bit wrap within link speed", prev: c32(math.MaxUint32 - 99), cur: c32(900), elapsed: 10 * time.Second, max: 125, want: 100, ok: true},
		{name: "32-bit wrap faster than the link is a reset", prev: c32(math.MaxUint32 - 99), cur: c32(900), elapsed: 10 * time.Second, max: 50},
		{name: "32-bit drop by more than half the range is a reset", prev: c32(1_000_000_000), cur: c32(5), elapsed: 10 * time.Second},
		{name: "64-bit decrease is a reset", prev: c64(1 << 40), cur: c64(12), elapsed: 10 * time.Second},
		{name: "reboot", prev: c64(1000), cur: c64(6000), elapsed: 10 * time.Second, rebooted: true},
		{name: "no time elapsed", prev: c64(1000), cur: c64(6000)},
		{name: "clock went back", prev: c64(1000), cur: c64(6000), elapsed: -time.Second},
		{name: "width changed", prev: c32(1000), cur: c64(6000), elapsed: 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := counterRate(tc.prev, tc.cur, tc.elapsed, tc.rebooted, tc.max)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("counterRate = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestSNMPCountersForgetStaleChecks(t *testing.T) {
	s := newSNMPCounters()
	t0 := time.Now()
	if prev := s.swap(1, &snmpSample{target: "a", at: t0}); prev != nil {
		t.Fatalf("first swap returned %+v", prev)
	}
	s.swap(2, &snmpSample{target: "b", at: t0})
	if prev := s.swap(1, &snmpSample{target: "a", at: t0.Add(time.Minute)}); prev == nil || !prev.at.Equal(t0) {
		t.Fatalf("second swap returned %+v", prev)
	}
	// The check's target changed: the old counters are not comparable.
	if prev := s.swap(1, &snmpSample{target: "c", at: t0.Add(2 * time.Minute)}); prev != nil {
		t.Fatalf("swap after a target change returned %+v", prev)
	}
	// Much later only check 1 runs; check 2 is forgotten.
	s.swap(1, &snmpSample{target: "c", at: t0.Add(snmpCounterTTL + time.Hour)})
	s.mu.Lock()
	_, kept := s.checks[2]
	s.mu.Unlock()
	if kept {
		t.Fatal("check 2 still kept after its TTL")
	}
	var nilCounters *snmpCounters
	if nilCounters.swap(1, &snmpSample{}) != nil {
		t.Fatal("nil counters returned a sample")
	}
}

func TestSNMPOIDCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{".1.3.6.1.2.1.2.2.1.10.2", ".1.3.6.1.2.1.2.2.1.10.10", -1},
		{"1.3.6.1.2.1.2.2.1.10.2", ".1.3.6.1.2.1.2.2.1.10.2", 0},
		{".1.3.6.1", ".1.3.6.1.2", -1},
		{".1.3.6.2", ".1.3.6.1.2", 1},
	} {
		if got := oidCompare(tc.a, tc.b); got != tc.want {
			t.Errorf("oidCompare(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSNMPInterfaceMetrics(t *testing.T) {
	// An SNMPv1-era agent: 32-bit octet counters only, ifDescr without ifName, ifSpeed without ifHighSpeed.
	table := func(in, out uint) [][]gosnmp.SnmpPDU {
		cols := make([][]gosnmp.SnmpPDU, ifColumnCount)
		set := func(col int, typ gosnmp.Asn1BER, v any) {
			cols[col] = []gosnmp.SnmpPDU{{Name: ifColumnOIDs[col] + ".3", Type: typ, Value: v}}
		}
		set(colIfDescr, gosnmp.OctetString, []byte("eth0"))
		set(colIfOperStatus, gosnmp.Integer, 2)
		set(colIfSpeed, gosnmp.Gauge32, uint(100_000_000))
		set(colIfInOctets, gosnmp.Counter32, in)
		set(colIfOutOctets, gosnmp.Counter32, out)
		set(colIfInErrors, gosnmp.Counter32, uint(10))
		set(colIfOutErrors, gosnmp.Counter32, uint(0))
		return cols
	}
	t0 := time.Now()
	run := func(prev *snmpSample, uptime uint32, at time.Time, in, out uint) (*snmpSample, map[string]float64) {
		t.Helper()
		rows := ifRowsOf(table(in, out))
		cur := &snmpSample{target: "a", at: at, uptime: uptime, hasUptime: true, ifaces: ifCountersOf(rows)}
		got := map[string]float64{}
		for _, m := range ifMetrics(rows, cur, prev, snmpRebooted(prev, cur)) {
			if m.Labels["interface"] != "eth0" || m.Labels["ifindex"] != "3" {
				t.Errorf("%s labels %v", m.Name, m.Labels)
			}
			got[m.Name] = m.Value
		}
		return cur, got
	}

	first, got := run(nil, 1000, t0, math.MaxUint32-999, 5000)
	want := map[string]float64{"snmp.if_oper_status": 2, "snmp.if_speed_bps": 100e6}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first sample: %v, want %v", got, want)
	}

	// Ten seconds later the in counter wrapped: 1,000 octets to the top, 9,000 after.
	second, got := run(first, 2000, t0.Add(10*time.Second), 9000, 15000)
	want = map[string]float64{
		"snmp.if_oper_status": 2, "snmp.if_speed_bps": 100e6,
		"snmp.if_in_bps": 8000, "snmp.if_out_bps": 8000,
		"snmp.if_in_errors_per_s": 0, "snmp.if_out_errors_per_s": 0,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("second sample: %v, want %v", got, want)
	}

	// sysUpTime went back: the agent restarted, its counters mean nothing against the last ones.
	third, got := run(second, 500, t0.Add(20*time.Second), 20000, 30000)
	if !snmpRebooted(second, third) {
		t.Fatal("reboot not detected")
	}
	want = map[string]float64{"snmp.if_oper_status": 2, "snmp.if_speed_bps": 100e6}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reboot: %v, want %v", got, want)
	}
}
