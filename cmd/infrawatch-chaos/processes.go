package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/poller"
)

// checkTimeoutSeconds is the checks' timeout: their targets answer on loopback at once.
const checkTimeoutSeconds = 2

// pollerLease is how long a claimed check stays a poller's: the check's timeout plus the poller's grace
// (poller.Config.LeaseGrace, which serve leaves at its default). A pause must outlast it.
var pollerLease = checkTimeoutSeconds*time.Second + poller.DefaultConfig().LeaseGrace

// secretKey seals check secrets at rest; the run stores none, but serve requires a key.
const secretKey = "chaos:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// postgres is the run's own cluster, restarted in place (same data directory and port).
type postgres struct {
	cfg     pgcluster.Config
	mu      sync.Mutex
	cluster *pgcluster.Cluster
}

func (p *postgres) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := pgcluster.Start(ctx, p.cfg)
	if err != nil {
		return err
	}
	p.cfg.Port = c.Port
	p.cluster = c
	return nil
}

// restart stops the server in the given mode ("fast" or "immediate") and starts it again.
func (p *postgres) restart(ctx context.Context, mode string) error {
	p.mu.Lock()
	if mode == "immediate" {
		_ = p.cluster.StopImmediate()
	} else {
		_ = p.cluster.Stop()
	}
	p.mu.Unlock()
	return p.start(ctx)
}

func (p *postgres) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cluster != nil {
		_ = p.cluster.Stop()
	}
}

// replica is one `infrawatch serve` process with every role.
type replica struct {
	index int
	addr  string
	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
}

// fleet is the replicas of the run.
type fleet struct {
	bin, url, dir string
	replicas      []*replica
}

func newFleet(bin, url, dir string, n int) *fleet {
	f := &fleet{bin: bin, url: url, dir: dir}
	for i := range n {
		port, _ := pgcluster.FreePort()
		f.replicas = append(f.replicas, &replica{index: i, addr: "127.0.0.1:" + strconv.Itoa(port)})
	}
	return f
}

func (f *fleet) addrs() []string {
	out := make([]string, len(f.replicas))
	for i, r := range f.replicas {
		out[i] = r.addr
	}
	return out
}

func (f *fleet) startAll(ctx context.Context) error {
	for _, r := range f.replicas {
		if err := f.start(r); err != nil {
			return err
		}
	}
	for _, r := range f.replicas {
		if err := waitReady(ctx, r.addr, 60*time.Second); err != nil {
			return fmt.Errorf("replica %d: %w (see %s)", r.index, err, f.logPath(r))
		}
	}
	return nil
}

func (f *fleet) logPath(r *replica) string {
	return filepath.Join(f.dir, fmt.Sprintf("replica-%d.log", r.index))
}

// start runs the replica's process; its output goes to replica-N.log in the run's directory.
func (f *fleet) start(r *replica) error {
	logFile, err := os.OpenFile(f.logPath(r), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// Each replica names its sessions, so that a lock one of them holds can be traced to it.
	url := fmt.Sprintf("%s&application_name=replica-%d", f.url, r.index)
	cmd := exec.Command(f.bin, "serve", "--database-url", url, "--listen", r.addr, "--log-level", "warn",
		"--allow-private-targets", "--database-max-conns", "12")
	cmd.Env = append(os.Environ(), "INFRAWATCH_SECRET_KEY="+secretKey)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Killed with us, whatever happens to this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start replica %d: %w", r.index, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	return nil
}

func (r *replica) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return errors.New("not running")
	}
	return r.cmd.Process.Signal(sig)
}

// kill SIGKILLs the replica and waits until it is gone.
func (r *replica) kill() {
	_ = r.signal(syscall.SIGCONT)
	_ = r.signal(syscall.SIGKILL)
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

// stop asks the replica to shut down gracefully and waits (SIGKILL after 30 s).
func (r *replica) stop() {
	_ = r.signal(syscall.SIGCONT)
	_ = r.signal(syscall.SIGTERM)
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.kill()
	}
}

func (f *fleet) stopAll() {
	var wg sync.WaitGroup
	for _, r := range f.replicas {
		wg.Go(r.stop)
	}
	wg.Wait()
}

func (f *fleet) killAll() {
	for _, r := range f.replicas {
		r.kill()
	}
}

// waitReady polls /readyz until it answers 200.
func waitReady(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		if resp, err := c.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s", addr, limit)
}
