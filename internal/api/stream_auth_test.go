package api_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/db"
)

// recheckWorld is a world whose streams re-check their credential when the test says so, and whose
// stream clock the test may move ahead.
type recheckWorld struct {
	*world
	ticks chan time.Time
	ahead atomic.Int64 // how far the streams' clock runs ahead of the real one, in nanoseconds
}

func newRecheckWorld(t *testing.T) *recheckWorld {
	t.Helper()
	rw := &recheckWorld{ticks: make(chan time.Time)}
	rw.world = newWorldCustom(t, db.FlavorPostgres, testLimits, func(d *api.Deps) {
		d.Config.Stream.RecheckTicks = rw.ticks
		d.Config.Stream.Now = func() time.Time { return time.Now().Add(time.Duration(rw.ahead.Load())) }
	})
	rw.waitHub(t)
	return rw
}

// recheck makes the one open stream re-check its credential: the send returns once the stream took it.
func (rw *recheckWorld) recheck(t *testing.T) {
	t.Helper()
	select {
	case rw.ticks <- time.Now():
	case <-time.After(streamGuard):
		t.Fatal("no stream took the re-check tick")
	}
}

// waitClosed reads until the stream's closing event, which must give reason, and then the stream's end.
func (c *sseClient) waitClosed(t *testing.T, reason string) {
	t.Helper()
	guard := time.After(streamGuard)
	for {
		select {
		case ev, ok := <-c.ch:
			if !ok {
				t.Fatalf("the stream ended without a closed event (want reason %q)", reason)
			}
			if ev.Event != "closed" {
				continue
			}
			if d := decodeData[map[string]string](t, ev); d["reason"] != reason || d["detail"] == "" {
				t.Fatalf("closed event %s, want reason %q and a detail", ev.Data, reason)
			}
			c.waitEnd(t)
			return
		case <-guard:
			t.Fatalf("the stream is still open, want it closed (reason %q)", reason)
		}
	}
}

// mustStayOpen re-checks a stream whose credential is still good and sees it carry an event after.
func (rw *recheckWorld) mustStayOpen(t *testing.T, s *sseClient, tw *tenantWorld, check int64) {
	t.Helper()
	rw.recheck(t)
	id := rw.statusChange(t, tw, check, "down")
	mustStatus(t, s.nextStatus(t), id, check)
}

// A stream lives no longer than its credential: revoking its API key, removing its user or suspending
// its tenant ends it at the next re-check with a closed event saying why; a re-check of a credential
// still good (a demoted user still reads) changes nothing.
func TestStreamEndsWhenItsCredentialGoes(t *testing.T) {
	rw := newRecheckWorld(t)
	check := rw.createCheck(t, rw.a, "web")
	owner := rw.a.tokens["owner"]

	t.Run("API key revoked", func(t *testing.T) {
		key := rw.call(t, "POST", "/api/v1/api-keys", owner, map[string]any{"name": "wallboard", "scopes": []string{"read"}}).
			must(t, http.StatusCreated)
		s := rw.openStream(t, key.str("key"), "", nil)
		rw.mustStayOpen(t, s, rw.a, check)
		rw.call(t, "DELETE", "/api/v1/api-keys/"+key.id(t), owner, nil).must(t, http.StatusNoContent)
		rw.recheck(t)
		s.waitClosed(t, "revoked")
	})

	t.Run("user removed", func(t *testing.T) {
		s := rw.openStream(t, rw.a.tokens["viewer"], "", nil)
		rw.mustStayOpen(t, s, rw.a, check)
		rw.call(t, "DELETE", "/api/v1/users/"+rw.a.users["viewer"].String(), owner, nil).must(t, http.StatusNoContent)
		rw.recheck(t)
		s.waitClosed(t, "revoked")
	})

	t.Run("tenant suspended", func(t *testing.T) {
		s := rw.openStream(t, rw.a.tokens["editor"], "", nil)
		rw.mustStayOpen(t, s, rw.a, check)
		// A demotion leaves the read permission, which every role has: the stream goes on.
		rw.call(t, "PATCH", "/api/v1/users/"+rw.a.users["editor"].String(), owner, map[string]any{"role": "viewer"}).
			must(t, http.StatusOK)
		rw.mustStayOpen(t, s, rw.a, check)
		rw.call(t, "POST", "/api/v1/operator/tenants/"+rw.a.id.String()+"/suspend", operatorToken, nil).must(t, http.StatusOK)
		rw.recheck(t)
		s.waitClosed(t, "suspended")
	})
}

// A stream ends when its credential expires, without waiting for a re-check: an access token at its
// exp, an API key at its expires_at. Clients reconnect with a fresh token.
func TestStreamEndsWhenItsCredentialExpires(t *testing.T) {
	rw := newRecheckWorld(t)
	owner := rw.b.tokens["owner"]
	keyExpiry := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	key := rw.call(t, "POST", "/api/v1/api-keys", owner,
		map[string]any{"name": "wallboard", "scopes": []string{"read"}, "expires_at": keyExpiry}).must(t, http.StatusCreated)

	rw.ahead.Store(int64(16 * time.Minute)) // past the access token's 15 minutes, within the key's hour
	s := rw.openStream(t, owner, "", nil)
	s.waitClosed(t, "expired")
	k := rw.openStream(t, key.str("key"), "", nil)
	rw.recheck(t)
	check := rw.createCheck(t, rw.b, "web")
	id := rw.statusChange(t, rw.b, check, "up")
	mustStatus(t, k.nextStatus(t), id, check)

	rw.ahead.Store(int64(2 * time.Hour)) // past the key's expires_at: the next re-check notices
	rw.recheck(t)
	k.waitClosed(t, "expired")
}
