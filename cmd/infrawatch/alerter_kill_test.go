package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// alerter is one `infrawatch serve --roles alerter` process of the test.
type alerter struct {
	name, listen string
	cmd          *exec.Cmd
}

// startAlerter runs `infrawatch serve --roles alerter` as application name, with a short lease, and waits
// until it is ready.
func startAlerter(t *testing.T, bin, dbURL, name string) *alerter {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	port, _ := pgcluster.FreePort()
	a := &alerter{name: name, listen: "127.0.0.1:" + strconv.Itoa(port)}
	a.cmd = exec.Command(bin, "serve", "--database-url", u.String(), "--listen", a.listen, "--roles", "alerter",
		"--alerter-lease", "3s", "--alerter-batch", "50", "--log-level", "error")
	a.cmd.Env = append(os.Environ(), "INFRAWATCH_SECRET_KEY="+dbtest.SecretKey) // serve seals secrets at rest
	a.cmd.Stderr = os.Stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.cmd.Process.Kill(); _ = a.cmd.Wait() })
	waitFor(t, "alerter "+name+" ready", func() bool {
		resp, err := http.Get("http://" + a.listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return a
}

// evaluated is the number of rule evaluations the process reports on /metrics.
func (a *alerter) evaluated(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get("http://" + a.listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	total := 0.0
	for _, m := range regexp.MustCompile(`(?m)^infrawatch_alerter_rules_evaluated_total\{[^}]*\} (\S+)$`).FindAllStringSubmatch(string(body), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		total += v
	}
	return total
}

// waitFor polls cond until it holds; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 3 minutes", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Two alerter processes share a database; one of them is killed (SIGKILL) three times while it is in the
// middle of its work — a statement or transaction of its own open in the database — and started again.
// Every alert's history is one unbroken chain of transitions (each starts where the previous ended, and
// the last ends where the alert is), every transition into and out of firing enqueued exactly one
// notification, and every rule went on being evaluated after the last kill: nothing lost, nothing twice.
func TestKilledAlerterLosesAndDoublesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test builds and kills infrawatch serve --roles alerter on PostgreSQL")
	}
	bin := buildBinary(t)
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		created, err := tenant.Create(ctx, d.System(), tenant.NewTenant{Name: "kill", AdminEmail: "k@kill.example", AdminPassword: "kill-password"})
		if err != nil {
			t.Fatal(err)
		}
		exec := func(sql string, args ...any) {
			t.Helper()
			if _, err := d.Pool.Exec(ctx, sql, args...); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		var channel int64
		if err := d.Pool.QueryRow(ctx, `INSERT INTO app.channels (tenant_id, name, kind) VALUES ($1, 'ops', 'webhook') RETURNING id`,
			created.TenantID).Scan(&channel); err != nil {
			t.Fatal(err)
		}
		// 300 hosts with a series each that is high for 10 s and low for 10 s, each at its own phase, one
		// sample a second from a minute ago to ten minutes ahead; a rule per host every 10 s: each rule
		// changes state at about every evaluation, all the time.
		const hosts = 300
		exec(`INSERT INTO app.hosts (tenant_id, name) SELECT $1, 'host-' || i FROM generate_series(1, $2) i`, created.TenantID, hosts)
		exec(`INSERT INTO app.series (tenant_id, host_id, name, labels)
		      SELECT tenant_id, id, 'load', jsonb_build_object('host', name) FROM app.hosts WHERE tenant_id = $1`, created.TenantID)
		exec(`INSERT INTO ts.samples (time, tenant_id, series_id, value)
		      SELECT g, s.tenant_id, s.id,
		             CASE WHEN (floor(extract(epoch FROM g) / 10)::bigint + s.id) % 2 = 0 THEN 99 ELSE 1 END
		        FROM app.series s, generate_series(date_trunc('second', now()) - interval '1 minute',
		                                           now() + interval '10 minutes', interval '1 second') g
		       WHERE s.tenant_id = $1`, created.TenantID)
		exec(`INSERT INTO app.alert_rules (tenant_id, name, kind, interval_seconds, repeat_seconds, flap_changes, channels, settings,
		                                   eval, next_eval_at)
		      SELECT h.tenant_id, 'load of ' || h.name, 'threshold', 10, 0, 1000, ARRAY[$2::bigint], '{}',
		             jsonb_build_object('selector', jsonb_build_object('metric', 'load', 'host', h.name, 'matchers', '[]'::jsonb),
		                                'window', 5, 'tier', 'raw', 'agg', 'max', 'cmp', '>', 'threshold', 50),
		             now() + random() * interval '10 seconds'
		        FROM app.hosts h WHERE h.tenant_id = $1`, created.TenantID, channel)

		victim := startAlerter(t, bin, d.URL, "alerter-a")
		survivor := startAlerter(t, bin, d.URL, "alerter-b")
		midWork := func() bool {
			var n int
			if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			                                 WHERE application_name = 'alerter-a' AND state <> 'idle' AND xact_start IS NOT NULL`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n > 0
		}
		var lastKill time.Time
		for kill := range 3 {
			// Let the victim do some work first, then kill it in the middle of more.
			waitFor(t, "the victim evaluating", func() bool { return victim.evaluated(t) >= 100 })
			waitFor(t, "the victim in the middle of its work", midWork)
			if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = victim.cmd.Wait()
			lastKill = time.Now()
			t.Logf("kill %d landed mid-work", kill+1)
			victim = startAlerter(t, bin, d.URL, "alerter-a")
		}
		// Every rule is evaluated again once the dead process's leases (3 s) have expired, and an interval
		// (10 s) later once more.
		since := lastKill.Add(14 * time.Second)
		deadline := time.Now().Add(3 * time.Minute)
		for {
			var stale int
			if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM app.alert_rules WHERE last_eval_at IS NULL OR last_eval_at < $1`,
				since).Scan(&stale); err != nil {
				t.Fatal(err)
			}
			if stale == 0 {
				break
			}
			if time.Now().After(deadline) {
				var activity, rules string
				_ = d.Pool.QueryRow(ctx, `SELECT string_agg(format('%s %s %s %s %s', pid, application_name, state, now() - xact_start,
				                            left(query, 60)), E'\n') FROM pg_stat_activity WHERE datname = current_database()`).Scan(&activity)
				_ = d.Pool.QueryRow(ctx, `SELECT string_agg(format('%s %s %s %s', id, next_eval_at, lease_owner, lease_expires_at), E'\n')
				                            FROM (SELECT * FROM app.alert_rules WHERE last_eval_at IS NULL OR last_eval_at < $1 LIMIT 5) r`,
					since).Scan(&rules)
				t.Fatalf("%d rules not evaluated since the last kill within 3 minutes; now %s\nsessions:\n%s\nrules:\n%s",
					stale, time.Now().UTC(), activity, rules)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if survivor.evaluated(t) == 0 || victim.evaluated(t) == 0 {
			t.Fatalf("evaluations: survivor %v, restarted victim %v: both must work", survivor.evaluated(t), victim.evaluated(t))
		}
		for _, a := range []*alerter{victim, survivor} {
			if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := a.cmd.Wait(); err != nil {
				t.Fatalf("%s after SIGTERM: %v", a.name, err)
			}
		}

		// Each alert's history is one chain, ending in its state.
		rows, err := d.Pool.Query(ctx, `
			SELECT a.id, a.state, e.from_state, e.to_state
			  FROM app.alerts a JOIN app.alert_events e ON e.alert_id = a.id AND e.kind = 'state'
			 ORDER BY a.id, e.id`)
		if err != nil {
			t.Fatal(err)
		}
		type chain struct {
			state, last string
			steps       int
			intoFiring  int
			outOfFiring int
		}
		chains := map[int64]*chain{}
		var broken []string
		for rows.Next() {
			var id int64
			var state, from, to string
			if err := rows.Scan(&id, &state, &from, &to); err != nil {
				t.Fatal(err)
			}
			c := chains[id]
			if c == nil {
				c = &chain{state: state, last: "inactive"}
				chains[id] = c
			}
			if from != c.last {
				broken = append(broken, fmt.Sprintf("alert %d: %s>%s after %s", id, from, to, c.last))
			}
			c.last, c.steps = to, c.steps+1
			if to == "firing" {
				c.intoFiring++
			}
			if from == "firing" {
				c.outOfFiring++
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		transitions := 0
		for id, c := range chains {
			if c.last != c.state {
				broken = append(broken, fmt.Sprintf("alert %d is %s but its history ends in %s", id, c.state, c.last))
			}
			transitions += c.steps
		}
		if len(broken) > 0 {
			t.Fatalf("%d broken histories:\n%s", len(broken), strings.Join(broken[:min(20, len(broken))], "\n"))
		}
		if len(chains) != hosts || transitions < 2*hosts {
			t.Fatalf("%d alerts with %d transitions: the load did not flip the alerts enough to prove anything", len(chains), transitions)
		}
		// Exactly one notification per transition into firing and out of it (no repeats, no flapping).
		notes, err := d.Pool.Query(ctx, `SELECT alert_id, count(*) FILTER (WHERE kind = 'firing'), count(*) FILTER (WHERE kind = 'resolved'),
		                                        count(*) FILTER (WHERE kind NOT IN ('firing', 'resolved'))
		                                   FROM app.notifications WHERE alert_id IS NOT NULL GROUP BY alert_id`)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for notes.Next() {
			var id int64
			var firing, resolved, other int
			if err := notes.Scan(&id, &firing, &resolved, &other); err != nil {
				t.Fatal(err)
			}
			c := chains[id]
			if c == nil || firing != c.intoFiring || resolved != c.outOfFiring || other != 0 {
				t.Errorf("alert %d: %d firing and %d resolved notifications (%d others) for %+v", id, firing, resolved, other, c)
			}
			seen++
		}
		if err := notes.Err(); err != nil {
			t.Fatal(err)
		}
		if seen != len(chains) {
			t.Fatalf("notifications for %d alerts of %d", seen, len(chains))
		}
		t.Logf("%d alerts, %d transitions, each exactly once, across 3 kills", len(chains), transitions)
	})
}
