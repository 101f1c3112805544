package api

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The gate gives each tenant at most its share and all tenants together at most the total; a slot
// given back goes to a read waiting for it; and a tenant with nothing running leaves no entry behind.
func TestHeavyGateSharesSlotsByTenantAndInAll(t *testing.T) {
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	// Refusals wait 1 ms for nothing: the slots they want stay taken until the test gives them back.
	g := newHeavyGate(HeavyReadLimits{PerTenant: 2, Total: 3, Wait: time.Millisecond}, nil)
	take := func(tenant uuid.UUID, what string) func() {
		t.Helper()
		release, ok := g.acquire(ctx, tenant, 0)
		if !ok {
			t.Fatalf("%s: refused, want a slot", what)
		}
		return release
	}
	refuse := func(tenant uuid.UUID, what string) {
		t.Helper()
		if release, ok := g.acquire(ctx, tenant, 0); ok {
			release()
			t.Fatalf("%s: got a slot, want a refusal", what)
		}
	}
	a1, a2 := take(a, "A's first"), take(a, "A's second")
	refuse(a, "A's third, over its share")
	b1 := take(b, "B's first, A holding its share")
	refuse(b, "B's second, over the total")
	a1()
	b2 := take(b, "B's second, once A gave one back")
	refuse(a, "A's next, the total taken again")

	// A read waiting for a slot gets the one given back (the wait is a hang guard, not a duration).
	g.limits.Wait = time.Minute
	got := make(chan func())
	go func() {
		release, ok := g.acquire(ctx, a, 0)
		if !ok {
			release = nil
		}
		got <- release
	}()
	b1()
	a3 := <-got
	if a3 == nil {
		t.Fatal("A's read waiting for a slot was refused when B gave one back")
	}

	// A read whose client went away stops waiting.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := g.acquire(gone, b, 0); ok {
		t.Fatal("a cancelled read got a slot of a full gate")
	}

	for _, release := range []func(){a2, a3, b2} {
		release()
	}
	if n := len(g.tenants); n != 0 || len(g.total) != 0 {
		t.Errorf("after every slot came back: %d tenants and %d slots held, want none", n, len(g.total))
	}
}

// A tenant's own share (its max_heavy_reads) replaces PerTenant for it alone; when it changes, reads that
// start afterwards take slots of the new share, and the slots of reads still running come back to the
// old one without freeing or taking any of the new.
func TestHeavyGateTakesTheTenantsOwnShare(t *testing.T) {
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	g := newHeavyGate(HeavyReadLimits{PerTenant: 2, Total: 10, Wait: time.Millisecond}, nil)
	take := func(tenant uuid.UUID, share int, what string) func() {
		t.Helper()
		release, ok := g.acquire(ctx, tenant, share)
		if !ok {
			t.Fatalf("%s: refused, want a slot", what)
		}
		return release
	}
	refuse := func(tenant uuid.UUID, share int, what string) {
		t.Helper()
		if release, ok := g.acquire(ctx, tenant, share); ok {
			release()
			t.Fatalf("%s: got a slot, want a refusal", what)
		}
	}
	a1 := take(a, 1, "A's first of its own 1")
	refuse(a, 1, "A's second, over its own share of 1")
	b1, b2 := take(b, 0, "B's first of the server's 2"), take(b, 0, "B's second of the server's 2")
	refuse(b, 0, "B's third")

	// A's share raised to 3: three new reads run beside the one still holding a slot of the old share.
	a2, a3, a4 := take(a, 3, "A's first of 3"), take(a, 3, "A's second of 3"), take(a, 3, "A's third of 3")
	refuse(a, 3, "A's fourth of 3")
	a1() // an old slot coming back frees none of the new share
	refuse(a, 3, "A's fourth of 3, after the old read ended")
	for _, release := range []func(){a2, a3, a4, b1, b2} {
		release()
	}
	if n := len(g.tenants); n != 0 || len(g.total) != 0 {
		t.Errorf("after every slot came back: %d tenants and %d slots held, want none", n, len(g.total))
	}
}
