// Command infrawatch-chaos is a bounded chaos run (`make chaos`): it starts a PostgreSQL cluster of its
// own, N `infrawatch serve` replicas with every role on it, simulated agents pushing over our JSON, line
// protocol and remote write, and checks against loopback targets it serves; at seeded random moments it
// SIGKILLs a replica (and restarts it), restarts PostgreSQL (fast and immediate shutdown), pauses a
// replica (SIGSTOP for longer than the poller's lease) and fills a replica's ingest queue (a flood of
// pushes while the samples' writes are stalled by a lock). After a drain phase (faults stop, agents finish retrying) it counts,
// from the database, what was acknowledged against what is stored, the check slots run, and every
// rollup tier against a recomputation from raw, prints the table, and exits 1 when anything was lost,
// stored twice or run twice, or a rollup differs.
//
//	go run ./cmd/infrawatch-chaos [--duration 10m] [--replicas 3] [--agents 300] [--checks 2000] [--seed N] [--flavor postgres]
//
// It never touches another server: the cluster lives in a temporary directory and is removed at the end
// (--keep leaves it, with the replicas' and the server's logs, for a post-mortem).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
)

// options are the run's flags.
type options struct {
	duration      time.Duration
	drain         time.Duration
	replicas      int
	agents        int
	checks        int
	tenants       int
	seed          int64
	flavor        string
	bin           string
	pushEvery     time.Duration
	checkInterval int
	keep          bool
	faults        []string // kinds of fault to draw from; empty: all
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long agents push and faults happen (the drain and the counting come after)")
	flag.DurationVar(&o.drain, "drain", 90*time.Second, "longest the drain phase may take: agents finish retrying what was not acknowledged")
	flag.IntVar(&o.replicas, "replicas", 3, "infrawatch serve replicas, every role each")
	flag.IntVar(&o.agents, "agents", 300, "simulated agents; a third each push our JSON, line protocol and remote write")
	flag.IntVar(&o.checks, "checks", 2000, "checks (half tcp, half http) against the loopback targets this program serves")
	flag.IntVar(&o.tenants, "tenants", 4, "tenants the agents and checks are spread over")
	flag.Int64Var(&o.seed, "seed", 0, "seed of the fault schedule and the agents' jitter (0: from the clock, printed so a run can be repeated)")
	flag.StringVar(&o.flavor, "flavor", "postgres", "storage flavor: postgres or timescale")
	flag.StringVar(&o.bin, "bin", "", "infrawatch binary to run (default: go build ./cmd/infrawatch into the run's directory)")
	flag.DurationVar(&o.pushEvery, "push-every", 5*time.Second, "how often each agent pushes (20 samples a push)")
	flag.IntVar(&o.checkInterval, "check-interval", 10, "checks' interval in seconds")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (database, logs) instead of removing it")
	flag.Func("faults", "comma-separated kinds of fault to draw from, to study some alone: "+strings.Join(faultKinds, ", ")+" (default: all)",
		func(v string) error {
			for _, k := range strings.Split(v, ",") {
				if !slices.Contains(faultKinds, k) {
					return fmt.Errorf("unknown fault %q", k)
				}
				o.faults = append(o.faults, k)
			}
			return nil
		})
	flag.Parse()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "infrawatch-chaos:", err)
		os.Exit(2)
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano() % 1_000_000_000
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "infrawatch-chaos:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

func (o options) validate() error {
	switch {
	case o.duration < 30*time.Second:
		return errors.New("--duration must be at least 30s")
	case o.replicas < 2:
		return errors.New("--replicas must be at least 2 (faults take one away)")
	case o.agents < 3:
		return errors.New("--agents must be at least 3 (one per protocol)")
	case o.checks < 0, o.tenants < 1:
		return errors.New("--checks must be 0 or more and --tenants at least 1")
	case o.flavor != "postgres" && o.flavor != "timescale":
		return errors.New("--flavor must be postgres or timescale")
	case o.checkInterval < 10:
		return errors.New("--check-interval must be at least 10 (the checks' lower bound)")
	case o.pushEvery <= 0, o.drain <= 0:
		return errors.New("--push-every and --drain must be positive")
	}
	return nil
}

// run sets everything up, runs the load and the faults, drains, counts and prints. It reports whether
// every invariant held; an error is a run that could not be made (not a finding).
func run(ctx context.Context, o options) (bool, error) {
	dir, err := os.MkdirTemp("", "infrawatch-chaos-")
	if err != nil {
		return false, err
	}
	_ = os.Chmod(dir, 0o755) // the server runs as the postgres user when we are root
	if o.keep {
		fmt.Printf("run directory: %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	bin := o.bin
	if bin == "" {
		bin = filepath.Join(dir, "infrawatch")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/infrawatch").CombinedOutput(); err != nil {
			return false, fmt.Errorf("go build ./cmd/infrawatch (run from the repository's root): %v\n%s", err, out)
		}
	}

	binDir, err := pgcluster.FindBinDir()
	if err != nil {
		return false, err
	}
	settings := map[string]string{"max_connections": "200"}
	if o.flavor == "timescale" {
		if !pgcluster.TimescaleDBInstalled(binDir) {
			return false, errors.New("--flavor timescale: TimescaleDB is not installed for " + binDir)
		}
		settings["shared_preload_libraries"] = "timescaledb"
		settings["timescaledb.telemetry_level"] = "off"
	}
	pg := &postgres{cfg: pgcluster.Config{DataDir: filepath.Join(dir, "data"), BinDir: binDir, Settings: settings,
		LogFile: filepath.Join(dir, "postgres.log")}}
	if err := pg.start(ctx); err != nil {
		return false, err
	}
	defer pg.stop()
	if err := db.NewAdmin(pg.cluster.URL("postgres")).EnsureDatabase(ctx, "infrawatch"); err != nil {
		return false, err
	}
	url := pg.cluster.URL("infrawatch")
	if out, err := exec.CommandContext(ctx, bin, "migrate", "up", "--database-url", url, "--flavor", o.flavor).CombinedOutput(); err != nil {
		return false, fmt.Errorf("migrate up: %v\n%s", err, out)
	}

	pool, err := db.Open(ctx, db.Config{URL: url, MaxConns: 4})
	if err != nil {
		return false, err
	}
	defer pool.Close()

	targets, err := startTargets()
	if err != nil {
		return false, err
	}
	defer targets.close()
	w, err := setupWorld(ctx, pool, o, targets)
	if err != nil {
		return false, err
	}

	fleet := newFleet(bin, url, dir, o.replicas)
	defer fleet.killAll()
	if err := fleet.startAll(ctx); err != nil {
		return false, err
	}

	version := ""
	_ = pool.QueryRow(ctx, "SHOW server_version").Scan(&version)
	fmt.Printf("infrawatch chaos run: %s flavor, PostgreSQL %s, %d CPUs, %s of faults, seed %d\n",
		o.flavor, version, runtime.NumCPU(), o.duration, o.seed)
	fmt.Printf("%d replicas (all roles), %d agents (JSON, line protocol, remote write; a push of 20 samples every %s), "+
		"%d checks every %ds, %d tenants; poller lease %s\n\n",
		o.replicas, o.agents, o.pushEvery, o.checks, o.checkInterval, o.tenants, pollerLease)

	r := newRecorder(o.agents + floodAgents)
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Printf("%s +%6.1fs  %s\n", time.Now().UTC().Format("15:04:05.000"), time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	cl := newClient(fleet.addrs(), r)

	loadCtx, endLoad := context.WithTimeout(ctx, o.duration)
	defer endLoad()
	retryCtx, endRetry := context.WithTimeout(ctx, o.duration+o.drain)
	defer endRetry()
	agentsDone := startAgents(loadCtx, retryCtx, o, w, cl, r)
	late := newLateProbe(fleet.addrs(), w.keys[0], w.readKey, start)
	// The first late sample comes after two refresh passes (the scheduler's, every minute), or halfway
	// through a short run.
	lateDone := late.run(loadCtx, retryCtx, min(2*time.Minute, o.duration/2), logf)

	f := &faults{o: o, pg: pg, pool: pool, fleet: fleet, client: cl, world: w, rec: r, logf: logf}
	faultsDone := f.run(loadCtx, start)
	<-loadCtx.Done()
	faultEnd := time.Now()
	<-faultsDone
	logf("faults over: drain (agents retry what was not acknowledged, at most %s)", o.drain)
	<-agentsDone
	logf("agents done: %d pushes still unacknowledged", r.unacked.Load())
	<-lateDone
	// The check slots of the fault phase are run by now unless they were skipped; give the last ones
	// time to be stored, then stop the replicas gracefully (what they hold is written on the way out).
	settle := faultEnd.Add(time.Duration(o.checkInterval)*time.Second + 5*time.Second)
	if d := time.Until(settle); d > 0 {
		time.Sleep(d)
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	fleet.stopAll()
	logf("replicas stopped; counting")

	res, err := count(context.Background(), pool, o, w, r, start.Add(time.Duration(o.checkInterval)*time.Second), faultEnd)
	if err != nil {
		return false, err
	}
	res.longestOutage, res.outageAt = cl.longestOutage()
	if !res.outageAt.IsZero() {
		res.outageOffset = res.outageAt.Sub(start)
	}
	res.faults = f.done
	res.late = late
	res.print(os.Stdout)
	return res.ok(), nil
}
