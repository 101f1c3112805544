package api_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// ticket asks POST /api/v1/stream/ticket with credential and answers the ticket.
func (w *world) ticket(t *testing.T, credential string) string {
	t.Helper()
	got := w.call(t, "POST", "/api/v1/stream/ticket", credential, nil).must(t, http.StatusCreated)
	ticket := got.str("ticket")
	expires, err := time.Parse(time.RFC3339, got.str("expires_at"))
	if !strings.HasPrefix(ticket, "iws_") || err != nil {
		t.Fatalf("ticket answer %s: want an iws_ ticket and an RFC 3339 expires_at", got.raw)
	}
	if left := time.Until(expires); left <= 0 || left > 31*time.Second {
		t.Fatalf("ticket expires in %s, want at most 30 s", left)
	}
	return ticket
}

// streamStatus opens GET /api/v1/stream?query without a credential and answers its status, closing it.
func (w *world) streamStatus(t *testing.T, query string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", w.srv.URL+"/api/v1/stream?"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A stream ticket opens the live stream of its user's tenant once, without an Authorization header:
// a second use, an expired ticket and a ticket on any other route are refused; the stream carries only
// its tenant's events and refuses the other tenant's ids; only users get tickets; of two requests
// spending one ticket at once, exactly one gets the stream.
func TestStreamTicket(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		w.waitHub(t)
		checkA, checkB := w.createCheck(t, w.a, "web-a"), w.createCheck(t, w.b, "web-b")

		t.Run("opens its tenant's stream once", func(t *testing.T) {
			ticket := w.ticket(t, w.a.tokens["viewer"])
			s := w.openStream(t, "", "ticket="+ticket, nil)
			w.statusChange(t, w.b, checkB, "down") // B's: never on A's stream
			id := w.statusChange(t, w.a, checkA, "down")
			mustStatus(t, s.nextStatus(t), id, checkA)
			if got := w.streamStatus(t, "ticket="+ticket); got != http.StatusUnauthorized {
				t.Fatalf("the same ticket again: %d, want 401", got)
			}
		})

		t.Run("bound to its tenant", func(t *testing.T) {
			ticket := w.ticket(t, w.a.tokens["owner"])
			if got := w.streamStatus(t, "check="+strconv.FormatInt(checkB, 10)+"&ticket="+ticket); got != http.StatusNotFound {
				t.Fatalf("A's ticket with B's check: %d, want 404", got)
			}
		})

		t.Run("expires", func(t *testing.T) {
			ticket := w.ticket(t, w.a.tokens["viewer"])
			sum := sha256.Sum256([]byte(ticket))
			// The ticket's 30 seconds pass (moved, not waited for).
			if _, err := w.d.Pool.Exec(context.Background(),
				`UPDATE app.stream_tickets SET expires_at = now() - interval '1 second' WHERE secret_hash = $1`, sum[:]); err != nil {
				t.Fatal(err)
			}
			if got := w.streamStatus(t, "ticket="+ticket); got != http.StatusUnauthorized {
				t.Fatalf("an expired ticket: %d, want 401", got)
			}
		})

		t.Run("opens nothing else", func(t *testing.T) {
			ticket := w.ticket(t, w.a.tokens["owner"])
			w.call(t, "GET", "/api/v1/hosts?ticket="+ticket, "", nil).must(t, http.StatusUnauthorized)
			w.call(t, "GET", "/api/v1/hosts", ticket, nil).must(t, http.StatusUnauthorized)
			w.call(t, "GET", "/api/v1/stream", ticket, nil).must(t, http.StatusUnauthorized)
			w.call(t, "POST", "/api/v1/stream/ticket", ticket, nil).must(t, http.StatusUnauthorized)
			if got := w.streamStatus(t, "ticket=iws_forged"); got != http.StatusUnauthorized {
				t.Fatalf("a forged ticket: %d, want 401", got)
			}
		})

		t.Run("for users only", func(t *testing.T) {
			key := w.call(t, "POST", "/api/v1/api-keys", w.a.tokens["owner"], map[string]any{"name": "k", "scopes": []string{"read"}}).
				must(t, http.StatusCreated).str("key")
			w.call(t, "POST", "/api/v1/stream/ticket", key, nil).must(t, http.StatusForbidden)
			w.call(t, "POST", "/api/v1/stream/ticket", "", nil).must(t, http.StatusUnauthorized)
		})

		t.Run("spent once under a race", func(t *testing.T) {
			ticket := w.ticket(t, w.a.tokens["viewer"])
			var wg sync.WaitGroup
			codes := make([]int, 4)
			for i := range codes {
				wg.Go(func() { codes[i] = w.streamStatus(t, "ticket="+ticket) })
			}
			wg.Wait()
			ok := 0
			for _, c := range codes {
				switch c {
				case http.StatusOK:
					ok++
				case http.StatusUnauthorized:
				default:
					t.Errorf("status %d, want 200 or 401", c)
				}
			}
			if ok != 1 {
				t.Fatalf("%d of %d requests opened the stream with one ticket (%v), want exactly 1", ok, len(codes), codes)
			}
		})
	})
}

// A stream opened with a ticket is re-checked like its user's access token: removing the user ends it;
// it ends at that token's exp too.
func TestStreamTicketStreamEndsWithItsUser(t *testing.T) {
	rw := newRecheckWorld(t)
	check := rw.createCheck(t, rw.a, "web")
	s := rw.openStream(t, "", "ticket="+rw.ticket(t, rw.a.tokens["viewer"]), nil)
	rw.mustStayOpen(t, s, rw.a, check)
	rw.call(t, "DELETE", "/api/v1/users/"+rw.a.users["viewer"].String(), rw.a.tokens["owner"], nil).must(t, http.StatusNoContent)
	rw.recheck(t)
	s.waitClosed(t, "revoked")

	e := rw.openStream(t, "", "ticket="+rw.ticket(t, rw.a.tokens["editor"]), nil)
	rw.ahead.Store(int64(16 * time.Minute)) // past the access token's 15 minutes
	rw.recheck(t)
	e.waitClosed(t, "expired")
}
