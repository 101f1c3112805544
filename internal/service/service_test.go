package service

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// recorder is a Service that notes when it starts and stops, and fails to start when told to.
type recorder struct {
	name string
	log  *[]string
	fail bool
}

func (r recorder) Start(context.Context) error {
	if r.fail {
		return errors.New("refused")
	}
	*r.log = append(*r.log, "start "+r.name)
	return nil
}

func (r recorder) Stop() { *r.log = append(*r.log, "stop "+r.name) }

func TestGroupStopsInReverseOrder(t *testing.T) {
	var log []string
	g := Group{{"writer", recorder{name: "writer", log: &log}}, {"poller", recorder{name: "poller", log: &log}}}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.Stop()
	want := []string{"start writer", "start poller", "stop poller", "stop writer"}
	if !slices.Equal(log, want) {
		t.Errorf("%q, want %q", log, want)
	}
}

func TestGroupUndoesAFailedStart(t *testing.T) {
	var log []string
	g := Group{{"writer", recorder{name: "writer", log: &log}}, {"hub", recorder{name: "hub", log: &log, fail: true}},
		{"poller", recorder{name: "poller", log: &log}}}
	err := g.Start(context.Background())
	if err == nil || err.Error() != "start hub: refused" {
		t.Fatalf("error %v, want start hub: refused", err)
	}
	if want := []string{"start writer", "stop writer"}; !slices.Equal(log, want) {
		t.Errorf("%q, want %q", log, want)
	}
}

func TestLoopRunsUntilStopped(t *testing.T) {
	running := make(chan struct{})
	var ended bool
	l := &Loop{Run: func(ctx context.Context) {
		close(running)
		<-ctx.Done()
		ended = true
	}}
	l.Stop() // before Start: nothing to do
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-running
	l.Stop()
	if !ended {
		t.Error("Stop returned before Run did")
	}
	l.Stop() // twice: nothing more to do
	if err := l.Start(context.Background()); err == nil {
		t.Error("a second Start was accepted")
	}
}
