package pgcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The server is started with a parent-death signal, so that it stops when the process that started it
// dies. Linux sends that signal when the thread that forked it exits, not the process, and Go ends a
// thread when a goroutine locked to it returns without unlocking (as network-namespace code does). A
// server started from such a thread must outlive it.
func TestServerOutlivesTheThreadThatStartedIt(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test starts PostgreSQL")
	}
	binDir, err := FindBinDir()
	if err != nil {
		t.Skipf("no PostgreSQL server binaries: %v", err)
	}
	dir, err := os.MkdirTemp("", "infrawatch-pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755) // the server may run as the postgres user
	type started struct {
		c   *Cluster
		tid int
		err error
	}
	result := make(chan *started)
	var s *started
	for s == nil {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
			if syscall.Gettid() == syscall.Getpid() {
				// The runtime never ends the main thread: try again on another.
				runtime.UnlockOSThread()
				result <- nil
				return
			}
			c, err := Start(context.Background(), Config{DataDir: filepath.Join(dir, "data"), BinDir: binDir})
			result <- &started{c, syscall.Gettid(), err}
		}()
		s = <-result
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	t.Cleanup(func() { _ = s.c.Stop() })

	// Wait until the thread is gone: its death signal, if any, has then been sent.
	task := filepath.Join("/proc/self/task", strconv.Itoa(s.tid))
	deadline := time.Now().Add(30 * time.Second) // a hang guard, not an expected duration
	for {
		if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the starting thread did not end")
		}
		runtime.Gosched()
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.c.URL("postgres"))
	if err != nil {
		t.Fatalf("the server stopped with the thread that started it: %v", err)
	}
	defer conn.Close(ctx)
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("the server stopped with the thread that started it: %v", err)
	}
}
