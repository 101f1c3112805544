package main

import (
	"slices"
	"testing"
	"time"
)

// The fault schedule is a function of the seed alone (a run can be repeated with --seed), holds every
// kind of fault at least once, and keeps its faults inside the fault phase, in time order.
func TestScheduleIsReproducibleAndCoversEveryFault(t *testing.T) {
	for _, d := range []time.Duration{30 * time.Second, 2 * time.Minute, 30 * time.Minute} {
		a, b := schedule(42, d, 3, nil), schedule(42, d, 3, nil)
		if !slices.Equal(a, b) {
			t.Fatalf("%s: two schedules of seed 42 differ:\n%v\n%v", d, a, b)
		}
		if c := schedule(43, d, 3, nil); slices.Equal(a, c) {
			t.Fatalf("%s: seeds 42 and 43 gave the same schedule", d)
		}
		if want := max(len(faultKinds), int(d/(25*time.Second))); len(a) != want {
			t.Fatalf("%s: %d faults, want %d", d, len(a), want)
		}
		seen := map[string]bool{}
		for i, f := range a {
			seen[f.kind] = true
			if f.at < d*5/100 || f.at >= d*85/100 {
				t.Errorf("%s: fault %d at %s, outside [5 %%, 85 %%) of the phase", d, i, f.at)
			}
			if i > 0 && f.at < a[i-1].at {
				t.Errorf("%s: fault %d at %s comes before fault %d at %s", d, i, f.at, i-1, a[i-1].at)
			}
			if f.replica < 0 || f.replica >= 3 {
				t.Errorf("%s: fault %d on replica %d of 3", d, i, f.replica)
			}
		}
		for _, k := range faultKinds {
			if !seen[k] {
				t.Errorf("%s: no %s fault in %v", d, k, a)
			}
		}
	}
}

// --faults narrows the schedule to the kinds named, to study one of them.
func TestScheduleOfOneKind(t *testing.T) {
	plan := schedule(7, 2*time.Minute, 3, []string{faultPause})
	if len(plan) != 4 { // one every 25 s
		t.Fatalf("%d faults, want 4", len(plan))
	}
	for _, f := range plan {
		if f.kind != faultPause {
			t.Fatalf("a %s fault in a schedule of pauses only: %v", f.kind, plan)
		}
	}
}

// A pause outlasts the poller's lease, or it would not move a paused replica's checks to the others.
func TestPauseOutlastsThePollerLease(t *testing.T) {
	if pauseFor <= pollerLease {
		t.Fatalf("pause %s, poller lease %s", pauseFor, pollerLease)
	}
}
