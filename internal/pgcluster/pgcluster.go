// Package pgcluster runs a PostgreSQL cluster of its own from the server binaries installed on the
// machine: `infrawatch dev` keeps one under its data directory, and the test harness starts a throwaway one.
//
// It never touches a server it did not start. PostgreSQL refuses to run as root, so when the process is
// root the cluster runs as the unprivileged "postgres" system user, which must be able to reach the data
// directory.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
)

// Config says where a cluster lives and how it starts.
type Config struct {
	// DataDir holds the cluster; it is created by initdb when it does not exist yet.
	DataDir string
	// Port to listen on at 127.0.0.1. Zero picks a free port.
	Port int
	// BinDir holds initdb and postgres. Empty finds the newest /usr/lib/postgresql/*/bin, then $PATH.
	BinDir string
	// Settings are extra server settings (name → value) passed on the postgres command line.
	Settings map[string]string
	// LogFile receives the server log. Empty means DataDir/../<base>.log.
	LogFile string
}

// Cluster is a running PostgreSQL server that this process started.
type Cluster struct {
	cfg  Config
	cmd  *exec.Cmd
	done chan error
	// Port the server listens on at 127.0.0.1.
	Port int
	// User is the superuser name to connect as (trust authentication on 127.0.0.1 only).
	User string
}

// FindBinDir returns the directory that holds initdb and postgres: the newest
// /usr/lib/postgresql/<version>/bin, or the directory of postgres on $PATH.
func FindBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "postgres")) && isExecutable(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries found: install them (Debian/Ubuntu: apt-get install postgresql) " +
		"or set the directory that holds initdb and postgres")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// TimescaleDBInstalled reports whether the TimescaleDB extension is installed for the server in binDir.
func TimescaleDBInstalled(binDir string) bool {
	out, err := exec.Command(filepath.Join(binDir, "pg_config"), "--pkglibdir").Output()
	if err != nil {
		// Debian layout: /usr/lib/postgresql/N/bin → /usr/lib/postgresql/N/lib.
		out = []byte(filepath.Join(filepath.Dir(binDir), "lib"))
	}
	matches, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "timescaledb*.so"))
	return len(matches) > 0
}

// Start initialises the cluster when DataDir does not hold one yet, then starts the server and waits
// until it accepts connections. Stop it with Stop.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.BinDir == "" {
		dir, err := FindBinDir()
		if err != nil {
			return nil, err
		}
		cfg.BinDir = dir
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dataDir
	if cfg.LogFile == "" {
		cfg.LogFile = filepath.Join(filepath.Dir(dataDir), filepath.Base(dataDir)+".log")
	}
	runAs, err := serverUser()
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, User: "postgres", done: make(chan error, 1)}

	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, runAs); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}

	port := cfg.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	c.Port = port
	if err := c.start(runAs); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// credential is the system user the server runs as; nil means the current user.
type credential = *syscall.Credential

func serverUser() (credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root, and PostgreSQL refuses root: a 'postgres' system user is needed " +
			"(Debian/Ubuntu: apt-get install postgresql creates it)")
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// chownAll hands path and everything under it to the server user.
func chownAll(path string, runAs credential) error {
	if runAs == nil {
		return nil
	}
	return filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(runAs.Uid), int(runAs.Gid))
	})
}

func (c *Cluster) initdb(ctx context.Context, runAs credential) error {
	if err := os.MkdirAll(c.cfg.DataDir, 0o700); err != nil {
		return err
	}
	if err := chownAll(c.cfg.DataDir, runAs); err != nil {
		return fmt.Errorf("hand %s to the postgres user: %w", c.cfg.DataDir, err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.BinDir, "initdb"),
		"-D", c.cfg.DataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: runAs}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		if runAs != nil && strings.Contains(string(out), "Permission denied") {
			return fmt.Errorf("initdb %s: the postgres system user cannot reach this directory; "+
				"choose a data directory every user can traverse (for example under /var/tmp): %s", c.cfg.DataDir, out)
		}
		return fmt.Errorf("initdb %s: %w: %s", c.cfg.DataDir, err, out)
	}
	return nil
}

func (c *Cluster) start(runAs credential) error {
	logFile, err := os.OpenFile(c.cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	args := []string{"-D", c.cfg.DataDir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(c.Port),
		"-c", "unix_socket_directories=",
	}
	names := make([]string, 0, len(c.cfg.Settings))
	for name := range c.cfg.Settings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, "-c", name+"="+c.cfg.Settings[name])
	}
	cmd := exec.Command(filepath.Join(c.cfg.BinDir, "postgres"), args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = "/"
	// Its own process group, so a Ctrl-C at the terminal reaches only us; we stop the server ourselves.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: runAs, Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// Linux sends the parent-death signal when the thread that forked the server exits, not the
	// process; and Go ends a thread when a goroutine that locked it returns (network-namespace code
	// does). So the server is forked from a thread locked for the server's whole life, which no other
	// goroutine can lock and end.
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.done <- cmd.Wait()
		logFile.Close()
	}()
	if err := <-started; err != nil {
		logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	c.cmd = cmd
	return nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		err := db.NewAdmin(c.URL("postgres")).Ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case werr := <-c.done:
			c.done <- werr
			return fmt.Errorf("postgres exited while starting (%v); see %s", werr, c.cfg.LogFile)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections on port %d: %w (see %s)", c.Port, err, c.cfg.LogFile)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL is the connection string for database dbname as the superuser.
func (c *Cluster) URL(dbname string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", c.User, c.Port, dbname)
}

// Exited yields the server's exit status once, when it exits for whatever reason.
func (c *Cluster) Exited() <-chan error { return c.done }

// Stop shuts the server down (fast shutdown: open transactions are rolled back) and waits for it.
func (c *Cluster) Stop() error { return c.stop(syscall.SIGINT) }

// StopImmediate shuts the server down in immediate mode (SIGQUIT: no checkpoint, every session cut,
// crash recovery at the next start) and waits for it: the chaos run's harshest restart.
func (c *Cluster) StopImmediate() error { return c.stop(syscall.SIGQUIT) }

// stop sends the postmaster sig (its shutdown mode) and waits for it to exit, killing it after 30 s.
func (c *Cluster) stop(sig syscall.Signal) error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
	return nil
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RunningPort reports the port of a server that another process already runs on dataDir, read from its
// postmaster.pid, or 0 when none runs there.
func RunningPort(dataDir string) int {
	raw, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	lines := strings.Split(string(raw), "\n")
	if len(lines) < 4 {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || syscall.Kill(pid, 0) != nil {
		return 0
	}
	port, _ := strconv.Atoi(strings.TrimSpace(lines[3]))
	return port
}

// PortFree reports whether nothing listens on 127.0.0.1:port.
func PortFree(port int) (bool, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false, nil
	}
	return true, l.Close()
}

// StartThrowaway starts a cluster in a new temporary directory, with TimescaleDB preloaded when it is
// installed and settings added, for benchmarks. It returns the superuser URL of database postgres and a
// function that stops the server and removes the directory.
func StartThrowaway(ctx context.Context, settings map[string]string) (string, func(), error) {
	binDir, err := FindBinDir()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "infrawatch-throwaway-")
	if err != nil {
		return "", nil, err
	}
	_ = os.Chmod(dir, 0o755) // the server may run as the postgres user
	all := map[string]string{}
	if TimescaleDBInstalled(binDir) {
		all["shared_preload_libraries"] = "timescaledb"
		all["timescaledb.telemetry_level"] = "off"
	}
	for k, v := range settings {
		all[k] = v
	}
	c, err := Start(ctx, Config{DataDir: filepath.Join(dir, "data"), BinDir: binDir, Settings: all})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return c.URL("postgres"), func() { _ = c.Stop(); os.RemoveAll(dir) }, nil
}
