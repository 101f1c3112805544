package traps

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func testKeys(t *testing.T) *secrets.Keyring {
	t.Helper()
	keys, err := secrets.Parse(dbtest.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// register stores a credential for tenant as the API does: validated and sealed by Merge, written as the
// tenant under row-level security.
func register(t *testing.T, d *dbtest.DB, tenant uuid.UUID, in Input) dbsqlc.AppTrapCredential {
	t.Helper()
	row, ps, err := in.Merge(testKeys(t), tenant, nil)
	if err != nil || len(ps) > 0 {
		t.Fatalf("credential %v: %v %v", *in.Name, ps, err)
	}
	var out dbsqlc.AppTrapCredential
	err = db.NewTenantRunner(d.Pool).WithTenant(context.Background(), tenant, func(q *dbsqlc.Queries) (err error) {
		out, err = q.TrapCredentialCreate(context.Background(), dbsqlc.TrapCredentialCreateParams{Name: row.Name, Kind: row.Kind,
			CommunityDigest: row.CommunityDigest, Username: row.Username, EngineID: row.EngineID, SecurityLevel: row.SecurityLevel,
			AuthProtocol: row.AuthProtocol, PrivProtocol: row.PrivProtocol, Secrets: row.Secrets, Enabled: row.Enabled})
		return err
	})
	if err != nil {
		t.Fatalf("store credential %v: %v", *in.Name, err)
	}
	return out
}

func str(s string) *string { return &s }

// stillClock is a clock whose refresh never fires: tests reload when they mean to.
type stillClock struct{}

func (stillClock) Now() time.Time                       { return time.Now() }
func (stillClock) After(time.Duration) <-chan time.Time { return nil }

// freeUDPPort is a loopback UDP port nobody listens on now.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startReceiver runs a receiver on a loopback port with test signals until the test ends.
func startReceiver(t *testing.T, d *dbtest.DB, reg *prometheus.Registry) (*Receiver, string) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	samples := ingest.NewService(ingest.Config{}, d.Pool, log, nil)
	if err := samples.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(samples.Stop)
	addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	r := NewReceiver(Config{Listen: "udp:" + addr}, d.System(), samples, testKeys(t), log, reg)
	r.clock = stillClock{}
	r.testSignals.init()
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	waitFor(t, r.testSignals.reloaded, "the first read of the credentials")
	return r, addr
}

func waitFor[T any](t *testing.T, s testSignal[T], what string) T {
	t.Helper()
	select {
	case v := <-s:
		return v
	case <-time.After(30 * time.Second): // a hang guard
		t.Fatalf("no signal in 30 s: %s", what)
	}
	var zero T
	return zero
}

// snmptrap runs net-snmp's snmptrap with args, in a configuration of its own (no MIBs, no persistent
// state of the machine's), or skips the test without it.
func snmptrap(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("snmptrap")
	if err != nil {
		t.Skip("SKIPPED: no snmptrap on this machine (Debian: apt-get install snmp; .ci/run installs it) — " +
			"the trap receiver is then untested against a real sender")
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, append([]string{"-m", "", "-M", dir}, args...)...)
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+dir, "SNMPCONFPATH="+dir, "MIBS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("snmptrap %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

type storedTrap struct {
	tenant, host, severity, message string
	attrs                           map[string]any
}

func storedTraps(t *testing.T, d *dbtest.DB) []storedTrap {
	t.Helper()
	rows, err := d.Pool.Query(context.Background(), `SELECT l.tenant_id::text, coalesce(h.name, ''), l.severity, l.message, l.attributes::text
	                                                   FROM ts.logs l LEFT JOIN app.hosts h ON h.id = l.host_id
	                                                  WHERE l.source = 'snmptrap' ORDER BY l.time, l.message`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedTrap
	for rows.Next() {
		var s storedTrap
		var attrs string
		if err := rows.Scan(&s.tenant, &s.host, &s.severity, &s.message, &attrs); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal([]byte(attrs), &s.attrs)
		out = append(out, s)
	}
	return out
}

// net-snmp's snmptrap sends v1, v2c and v3 traps to a receiver on loopback: each lands as a log line of
// the tenant whose community or user it carries, under the agent's or the sender's address, with its
// trap and varbinds named from the built-in table; B's community lands only in B. A wrong community, an
// unknown user and a wrong password are dropped and counted; a credential registered after the receiver
// started works from its next read.
func TestTrapsFromSnmptrap(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		if _, err := exec.LookPath("snmptrap"); err != nil {
			t.Skip("SKIPPED: no snmptrap on this machine (Debian: apt-get install snmp; .ci/run installs it)")
		}
		d := dbtest.New(t, flavor)
		a, b := dbtest.SeedTenant(t, d, "alpha"), dbtest.SeedTenant(t, d, "bravo")
		register(t, d, a.ID, Input{Name: str("core"), Kind: str(KindCommunity), Community: str("alpha-public")})
		register(t, d, b.ID, Input{Name: str("core"), Kind: str(KindCommunity), Community: str("bravo-public")})
		register(t, d, a.ID, Input{Name: str("ops v3"), Kind: str(KindUSM), Username: str("ops"), EngineID: str("0x8000000001020304"),
			SecurityLevel: str("authPriv"), AuthProtocol: str("SHA"), AuthPassword: str("alpha-auth-pass"),
			PrivProtocol: str("AES"), PrivPassword: str("alpha-priv-pass")})
		// B's user of the same name, from any engine, with passwords of its own.
		register(t, d, b.ID, Input{Name: str("ops v3"), Kind: str(KindUSM), Username: str("ops"),
			SecurityLevel: str("authNoPriv"), AuthProtocol: str("SHA256"), AuthPassword: str("bravo-auth-pass")})
		reg := prometheus.NewRegistry()
		r, addr := startReceiver(t, d, reg)

		send := func(want string, args ...string) {
			t.Helper()
			snmptrap(t, args...)
			if got := waitFor(t, r.testSignals.handled, strings.Join(args, " ")); got != want {
				t.Fatalf("snmptrap %s: %s, want %s", strings.Join(args, " "), got, want)
			}
			if want == "queued" {
				waitFor(t, r.testSignals.written, "the trap written")
			}
		}
		// v1: an enterprise-specific trap from agent 127.0.0.9.
		send("queued", "-v", "1", "-c", "alpha-public", addr, "1.3.6.1.4.1.8072.2.3", "127.0.0.9", "6", "1", "4242",
			"1.3.6.1.4.1.8072.2.3.2.1", "i", "30")
		// v2c: linkDown of interface 2.
		send("queued", "-v", "2c", "-c", "alpha-public", addr, "", "1.3.6.1.6.3.1.1.5.3",
			"1.3.6.1.2.1.2.2.1.1.2", "i", "2", "1.3.6.1.2.1.2.2.1.7.2", "i", "1", "1.3.6.1.2.1.2.2.1.8.2", "i", "2",
			"1.3.6.1.2.1.31.1.1.1.1.2", "s", "eth1")
		// v3: coldStart with A's user and engine.
		send("queued", "-v", "3", "-e", "0x8000000001020304", "-u", "ops", "-l", "authPriv", "-a", "SHA", "-A", "alpha-auth-pass",
			"-x", "AES", "-X", "alpha-priv-pass", addr, "", "1.3.6.1.6.3.1.1.5.1")
		// v3: B's user from an engine of its own.
		send("queued", "-v", "3", "-e", "0x80000000aabbccdd", "-u", "ops", "-l", "authNoPriv", "-a", "SHA256", "-A", "bravo-auth-pass",
			addr, "", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1.7", "i", "7")
		// B's community.
		send("queued", "-v", "2c", "-c", "bravo-public", addr, "", "1.3.6.1.6.3.1.1.5.5")
		// Dropped: a community nobody registered, a user nobody registered, a wrong password.
		send("unknown_community", "-v", "2c", "-c", "public", addr, "", "1.3.6.1.6.3.1.1.5.5")
		send("unknown_community", "-v", "1", "-c", "public", addr, "1.3.6.1.4.1.8072.2.3", "127.0.0.9", "6", "1", "4242")
		send("unknown_user", "-v", "3", "-e", "0x8000000001020304", "-u", "intruder", "-l", "authNoPriv", "-a", "SHA",
			"-A", "whatever-pass", addr, "", "1.3.6.1.6.3.1.1.5.1")
		send("auth_failed", "-v", "3", "-e", "0x8000000001020304", "-u", "ops", "-l", "authPriv", "-a", "SHA", "-A", "wrong-auth-pass",
			"-x", "AES", "-X", "alpha-priv-pass", addr, "", "1.3.6.1.6.3.1.1.5.1")

		got := storedTraps(t, d)
		if len(got) != 5 {
			t.Fatalf("%d traps stored, want 5: %+v", len(got), got)
		}
		byTrap := map[string]storedTrap{}
		for _, s := range got {
			byTrap[s.attrs["trap"].(string)] = s
		}
		v1 := byTrap["netSnmpExampleHeartbeatNotification"] // enterprise 1.3.6.1.4.1.8072.2.3, specific trap 1
		if v1.tenant != a.ID.String() || v1.host != "127.0.0.9" || v1.attrs["snmp_version"] != "1" || v1.attrs["agent_address"] != "127.0.0.9" ||
			v1.attrs["netSnmpExampleHeartbeatRate"] != 30.0 || v1.attrs["uptime_ticks"] != 4242.0 || v1.severity != "info" ||
			v1.attrs["trap_oid"] != "1.3.6.1.4.1.8072.2.3.0.1" || v1.attrs["generic_trap"] != 6.0 {
			t.Errorf("v1 trap: %+v", v1)
		}
		down := byTrap["linkDown"]
		if down.tenant != a.ID.String() || down.host != "127.0.0.1" || down.severity != "warning" || down.attrs["ifOperStatus.2"] != 2.0 ||
			down.attrs["ifName.2"] != "eth1" || down.attrs["snmp_version"] != "2c" || down.attrs["trap_oid"] != "1.3.6.1.6.3.1.1.5.3" ||
			!strings.Contains(down.message, "linkDown from 127.0.0.1: ifIndex.2=2 ifAdminStatus.2=up(1) ifOperStatus.2=down(2) ifName.2=eth1") {
			t.Errorf("v2c linkDown: %+v", down)
		}
		cold := byTrap["coldStart"]
		if cold.tenant != a.ID.String() || cold.attrs["user"] != "ops" || cold.attrs["snmp_version"] != "3" || cold.severity != "notice" ||
			cold.attrs["uptime_ticks"] == nil {
			t.Errorf("v3 coldStart: %+v", cold)
		}
		if up := byTrap["linkUp"]; up.tenant != b.ID.String() || up.attrs["ifIndex.7"] != 7.0 {
			t.Errorf("B's v3 linkUp: %+v", up)
		}
		if af := byTrap["authenticationFailure"]; af.tenant != b.ID.String() {
			t.Errorf("B's community: %+v", af)
		}
		for reason, want := range map[string]float64{"unknown_community": 2, "unknown_user": 1, "auth_failed": 1} {
			if n := testutil.ToFloat64(r.m.dropped.WithLabelValues(reason)); n != want {
				t.Errorf("infrawatch_traps_dropped_total{reason=%q} = %v, want %v", reason, n, want)
			}
		}
		if n := testutil.ToFloat64(r.m.stored); n != 5 {
			t.Errorf("infrawatch_traps_stored_total = %v", n)
		}

		// A community registered now works once the credentials are read again.
		register(t, d, b.ID, Input{Name: str("late"), Kind: str(KindCommunity), Community: str("late-community")})
		send("unknown_community", "-v", "2c", "-c", "late-community", addr, "", "1.3.6.1.6.3.1.1.5.1")
		if err := r.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, r.testSignals.reloaded, "the reload")
		send("queued", "-v", "2c", "-c", "late-community", addr, "", "1.3.6.1.6.3.1.1.5.1")
	})
}
